"""What the drill reports after a run: the timeline of its events (the live progress line: fabfile.output)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
