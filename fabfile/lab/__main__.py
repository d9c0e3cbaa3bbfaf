"""`python -m fabfile.lab build`: build the images + release archives without invoke (CI, bootstrap).

One image per Debian release the inventory's lab hosts run (`lab_vm.release`)."""

import os
import sys
import time

from fabfile.config.inventory import load_inventory
from fabfile.lab import image, releases


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m fabfile.lab build", file=sys.stderr)
        return 2
    started = time.monotonic()
    imgs = [image.ensure(r) for r in image.releases_of(load_inventory(os.environ.get("ROSEY_INVENTORY")))]
    built = releases.ensure_all()
    print(f"lab: images {', '.join(f'{i.release} {i.key}' for i in imgs)} ready; "
          f"releases: {', '.join(f'{r.family} {r.version}' for r in built)}")
    print(f"lab: build took {time.monotonic() - started:.0f}s")
    return 0


sys.exit(main(sys.argv[1:]))
