"""Build what the lab needs before a VM starts: one image per Debian release the inventory's lab hosts run,
and the release archives (`inv lab.build`, `python -m fabfile.lab build`)."""

from __future__ import annotations

import time

from fabfile.config.inventory import Inventory
from fabfile.lab import image, releases


def build_all(inventory: Inventory) -> None:
    """Build (or find built) every image and archive, and say what is ready and how long it took."""
    started = time.monotonic()
    imgs = [image.ensure(r) for r in image.releases_of(inventory)]
    built = releases.ensure_all()
    print(f"lab: images {', '.join(f'{i.release} {i.key}' for i in imgs)} ready; "
          f"releases: {', '.join(f'{r.family} {r.version}' for r in built)}")
    print(f"lab: build took {time.monotonic() - started:.0f}s")
