"""How `inv status` looks: a rich table per host with sparklines, or JSON.

rich decides colour: none when NO_COLOR is set or output is not a terminal (piped), so the same text is
grep-friendly. Sparklines use unicode blocks, or plain ASCII when the output's encoding cannot show them.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fabfile.output import duration
from fabfile.status.collect import HostStatus

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII = "_.-=+*#@"


def sparkline(points: list[float | None], chars: str = BLOCKS, width: int = 30) -> str:
    """Last hour squeezed to `width` cells (the max of each bucket); a gap (no data) is a space."""
    if not points:
        return ""
    size = max(1, -(-len(points) // width))
    buckets = [points[i:i + size] for i in range(0, len(points), size)]
    vals = [max((v for v in b if v is not None), default=None) for b in buckets]
    known = [v for v in vals if v is not None]
    if not known:
        return " " * len(vals)
    lo, hi = min(known), max(known)
    top = len(chars) - 1
    return "".join(" " if v is None else chars[0 if hi == lo else round((v - lo) / (hi - lo) * top)]
                   for v in vals)


def _num(v: float | None, fmt: str = "{:.3g}") -> str:
    return "-" if v is None else fmt.format(v)


def host_table(st: HostStatus, console: Console) -> Table:
    chars = BLOCKS if (console.encoding or "").lower().startswith("utf") else ASCII
    t = Table(title=f"{st.host} ({st.env})", title_justify="left", show_header=False, box=None,
              pad_edge=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_column("last hour")
    if not st.ok:
        t.add_row("error", Text(st.error, style="red"), "")
        return t
    if st.note:
        t.add_row("note", st.note, "")
        return t
    v, h = st.values, st.history
    conn = v.get("connected")
    state = (Text("connected", style="green") if conn == 1 else Text("DISCONNECTED", style="bold red")
             if conn == 0 else Text("no data (bot down?)", style="red"))
    t.add_row("bot", state, "")
    t.add_row("uptime", duration(v.get("uptime_seconds")), "")
    users, p95 = _num(v.get("users"), "{:.0f}"), _num(v.get("users_p95_1h"), "{:.0f}")
    t.add_row("users", f"{users} now, p95 1h {p95}",
              sparkline(h.get("users", []), chars))
    t.add_row("requests", f"{_num(v.get('requests_per_s'))}/s (5m)", sparkline(h.get("requests", []), chars))
    err = v.get("errors_per_s")
    t.add_row("errors", Text(f"{_num(err)}/s (5m)", style="red" if err else ""),
              sparkline(h.get("errors", []), chars))
    if st.alerts:
        for a in st.alerts:
            sev = {"critical": "bold red", "warning": "yellow"}.get(a.severity, "")
            line = f"{a.name} ({a.severity or '?'}) firing {duration(a.age_seconds)}"
            t.add_row("alert", Text(line, style=sev), a.summary)
    else:
        t.add_row("alerts", Text("none firing", style="green"), "")
    for s in st.silences:
        t.add_row("silence", f"{duration(s.ends_in_seconds)} left, by {s.created_by}",
                  f"{s.matchers}: {s.comment}")
    fails = ", ".join(f"{k} {v:.0f}" for k, v in sorted(st.failures_24h.items()))
    t.add_row("notify failures", Text(fails or "none in 24h", style="red" if fails else "green"), "")
    age = v.get("last_notification_age_seconds")
    t.add_row("last sent", "none in 24h" if age is None else f"{duration(age)} ago", "")
    for c in st.channels:  # as verify judges them
        t.add_row(f"channel {c.name}", Text(c.detail, style="red" if not c.ok else "yellow" if c.warning
                                             else "green"), "")
    return t


def show(console: Console, statuses: list[HostStatus]) -> None:
    """Tables without the trailing padding rich adds, so piped output greps and diffs cleanly."""
    with console.capture() as cap:
        for st in statuses:
            console.print(host_table(st, console))
            console.print()
    console.file.write("\n".join(line.rstrip() for line in cap.get().split("\n")))
    console.file.flush()


def as_json(statuses: list[HostStatus]) -> str:
    return json.dumps([s.to_json() for s in statuses], indent=2)
