"""Prometheus durations (`15s`, `1m30s`, `500ms`, `15d`): the one parser for the inventory, the rules' `for:`
and silence lengths, in Prometheus's own format (units largest first, each at most once)."""

from __future__ import annotations

import re

_UNITS = (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001))
_DURATION_RE = re.compile("^" + "".join(rf"(?:([0-9]+){u})?" for u, _ in _UNITS) + "$")


def parse_duration(text: str | int | float) -> float:
    """`15s` -> 15.0, `1m30s` -> 90.0, `500ms` -> 0.5; a number is taken as seconds. ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    t = str(text).strip()
    m = _DURATION_RE.fullmatch(t)
    if not t or not m:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * mult for n, (_, mult) in zip(m.groups(), _UNITS, strict=True) if n))


def is_duration(text: str) -> bool:
    """Exactly a duration, as written into a config (no surrounding space)."""
    return bool(text) and _DURATION_RE.fullmatch(text) is not None
