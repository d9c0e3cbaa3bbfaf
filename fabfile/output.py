"""The one place that prints: plain lines, `error:` lines, `[host] ` lines (masked), the recap, a live
progress line, and the same facts kept as JSON-able records for `--json`.

Why one place: hosts run in parallel threads and the drill redraws a progress line, so every write must
take the same lock and a live progress line must be cleared before any other line lands on it; and a
script that wants JSON should get the facts the human reads, not a second code path that drifts.
Every write goes through `stdio.write`: a character the terminal cannot show is escaped and a closed
stdout (`| head -1`) stops the printing, never the hosts' work.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from fabfile import stdio


class Progress:
    """One live line on a terminal (`\\r`), or a plain line per phase change / every 15 s otherwise."""

    def __init__(self, stream: IO[str] | None = None, tty: bool | None = None,
                 lock: threading.RLock | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = stdio.isatty(self.stream) if tty is None else tty
        self.lock = lock or threading.RLock()
        self._phase = ""
        self._last = 0.0
        self._width = 0

    def show(self, phase: str, elapsed: float, deadline: float) -> None:
        text = f"  … {phase}: {elapsed:5.1f}s elapsed, deadline {deadline:.0f}s"
        with self.lock:
            if self.tty:
                pad = max(0, self._width - len(text))
                stdio.write("\r" + text + " " * pad, self.stream)
                self._width = len(text)
            elif phase != self._phase or time.monotonic() - self._last >= 15:
                stdio.write(text + "\n", self.stream)
                self._last = time.monotonic()
            self._phase = phase

    def clear(self) -> None:
        with self.lock:
            if self.tty and self._width:
                stdio.write("\r" + " " * self._width + "\r", self.stream)
                self._width = 0


@dataclass(frozen=True)
class StepTime:
    """Where one step's time went on one host: wall seconds and SSH commands (round trips)."""

    step: str
    seconds: float
    commands: int


@dataclass(frozen=True)
class RecapRow:
    """One host's line of the recap, and its per-step profile."""

    host: str
    ok: int
    changed: int
    failed: int
    seconds: float
    steps: tuple[StepTime, ...] = ()
    stopped: str = ""  # after a Ctrl-C: "before <step>" or "not started"

    @property
    def state(self) -> str:
        return "FAILED" if self.failed else f"stopped {self.stopped}" if self.stopped else "done"


def duration(seconds: float | None) -> str:
    """An age or a time left as people read it: 95s, 4m, 2h05m, 3d4h; "-" when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def recap_lines(rows: Sequence[RecapRow]) -> list[str]:
    width = max((len(r.host) for r in rows), default=4)
    return ["recap:"] + [f"  {r.host:<{width}}  ok={r.ok} changed={r.changed} failed={r.failed}  "
                         f"{r.state} ({r.seconds:.0f}s)" for r in rows]


def profile_lines(rows: Sequence[RecapRow]) -> list[str]:
    """Per step and host: wall seconds and SSH commands, like Ansible's task profiler ("-": did not run).

    Why always printed: "where did the minute go?" should not need a profiler or a second run.
    """
    steps = list(dict.fromkeys(t.step for r in rows for t in r.steps))
    if not steps:
        return []
    if len(rows) > PROFILE_COLUMNS:
        return fleet_profile_lines(rows, steps)
    cells = {(r.host, t.step): f"{t.seconds:.1f}s {t.commands:>2}" for r in rows for t in r.steps}
    totals = {r.host: f"{sum(t.seconds for t in r.steps):.1f}s {sum(t.commands for t in r.steps):>2}"
              for r in rows}
    name_w = max(len(s) for s in steps + ["total"])
    col_w = max([len(r.host) for r in rows] + [len(c) for c in [*cells.values(), *totals.values()]])
    def line(first: str, values: Sequence[str]) -> str:
        return ("  " + first.ljust(name_w) + "".join("  " + v.rjust(col_w) for v in values)).rstrip()
    out = ["time per step (wall seconds, SSH commands):", line("", [r.host for r in rows])]
    out += [line(s, [cells.get((r.host, s), "-") for r in rows]) for s in steps]
    out.append(line("total", [totals[r.host] for r in rows]))
    return out


PROFILE_COLUMNS = 8  # hosts shown as columns of the profile; a larger fleet gets a median and a maximum


def fleet_profile_lines(rows: Sequence[RecapRow], steps: Sequence[str]) -> list[str]:
    """The profile of many hosts, one line per step: median and slowest host (a column each would not fit)."""
    out = [f"time per step over {len(rows)} hosts (wall seconds, SSH commands; median, slowest):"]
    width = max(len(s) for s in steps)
    for step in steps:
        times = sorted((t.seconds, t.commands, r.host) for r in rows for t in r.steps if t.step == step)
        mid, top = times[len(times) // 2], times[-1]
        out.append(f"  {step.ljust(width)}  median {mid[0]:.1f}s {mid[1]:>2}  max {top[0]:.1f}s {top[1]:>2} "
                   f"({top[2]}){'' if len(times) == len(rows) else f'  ran on {len(times)}'}")
    return out


class Output:
    """Thread-safe printer for one command's output.

    `stream=None` means "sys.stdout at the time of writing" (so pytest's capture and redirections work).
    Every line goes out whole under one lock; a live progress line handed out by `progress()` is cleared
    before any other line is printed. `record()` keeps JSON-able facts alongside (see `records`, `json()`).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self.lock = threading.RLock()
        self.records: list[dict[str, Any]] = []
        self._live: list[Progress] = []

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stdout

    # -- lines
    def line(self, text: str = "") -> None:
        with self.lock:
            for p in self._live:
                p.clear()
            stdio.write(f"{text}\n", self.stream)

    def lines(self, texts: Iterable[str]) -> None:
        with self.lock:
            for t in texts:
                self.line(t)

    def error(self, text: str) -> None:
        """`error: <text>` — the one-line shape of every user-facing failure."""
        self.line(f"error: {text}")
        self.record("error", message=text)

    def for_host(self, name: str, masker: Callable[[str], str] = str) -> Callable[[str], None]:
        """A `log(text)` that prefixes every line with `[name] ` and masks that host's secrets."""
        def log(text: str) -> None:
            with self.lock:
                for ln in str(text).splitlines() or [""]:
                    self.line(f"[{name}] {masker(ln)}")
        return log

    # -- recap and progress
    def recap(self, rows: Sequence[RecapRow]) -> None:
        """One line per host, failures first (in a fleet they are what to read), then the per-step profile."""
        failed_first = sorted(rows, key=lambda r: not r.failed)  # stable: otherwise the hosts' own order
        self.lines(recap_lines(failed_first) + profile_lines(rows))  # the profile's columns: the hosts' order
        for r in rows:
            self.record("recap", **asdict(r), state=r.state)

    def progress(self, tty: bool | None = None) -> Progress:
        """A live progress line on this output's stream, sharing its lock (cleared before other lines)."""
        p = Progress(self.stream, tty, self.lock)
        with self.lock:
            self._live.append(p)
        return p

    # -- data for scripts
    def record(self, kind: str, **data: Any) -> None:
        """Keep one JSON-able fact (`{"kind": kind, **data}`) for `--json`; prints nothing."""
        with self.lock:
            self.records.append({"kind": kind, **data})

    def json(self) -> str:
        with self.lock:
            return json.dumps(self.records, indent=2, default=str)
