"""`monitoring-down` (clustered hosts): stop this host's Prometheus and Alertmanager, expect the PEER's
Alertmanager to deliver MonitoringPeerDown, start them again."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Protocol

from fabfile.alerting.api import ApiError, Apis
from fabfile.config.layout import SERVICES
from fabfile.config.rules_file import rules_source
from fabfile.drill.bounds import Bounds, bounds_for
from fabfile.drill.contract import DrillResult, DrillRun, Expectation
from fabfile.drill.errors import DrillFailed
from fabfile.drill.scenarios.common import (
    GRACE,
    PEER_TIMEOUT,
    PEER_TURN,
    PRECHECK_TRIES,
    judged,
    rule_for_drill,
    silence_problems,
)
from fabfile.drill.target import Target
from fabfile.drill.timeline import Timeline

PEER_ALERT = "MonitoringPeerDown"
MONITORING_UNITS = SERVICES  # the systemd units prometheus and alertmanager; never the bot


class ServiceControl(Protocol):
    """What MonitoringDown needs from the drilled host's target besides the Target protocol."""

    def stop_units(self, units: tuple[str, ...]) -> None: ...
    def start_units(self, units: tuple[str, ...]) -> None: ...
    def unit_active(self, unit: str) -> bool: ...


class MonitoringDown:
    """Stop Prometheus and Alertmanager on a clustered host (never the bot); the PEER's Prometheus fires
    MonitoringPeerDown{peer=<host>} and the peer's Alertmanager delivers it; start them again and confirm
    them healthy — whatever happens."""

    def __init__(self, rules_path: Path | None = None) -> None:
        self.rules_path = rules_path or rules_source()
        self.bounds: Bounds | None = None
        self.broken = False
        self.firing_budget = self.resolve_budget = 0.0
        self.peer_name = ""
        self.restoring = f"making sure {' and '.join(MONITORING_UNITS)} are running"
        self.healthy: bool | None = None

    def peer(self, d: DrillRun) -> Target:
        return d.peers[self.peer_name]

    def labels(self, d: DrillRun) -> dict[str, str]:
        return {"alertname": PEER_ALERT, "peer": d.host.name}

    def prepare(self, d: DrillRun) -> Expectation:
        cluster = d.host.cluster
        if cluster is None or not d.peers:
            raise DrillFailed(f"{d.host.name} is not in a cluster: nobody else would notice its monitoring "
                              f"stop (add it to a `clusters:` entry in hosts.yml)")
        self.peer_name = cluster.peers[0].name
        peer_host = d.ctx.inventory.host(self.peer_name)
        rule = rule_for_drill(self.rules_path, PEER_ALERT)
        self.bounds = b = bounds_for(peer_host, rule)  # the PEER's intervals decide how soon it notices
        self.firing_budget = d.timeout or (b.detect + PEER_TIMEOUT + GRACE)
        self.resolve_budget = d.timeout or (b.resolve + PEER_TIMEOUT + GRACE)
        peer = self.peer(d)
        problems = []
        try:
            apis = peer.apis()
            if not (apis.prometheus.healthy(PRECHECK_TRIES) and apis.alertmanager.healthy(PRECHECK_TRIES)):
                problems.append(f"the peer {self.peer_name}'s Prometheus or Alertmanager is not healthy")
            watched = [t for t in apis.prometheus.targets()
                       if (t.get("labels") or {}).get("peer") == d.host.name]
            if not watched:
                problems.append(f"{self.peer_name}'s Prometheus does not scrape {d.host.name} "
                                f"(deploy both hosts with the cluster first)")
            elif any(t.get("health") != "up" for t in watched):
                problems.append(f"{self.peer_name} already sees {d.host.name}'s monitoring down")
            if [a for a in apis.prometheus.alerts(PEER_ALERT)
                    if (a.get("labels") or {}).get("peer") == d.host.name]:
                problems.append(f"{PEER_ALERT}{{peer={d.host.name}}} is already active on {self.peer_name}")
            problems += silence_problems(d, apis, {**self.labels(d), **rule.labels})
        except ApiError as e:
            problems.append(f"cannot reach the peer {self.peer_name}: {e}")
        control: ServiceControl = d.t  # type: ignore[assignment]
        down = [u for u in MONITORING_UNITS if not control.unit_active(u)]
        if down:
            problems.append(f"{', '.join(down)} not active on {d.host.name}")
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        d.say(f"pre-checks passed: {self.peer_name} watches {d.host.name}; expecting {PEER_ALERT}"
              f"{{peer={d.host.name}}} from {self.peer_name}'s Alertmanager")
        return Expectation(PEER_ALERT, self.labels(d), target=peer, others=(d.t,),
                           whose=f"{self.peer_name}'s Alertmanager")

    def break_it(self, d: DrillRun) -> None:
        self.broken = True  # before the call: even a half-done stop gets undone
        control: ServiceControl = d.t  # type: ignore[assignment]
        control.stop_units(MONITORING_UNITS)
        d.timeline.mark("stop")
        assert self.bounds is not None
        d.say(f"stopped {' and '.join(MONITORING_UNITS)} on {d.host.name} (the bot keeps running); "
              f"expecting {self.peer_name} to notify within {self.bounds.detect_text()}, {PEER_TURN} "
              f"when the other member's turn comes first "
              f"(giving up after {self.firing_budget:.0f}s)")

    def _peer_alerts(self, a: Apis, host: str) -> list[dict]:
        return [x for x in a.prometheus.alerts(PEER_ALERT) if (x.get("labels") or {}).get("peer") == host]

    def until_alerting(self, d: DrillRun, deadline: float, t0: float) -> None:
        d.wait(f"{self.peer_name}'s Prometheus: {PEER_ALERT}{{peer={d.host.name}}} firing", deadline, t0,
               lambda a: any(x.get("state") == "firing" for x in self._peer_alerts(a, d.host.name)),
               self.peer(d))
        d.timeline.mark("firing")

    def restore(self, d: DrillRun) -> None:
        control: ServiceControl = d.t  # type: ignore[assignment]
        control.start_units(MONITORING_UNITS)
        d.t.reconnect()  # the tunnels pointed at the stopped services
        d.timeline.mark("started")
        d.say(f"started {' and '.join(MONITORING_UNITS)} on {d.host.name}")

    @staticmethod
    def _ready(a: Apis) -> bool:
        """Ready, not just answering: a Prometheus replaying its WAL answers /-/healthy but no query yet.
        Not ready is an ApiError, so `wait` reconnects: a tunnel opened while a service was still starting
        had its channel refused, and Fabric's forwarder serves no connection after that."""
        if not (a.prometheus.ready() and a.alertmanager.ready()):
            raise ApiError("Prometheus or Alertmanager not ready yet")
        return True

    def until_cleared(self, d: DrillRun, deadline: float, t0: float) -> None:
        d.wait(f"{d.host.name}: Prometheus and Alertmanager ready", deadline, t0, self._ready)
        d.timeline.mark("healthy")
        d.wait(f"{self.peer_name}'s Prometheus: {PEER_ALERT}{{peer={d.host.name}}} resolved", deadline, t0,
               lambda a: not self._peer_alerts(a, d.host.name), self.peer(d))
        d.timeline.mark("resolved")

    def make_whole(self, d: DrillRun, result: DrillResult) -> None:
        """The monitoring guarantee: both started and confirmed active (and healthy), or a loud result."""
        if not self.broken:
            return
        control: ServiceControl = d.t  # type: ignore[assignment]
        bad = [u for u in MONITORING_UNITS
               if not d.ensure_running(u, lambda u=u: control.unit_active(u),
                                       lambda u=u: control.start_units((u,)))]
        if bad:
            result.ok = False
            result.message += (f"; !!! {', '.join(bad)} could NOT be confirmed running on {d.host.name} — "
                               f"start by hand: sudo systemctl start {' '.join(bad)}")
            return
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                d.t.reconnect()
                a = d.t.apis()
                if a.prometheus.healthy() and a.alertmanager.healthy():
                    self.healthy = True
                    result.details.append(f"{d.host.name}: {' and '.join(MONITORING_UNITS)} active and "
                                          f"healthy again")
                    return
            time.sleep(2)
        self.healthy = False
        result.ok = False
        result.message += f"; !!! {d.host.name}: services active but /-/healthy does not answer"

    def verdict(self, tl: Timeline) -> str:
        assert self.bounds is not None
        det = tl.between("stop", "notified") or 0.0
        within = judged(det, self.bounds, True)
        return (f"drill passed: {self.peer_name} notified {PEER_ALERT} {det:.1f}s after the stop "
                f"({within} the bound of {self.bounds.detect:g}s); monitoring back after "
                f"{tl.between('started', 'healthy') or 0:.1f}s")
