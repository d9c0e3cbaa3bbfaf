"""What the drill shows while it waits (one live progress line) and what it reports after (the timeline)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO


class Progress:
    """One live line on a terminal (`\\r`), or a plain line per phase change / every 15 s otherwise."""

    def __init__(self, stream: IO[str] | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._phase = ""
        self._last = 0.0
        self._width = 0

    def show(self, phase: str, elapsed: float, deadline: float) -> None:
        text = f"  … {phase}: {elapsed:5.1f}s elapsed, deadline {deadline:.0f}s"
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
        elif phase != self._phase or time.monotonic() - self._last >= 15:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = time.monotonic()
        self._phase = phase

    def clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, name: str) -> float:
        now = time.monotonic()
        if not self.events:
            self.t0 = now
        self.events.append((name, now - self.t0))
        return now - self.t0

    def at(self, name: str) -> float | None:
        return next((t for n, t in self.events if n == name), None)

    def between(self, a: str, b: str) -> float | None:
        ta, tb = self.at(a), self.at(b)
        return None if ta is None or tb is None else tb - ta

    def lines(self) -> list[str]:
        out, prev = [], 0.0
        for name, t in self.events:
            out.append(f"  {name:<24} +{t:7.1f}s  (+{t - prev:5.1f}s)")
            prev = t
        return out
