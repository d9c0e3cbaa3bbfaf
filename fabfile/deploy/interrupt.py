"""Ctrl-C during a run of several hosts: the first stops between steps, the second leaves at once.

Why this shape: each host runs in its own thread, and a thread cannot be interrupted in the middle of an SSH
command (nor should it be: a changing script is detached on the server, under its deploy lock, and finishes
whatever happens to the connection). So the main thread only waits for the hosts; the first Ctrl-C says
which hosts are finishing which step and lets no new step start, then the recap is printed as usual; the
second leaves at once (the process exits; the servers carry their command through on their own).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from fabfile.output import Output

EXIT_INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT
SAFE = ("each server carries the command it was given through on its own: it ignores the hangup, holds "
        "its deploy lock until done, and rolls back a release that does not start")


def _leave(code: int) -> None:
    """Exit the process now, worker threads and all (a normal exit would join them first)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # leaving anyway
            stream.flush()
    os._exit(code)


class Stop:
    """The run's Ctrl-C state: what each host is doing, and whether a stop was asked for."""

    def __init__(self, out: Output, leave: Callable[[int], None] = _leave) -> None:
        self.requested = threading.Event()
        self._out = out
        self._leave = leave
        self._lock = threading.Lock()
        self._doing: dict[str, str] = {}  # host -> the step it is in (absent: between steps or done)

    def doing(self, host: str, step: str | None) -> None:
        """A host entered `step` (None: it left it)."""
        with self._lock:
            if step is None:
                self._doing.pop(host, None)
            else:
                self._doing[host] = step

    def busy(self) -> str:
        with self._lock:
            return ", ".join(f"{h} ({s})" for h, s in self._doing.items()) or "no host is in a step"

    def interrupted(self) -> None:
        """One Ctrl-C: the first asks the hosts to stop between steps, the second leaves at once."""
        if not self.requested.is_set():
            self.requested.set()
            self._out.line(f"Ctrl-C: no new step starts; finishing the current one on: {self.busy()}. "
                           "Ctrl-C again to leave at once")
            return
        self._out.line(f"Ctrl-C again: leaving now, without waiting for: {self.busy()}; {SAFE}. Run the "
                       "same command again to see where each host stands")
        self._leave(EXIT_INTERRUPTED)

    def wait(self, futures: Iterable[Future], poll: float = 0.2,
             waiter: Callable[..., tuple[set, set]] = concurrent.futures.wait) -> None:
        """Wait for every host's future; a Ctrl-C (KeyboardInterrupt in this, the main, thread) is handled
        here and the waiting goes on until the hosts have stopped."""
        pending = set(futures)
        while pending:
            try:
                _, pending = waiter(pending, timeout=poll)
            except KeyboardInterrupt:
                try:
                    self.interrupted()
                except KeyboardInterrupt:  # pressed again while the first was being said: the second
                    self.interrupted()
