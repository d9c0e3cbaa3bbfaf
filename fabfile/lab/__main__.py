"""`python -m fabfile.lab build`: build the images + release archives without invoke (CI, bootstrap).

One image per Debian release the inventory's lab hosts run (`lab_vm.release`)."""

import os
import sys

from fabfile.config.inventory import load_inventory
from fabfile.lab.build import build_all


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m fabfile.lab build", file=sys.stderr)
        return 2
    build_all(load_inventory(os.environ.get("ROSEY_INVENTORY")))
    return 0


sys.exit(main(sys.argv[1:]))
