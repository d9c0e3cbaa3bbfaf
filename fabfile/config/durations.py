"""Prometheus durations (`15s`, `1m30s`, `500ms`, `15d`): the one parser for the inventory, the rules' `for:`
and silence lengths, in Prometheus's own format (units largest first, each at most once)."""

from __future__ import annotations

import re
import typing

_UNITS = (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001))
MAX_DIGITS = 15  # 10^15 seconds is 30 million years: longer than any duration anyone means
_DURATION_RE = re.compile("^" + "".join(rf"(?:([0-9]+){u})?" for u, _ in _UNITS) + "$")


def parse_duration(text: str | int | float) -> float:
    """`15s` -> 15.0, `1m30s` -> 90.0, `500ms` -> 0.5; a number is taken as seconds. ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    t = str(text).strip()
    m = _DURATION_RE.fullmatch(t)
    if not t or not m:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    if any(n and len(n) > MAX_DIGITS for n in m.groups()):  # int() refuses 4300+ digits; none is meant
        raise ValueError(f"a duration with a {max(len(n or '') for n in m.groups())}-digit number")
    return float(sum(int(n) * mult for n, (_, mult) in zip(m.groups(), _UNITS, strict=True) if n))


def is_duration(text: str) -> bool:
    """Exactly a duration, as written into a config (no surrounding space)."""
    return bool(text) and _DURATION_RE.fullmatch(text) is not None


def _spell_seconds(s: float) -> str:
    for unit, mult in (("y", 31536000), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= mult and s % mult == 0:
            return f"{int(s // mult)}{unit}"
    return f"{s:g}s"


def duration_between(lo: float, hi: float) -> typing.Callable[[str], str | None]:
    """A duration setting with its bounds in seconds: a 0s interval is silently the default in Prometheus
    and an error in Alertmanager, and a huge one overflows the services' 64-bit nanoseconds at start."""

    def check(v: str) -> str | None:
        shown = repr(v) if len(v) <= 40 else f"{v[:40]!r}... ({len(v)} characters)"  # (a leaf module)
        if not is_duration(v):
            return f"expected a Prometheus duration like 15s, 5m or 15d, got {shown}"
        try:
            secs = parse_duration(v)
        except ValueError:  # a number too long to be meant
            secs = float("inf")
        if lo <= secs <= hi:
            return None
        return f"expected {_spell_seconds(lo)} to {_spell_seconds(hi)}, got {shown}"

    return check
