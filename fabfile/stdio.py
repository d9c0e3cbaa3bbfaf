"""The one place text reaches a stream: printing never raises and never stops a host's work.

Why: hosts run in threads that print as they go, so an exception from `write` (a character the terminal's
encoding cannot show, a reader that went away: `| head -1`) would abort a deploy half-way. So:
- a character the stream's encoding cannot show is written as a backslash escape (`\\u2026`);
- the first broken pipe, closed or failing stream stops printing to it for the rest of the process, once:
  its descriptor is pointed at /dev/null (Python's advice for SIGPIPE), so invoke's and the interpreter's
  last flush stay quiet too, while the work carries on and the exit code still says how it went.
Every write takes one lock, so lines from parallel hosts arrive whole.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import IO, Any

_lock = threading.RLock()
_stopped: dict[int, Any] = {}  # id -> stream (kept, so the id is not reused by another object)


def stopped(stream: Any) -> bool:
    """True once printing to `stream` was given up (broken pipe, closed, failing)."""
    return id(stream) in _stopped or getattr(stream, "_stdio_stopped", False)


def _stop(stream: Any) -> None:
    """Give up on `stream`: remember it, and point its descriptor at /dev/null when it has one."""
    _stopped[id(stream)] = stream
    with contextlib.suppress(Exception):
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def escaped(text: str, encoding: str | None) -> str:
    """`text` with what `encoding` cannot show as backslash escapes (unchanged when it can)."""
    enc = encoding or "ascii"
    try:
        return text.encode(enc, "backslashreplace").decode(enc, "replace")
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


def write(text: str, stream: IO[str] | None = None, flush: bool = True) -> None:
    """Write `text` to `stream` (None: sys.stdout at this moment); never raises."""
    s = stream if stream is not None else sys.stdout
    if s is None or stopped(s):
        return
    with _lock:
        try:
            try:
                s.write(text)
            except UnicodeEncodeError:  # raised before anything is buffered: the whole text again, escaped
                s.write(escaped(text, getattr(s, "encoding", None)))
            if flush:
                s.flush()
        except (OSError, ValueError):  # BrokenPipeError, EIO, "I/O operation on closed file"
            _stop(s)


def flush(stream: IO[str] | None = None) -> None:
    s = stream if stream is not None else sys.stdout
    if s is None or stopped(s):
        return
    with _lock:
        try:
            s.flush()
        except (OSError, ValueError):
            _stop(s)


def isatty(stream: Any) -> bool:
    """A terminal? (False for a closed or odd stream, instead of an exception)."""
    try:
        return bool(stream.isatty())
    except (OSError, ValueError, AttributeError):
        return False


class SafeStream:
    """A text stream for code that prints by itself (rich, invoke, `print`): every write goes through
    `write` above. `target=None` means sys.stdout at the time of each write (so redirections and pytest's
    capture still work). Anything else (`isatty`, `encoding`, `fileno`) is the target's."""

    def __init__(self, target: IO[str] | None = None) -> None:
        self._target = target

    @property
    def target(self) -> IO[str]:
        return self._target if self._target is not None else sys.stdout

    @property
    def _stdio_stopped(self) -> bool:
        return stopped(self.target)

    def write(self, text: str) -> int:
        write(text, self.target, flush=False)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for ln in lines:
            self.write(ln)

    def flush(self) -> None:
        flush(self.target)

    def isatty(self) -> bool:
        return isatty(self.target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


def install() -> None:
    """Route the process's own stdout through `write` (once, at the top: tasks.py), so what invoke and
    third-party code print is as safe as ours. Only when sys.stdout is still the interpreter's own: a
    capture (pytest) or a redirection someone installed is left alone."""
    if sys.stdout is not None and sys.stdout is sys.__stdout__:
        sys.stdout = SafeStream(sys.__stdout__)  # type: ignore[assignment]
