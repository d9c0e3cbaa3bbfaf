"""How many lab VMs may run at once on this machine, across every pytest-xdist worker (no pytest here).

The lab tier runs in two lanes (tests/lab_lanes.py), but this machine has two cores and each VM is emulated:
with three VMs up at once every lab test ran 1.3-2x slower and some ran out of their bounds. So each VM a
test starts first takes a slot, a `flock` on one of MAX_VMS files under the lab cache, and gives it back when
the VM stops; a lane that finds every slot taken waits for one. The kernel drops a dead worker's locks, so a
crash never leaks a slot. `ROSEY_LAB_MAX_VMS` sets the number (default 2).

A module whose VMs sit idle for minutes (the rule proofs wait out `for:` windows: an idle deployed VM takes
about an eighth of a core) lends one more slot while it waits (`lending()`): the other lane's VM starts then
instead of when the idle module ends, and keeps its slot until it stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

MAX_VMS = max(1, int(os.environ.get("ROSEY_LAB_MAX_VMS") or 2))
POLL = 2.0  # seconds between looks while every slot is taken: a VM runs for minutes

_held: dict[str, IO[bytes]] = {}  # VM name -> the open lock file of its slot


def _slot_dir() -> Path:
    from fabfile.lab import paths

    d = paths.cache_dir() / "vm-slots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _lent() -> Path:
    return _slot_dir() / "lent"


@contextlib.contextmanager
def lending() -> Iterator[None]:
    """One slot more for the other lane while this block runs (its VMs idle)."""
    _lent().write_text(str(os.getpid()))
    try:
        yield
    finally:
        _lent().unlink(missing_ok=True)


def _slots() -> int:
    """MAX_VMS, plus the lent one while a live process lends it."""
    try:
        os.kill(int(_lent().read_text()), 0)
    except (OSError, ValueError):
        return MAX_VMS
    return MAX_VMS + 1


def take(name: str, log=print) -> float:
    """A slot for VM `name` (kept while this process already holds one for it); returns the seconds waited."""
    if name in _held:
        return 0.0
    start, said = time.monotonic(), False
    while True:
        for i in range(_slots()):
            f = open(_slot_dir() / f"slot-{i}.lock", "wb")  # noqa: SIM115 - held open as the lock
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _held[name] = f
            waited = time.monotonic() - start
            if said:
                log(f"lab: {name} got a VM slot after {waited:.0f}s")
            return waited
        if not said:
            log(f"lab: {name} waits for a VM slot ({MAX_VMS} VMs at most on this machine)")
            said = True
        time.sleep(POLL)


def give_back(name: str) -> None:
    f = _held.pop(name, None)
    if f is not None:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def held() -> list[str]:
    return sorted(_held)
