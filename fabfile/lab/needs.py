"""What `inv lab.*` needs on this machine beyond the deploy's own Python packages, said in one line.

The deploy needs only `pip install .`; the lab also needs QEMU and mmdebstrap (apt) and aiosmtpd (the
`lab` extra, for the shared mail catcher), which scripts/bootstrap.sh installs.
"""

from __future__ import annotations

import importlib.util
import shutil

TOOLS = ("qemu-system-x86_64", "qemu-img", "mmdebstrap")
MODULES = ("aiosmtpd",)
HOW = ("run scripts/bootstrap.sh (or: apt-get install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs, "
       "and pip install '.[lab]')")


def missing() -> list[str]:
    return ([t for t in TOOLS if shutil.which(t) is None]
            + [f"python module {m}" for m in MODULES if importlib.util.find_spec(m) is None])


def problem() -> str | None:
    """One line naming what is missing and how to get it, or None."""
    gone = missing()
    return f"the lab needs {', '.join(gone)}: {HOW}" if gone else None
