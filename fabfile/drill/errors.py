"""How a drill ends other than passing: it could not prove the path, or a signal stopped it."""

from __future__ import annotations


class DrillFailed(RuntimeError):
    """The drill could not prove the path; the message says which step and why (masked)."""


class DrillInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; unwinds like Ctrl-C so every `finally` runs."""


def why(e: BaseException) -> str:
    """`Type: first line` — enough to act on, never a traceback."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
