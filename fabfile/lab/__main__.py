"""`python -m fabfile.lab build`: build the image + release archives without invoke (CI, bootstrap)."""

import sys
import time

from fabfile.lab import image, releases


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m fabfile.lab build", file=sys.stderr)
        return 2
    started = time.monotonic()
    img = image.ensure()
    built = releases.ensure_all()
    print(f"lab: image {img.key} ready; releases: {', '.join(f'{r.family} {r.version}' for r in built)}")
    print(f"lab: build took {time.monotonic() - started:.0f}s")
    return 0


sys.exit(main(sys.argv[1:]))
