"""A test that hangs fails alone, with every thread's stack, instead of holding the suite to CI's limit.

Stop 36's CI ran out of its 90 minutes because one lab test waited an hour for an SSH channel: nothing said
which test, or where. Each test body now has a time limit by tier (`time_limit(seconds)` marks its own);
past it the test fails with the stack of every thread. If even that cannot end it (the failure swallowed,
or a thread stuck), the process exits after a grace period: xdist reports the crash and the suite goes on.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# seconds per test body (setup and teardown are not counted: a lab fixture may wait for a VM slot);
# the longest bodies measured: pure 5 s, proc 5 s, local 40 s, lab 810 s (the rule proofs' one test)
LIMITS = {"pure": 60.0, "proc": 300.0, "local": 300.0, "lab": 1500.0}
GRACE = 300.0  # after the limit, before the worker is ended if the failure could not end the test
SCALE_ENV = "ROSEY_TEST_LIMIT_SCALE"  # a slower machine: multiply every limit (e.g. 2)
GRACE_ENV = "ROSEY_TEST_GRACE"  # seconds instead of GRACE (the watchdog's own test)


def limit_for(item: pytest.Item) -> float | None:
    """The item's body limit in seconds: its `time_limit` mark, else its tier's; None outside tests/."""
    mark = item.get_closest_marker("time_limit")
    if mark is not None:
        return float(mark.args[0])
    path = Path(str(item.path)).resolve()
    if TESTS not in path.parents:
        return None
    base = LIMITS.get(path.relative_to(TESTS).parts[0])
    return None if base is None else base * float(os.environ.get(SCALE_ENV) or 1)


class TestTimedOut(pytest.fail.Exception):
    """Raised in the test's thread when its limit passes (a BaseException: no `except Exception` keeps it)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    limit = limit_for(item)
    if limit is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        sys.stderr.write(f"\n--- {item.nodeid}: still running after {limit:.0f} s; every thread's stack:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise TestTimedOut(f"still running after {limit:.0f} s (the stack of every thread is in its stderr)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    backstop = threading.Timer(limit + float(os.environ.get(GRACE_ENV) or GRACE), _end_process, (item, limit))
    backstop.daemon = True
    backstop.start()
    try:
        yield
    finally:
        backstop.cancel()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _end_process(item: pytest.Item, limit: float) -> None:
    """The failure did not end the test: say so on the real stderr (capture suspended), with the stacks,
    and end this process (under xdist the controller reports the worker's crash and goes on)."""
    capman = item.config.pluginmanager.getplugin("capturemanager")
    with contextlib.suppress(Exception):
        capman.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n--- {item.nodeid}: failed at its {limit:.0f} s limit but still running; "
                     "ending this test process. Every thread's stack:\n")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(70)
