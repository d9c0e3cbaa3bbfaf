"""What `inv status` shows, read through the authenticated API clients (one SSH connection per host).

The runbook's "Monitoring Queries" as PromQL, one place: connection, uptime, users now and p95 over 1 h,
request and error rates over 5 m, an hour of history for the sparklines, firing alerts with their age,
active silences, Alertmanager notification failures in 24 h and the last successful notification.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from fabfile.alerting.api import ApiError, Apis, parse_time
from fabfile.config.labels import BOT_JOB, HEARTBEAT_ALERT
from fabfile.facts import deliveries

BOT = f'job="{BOT_JOB}"'
AM = 'job="alertmanager"'
INSTANT = {
    "connected": f"max(bot_connected{{{BOT}}})",
    "uptime_seconds": f"max(bot_uptime_seconds{{{BOT}}})",
    "users": f"sum(bot_users{{{BOT}}})",
    "users_p95_1h": f"quantile_over_time(0.95, sum(bot_users{{{BOT}}})[1h:1m])",
    "requests_per_s": f"sum(rate(bot_requests_total{{{BOT}}}[5m]))",
    "errors_per_s": f"sum(rate(bot_errors_total{{{BOT}}}[5m]))",
    # the newest minute of the last 24 h in which Alertmanager sent more notifications than failed
    "last_notification": ("max_over_time((timestamp("
                          f"sum(increase(alertmanager_notifications_total{{{AM}}}[2m]))"
                          f" - sum(increase(alertmanager_notifications_failed_total{{{AM}}}[2m])) > 0))"
                          "[24h:1m])"),
}
FAILURES_24H = f"sum by (integration) (increase(alertmanager_notifications_failed_total{{{AM}}}[24h]))"
HISTORY = {  # one hour, a point a minute: the sparklines
    "users": f"sum(bot_users{{{BOT}}})",
    "requests": f"sum(rate(bot_requests_total{{{BOT}}}[5m]))",
    "errors": f"sum(rate(bot_errors_total{{{BOT}}}[5m]))",
}
HISTORY_SECONDS, STEP = 3600, 60


@dataclass
class Alert:
    name: str
    severity: str
    age_seconds: float
    summary: str


@dataclass
class Silence:
    id: str
    matchers: str
    created_by: str
    comment: str
    ends_in_seconds: float


@dataclass
class Channel:
    """One configured channel as verify judges it (facts/deliveries.py)."""

    name: str
    ok: bool  # False: its last request failed
    detail: str
    warning: bool  # failed in 24 h, delivered since


@dataclass
class HostStatus:
    host: str
    env: str
    ok: bool = True  # False: the host could not be read (see error)
    error: str = ""
    note: str = ""  # agent mode: nothing to query here, the central store has it (facts/remote_write.py)
    values: dict[str, float | None] = field(default_factory=dict)
    history: dict[str, list[float | None]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    failures_24h: dict[str, float] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    seconds: float = 0.0  # how long reading took

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _scalar(result: list[dict]) -> float | None:
    try:
        return float(result[0]["value"][1]) if result else None
    except (KeyError, IndexError, ValueError):
        return None


def history_points(result: list[dict], start: float, end: float, step: float) -> list[float | None]:
    """A range query's first series on a fixed grid; None where Prometheus has no point (bot down)."""
    n = int((end - start) // step) + 1
    out: list[float | None] = [None] * n
    for ts, v in (result[0].get("values", []) if result else []):
        i = round((float(ts) - start) / step)
        if 0 <= i < n:
            try:
                out[i] = float(v)
            except ValueError:
                out[i] = None
    return out


def firing_alerts(raw: list[dict], now: float) -> list[Alert]:
    out = []
    for a in raw:
        if a.get("state") != "firing":
            continue
        labels, ann = a.get("labels") or {}, a.get("annotations") or {}
        try:
            age = max(0.0, now - parse_time(a.get("activeAt", "")))
        except ValueError:
            age = 0.0
        out.append(Alert(labels.get("alertname", "?"), labels.get("severity", ""), age,
                         ann.get("summary", "")))
    return sorted(out, key=lambda x: -x.age_seconds)


def active_silences(raw: list[dict], now: float) -> list[Silence]:
    from fabfile.alerting.silences import Matcher

    out = []
    for s in raw:
        ms = " ".join(str(Matcher.from_api(m)) for m in s.get("matchers", []))
        try:
            left = max(0.0, parse_time(s.get("endsAt", "")) - now)
        except ValueError:
            left = 0.0
        out.append(Silence(s.get("id", ""), ms, s.get("createdBy", ""), s.get("comment", ""), left))
    return out


def collect(apis: Apis, host: str, env: str, channels: dict[str, list[str]] | None = None) -> HostStatus:
    """Everything for one host (`channels`: its configured ones, deliveries.channels); ApiError -> a
    HostStatus that says why (the other hosts still show)."""
    t0 = time.monotonic()
    st = HostStatus(host, env)
    try:
        p, am = apis.prometheus, apis.alertmanager
        now = p.server_now()
        st.values = {k: _scalar(p.query(q)) for k, q in INSTANT.items()}
        last = st.values.get("last_notification")
        st.values["last_notification_age_seconds"] = None if last is None else max(0.0, now - last)
        end = now  # the newest point is now: a bot that just went down shows at the right edge
        for k, q in HISTORY.items():
            st.history[k] = history_points(p.query_range(q, end - HISTORY_SECONDS, end, STEP),
                                           end - HISTORY_SECONDS, end, STEP)
        st.failures_24h = {r["metric"].get("integration", "?"): float(r["value"][1])
                           for r in p.query(FAILURES_24H) if float(r["value"][1]) > 0}
        if channels:
            results = {k: p.query(q) for k, q in deliveries.QUERIES.items()}
            st.channels = [Channel(d.name, *deliveries.verdict(d, now))
                           for d in deliveries.deliveries(channels, results)]
        st.alerts = [a for a in firing_alerts(p.alerts(), now) if a.name != HEARTBEAT_ALERT]
        st.silences = active_silences(am.silences("active"), am.server_now())
    except ApiError as e:
        st.ok, st.error = False, str(e)
    st.seconds = time.monotonic() - t0
    return st
