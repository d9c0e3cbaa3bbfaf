"""Deliveries per channel: Alertmanager's per-integration request counters as Prometheus kept them for 24 h.

Prometheus scrapes its own Alertmanager (job `alertmanager`), so its history of
`alertmanager_notification_requests_total` / `..._failed_total` says, per integration, when a request last
got through, when one last failed, and how many failed in 24 h; `alertmanager_notifications_failed_total`
counts the notifications given up after every retry (lost). Read with instant queries (a subquery each), so
verify asks them in its one curl run and `inv status` through its API client alike.

A channel is one integration: Alertmanager counts per integration (`webhook` is both the webhook receiver and
the heartbeat), so channels sharing one are shown together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fabfile.config import receivers
from fabfile.config.settings import HostSettings
from fabfile.output import duration

AM = 'job="alertmanager"'  # the scrape job of the host's own Alertmanager (render.py)
REQ = "alertmanager_notification_requests_total"
REQ_FAILED = "alertmanager_notification_requests_failed_total"
LOST = "alertmanager_notifications_failed_total"
STEP = "1m"  # the subqueries' resolution: a time is good to about a minute
# a failure this recent with no delivery since is "failing right now": Alertmanager retries a notification
# for about its group_interval and the rule AlertmanagerNotificationsFailing looks 5 minutes back
FAILING_NOW = 600.0


def _per(metric: str, window: str) -> str:
    return f"sum by (integration) (increase({metric}{{{AM}}}[{window}]))"


def _minute(metric: str) -> str:
    """Per integration, what the counter grew by in the minute before: no extrapolation (increase() makes a
    request and its failure differ by a fraction within the same minute), and with the subqueries' 1m step
    the minutes neither overlap nor leave gaps. A counter reset (a restart) is negative: no event."""
    return f"sum by (integration) ({metric}{{{AM}}} - {metric}{{{AM}}} offset {STEP})"


def _last(expr: str) -> str:
    """The newest minute of the last 24 h in which `expr` (per integration) was above zero."""
    return f"max by (integration) (max_over_time((timestamp({expr} > 0))[24h:{STEP}]))"


# every request that got through: all requests less the failed ones (a missing failure series counts 0)
_OK = f"{_minute(REQ)} - ({_minute(REQ_FAILED)} or {_minute(REQ)} * 0)"
QUERIES = {
    "last_ok": _last(_OK),
    "last_failed": _last(_minute(REQ_FAILED)),
    "failed_24h": _per(REQ_FAILED, "24h"),
    "lost_24h": _per(LOST, "24h"),
}


def channels(host: HostSettings) -> dict[str, list[str]]:
    """{integration: the host's channels using it}: email always, then each receiver type turned on."""
    out: dict[str, list[str]] = {"email": ["email"]}
    for rtype, settings in receivers.enabled(host.receivers):
        integ = rtype.integration(settings).config_key.removesuffix("_configs")
        out.setdefault(integ, []).append(rtype.name)
    return out


@dataclass(frozen=True)
class Delivery:
    """One integration's last 24 h, times by Prometheus's clock (None: not within 24 h)."""

    integration: str
    channels: tuple[str, ...]
    last_ok: float | None = None
    last_failed: float | None = None
    failed: float = 0.0  # failed requests (a retry may still have got through)
    lost: float = 0.0  # notifications given up after every retry

    @property
    def name(self) -> str:
        names = ", ".join(self.channels)
        return self.integration if names == self.integration else f"{self.integration} ({names})"

    @property
    def failing(self) -> bool:
        """Its last word was a failure: no request got through since the last failed one."""
        return self.last_failed is not None and (self.last_ok is None or self.last_failed > self.last_ok)


def _by_integration(result: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for r in result:
        try:
            out[(r.get("metric") or {}).get("integration", "?")] = float(r["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return out


def deliveries(host: HostSettings | dict[str, list[str]],
               results: dict[str, list[dict[str, Any]]]) -> list[Delivery]:
    """Each configured channel's deliveries (the host's, or its `channels`) from the answers to QUERIES
    (each its `data.result`)."""
    got = {k: _by_integration(results.get(k) or []) for k in QUERIES}
    chans = host if isinstance(host, dict) else channels(host)
    return [Delivery(integ, tuple(names), got["last_ok"].get(integ), got["last_failed"].get(integ),
                     got["failed_24h"].get(integ, 0.0), got["lost_24h"].get(integ, 0.0))
            for integ, names in chans.items()]


def _ago(t: float, now: float | None) -> str:
    return f"{duration(max(0.0, now - t))} ago" if now is not None else "within 24 h"


def verdict(d: Delivery, now: float | None) -> tuple[bool, str, bool]:
    """(passes, the line's text, only a warning) for one channel.

    Failing right now (a request failed within FAILING_NOW and none got through since) fails: Alertmanager is
    dropping or retrying this channel's messages as we look, silence that looks like health. Otherwise any
    failure in 24 h is a warning: it delivered again since, or its last failure is older and nothing was
    sent since (unknown until something is: `inv test-alert --synthetic` tells). No request in 24 h passes:
    a quiet day sends nothing.
    """
    ok = f"last delivered {_ago(d.last_ok, now)}" if d.last_ok is not None else "nothing delivered in 24 h"
    if not d.failed and d.last_failed is None:
        return True, f"{ok}; no failure in 24 h", False
    lost = f", {d.lost:.0f} notification(s) given up" if d.lost >= 0.5 else ""
    last = f", last {_ago(d.last_failed, now)}" if d.last_failed is not None else ""
    failures = f"{d.failed:.0f} failed request(s) in 24 h{lost}{last}"
    if not d.failing:
        return True, f"{failures}; delivered since ({ok})", True
    if now is None or d.last_failed is None or now - d.last_failed <= FAILING_NOW:
        return False, (f"FAILING: {failures}; {ok} (Alertmanager's log says why: journalctl -u "
                       f"alertmanager; after a fix, inv test-alert --synthetic proves it)"), False
    return True, f"{failures}; {ok}, nothing delivered since: check it with inv test-alert --synthetic", True
