"""SIGINT/SIGTERM during a drill: first they unwind it like Ctrl-C (so every `finally` runs), then, while the
drill is putting things back, they are only noted — a second Ctrl-C must not abort the bot's restart.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fabfile.drill.errors import DrillInterrupted


@contextlib.contextmanager
def signals_to(handle: Callable[[str], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call `handle(signal name)` in the main thread; the handlers found are put back after.

    A no-op outside the main thread (e.g. in a runner thread), where Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        handle(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def interrupt(name: str) -> None:
    """The handler while the drill runs: unwind like Ctrl-C."""
    raise DrillInterrupted(name)
