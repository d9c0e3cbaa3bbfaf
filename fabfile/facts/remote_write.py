"""Remote write per target, from Prometheus's own /metrics: samples sent, samples refused, and the lag.

Read from /metrics rather than the query API so the same lines work in agent mode (which has no query API).
The names are the same in 2.42, 2.53 and 3.5.3. The lag is the newest sample written less the newest sample
sent to that target. A refused sample (a 4xx: wrong credential, unknown tenant) is dropped, and Prometheus
still moves its highest-sent timestamp on, so a wrong credential shows as refusals, not as lag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.config.settings import HostSettings
from fabfile.output import duration

PREFIX = "prometheus_remote_storage_"  # the /metrics lines verify keeps
SENT = f"{PREFIX}samples_total"
FAILED = f"{PREFIX}samples_failed_total"
SENT_TS = f"{PREFIX}queue_highest_sent_timestamp_seconds"
WRITTEN_TS = f"{PREFIX}highest_timestamp_in_seconds"
BEHIND = 120.0  # seconds: the rule RemoteWriteBehind's threshold
# the share of sent samples refused over which a target counts as failing (a few refusals of odd series
# after a relabel change are a warning; a wrong credential refuses nearly everything)
FAILING_SHARE = 0.5
# The checks that need the query API, the rules or the Alertmanager wiring, which agent mode does not have
MOVED_IN_AGENT_MODE = ("the bot's query", "firing alerts", "Alertmanager discovery", "channel deliveries")
_LINE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Queue:
    name: str
    sent: float | None = None
    failed: float = 0.0
    lag: float | None = None  # seconds behind the newest written sample; None: nothing sent yet


def parse(metrics: str) -> tuple[dict[str, dict[str, float]], float | None]:
    """({remote_name: {metric: value}}, the newest written sample's time) from /metrics text."""
    queues: dict[str, dict[str, float]] = {}
    written = None
    for line in metrics.splitlines():
        m = _LINE.fullmatch(line.strip())
        if not m or not m.group("name").startswith(PREFIX):
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group("labels") or ""))
        if m.group("name") == WRITTEN_TS:
            written = max(written or 0.0, value)
        elif "remote_name" in labels:
            queue = queues.setdefault(labels["remote_name"], {})
            queue[m.group("name")] = queue.get(m.group("name"), 0.0) + value
    return queues, written


def queues(host: HostSettings, metrics: str) -> list[Queue]:
    """One entry per configured target, in inventory order (a target Prometheus does not know: all None)."""
    found, written = parse(metrics)
    out = []
    for t in host.remote_write:
        q = found.get(t.name, {})
        sent_ts = q.get(SENT_TS)
        lag = max(0.0, written - sent_ts) if written is not None and sent_ts else None
        out.append(Queue(t.name, q.get(SENT), q.get(FAILED, 0.0), lag))
    return out


def verdict(q: Queue) -> tuple[bool, str, bool]:
    """(passes, the line's text, only a warning) for one target."""
    if q.sent is None:
        return False, ("Prometheus has no queue for this target: its config is not loaded (run "
                       "deploy-configs; journalctl -u prometheus)"), False
    lag = f"lag {duration(q.lag)}" if q.lag is not None else "nothing sent yet"
    text = f"{q.sent:.0f} samples sent, {q.failed:.0f} refused, {lag}"
    where = "(journalctl -u prometheus | grep -i remote; 401/403: the remote_write secret or username)"
    if q.sent and q.failed >= FAILING_SHARE * q.sent:
        return False, f"FAILING: {text}: the store refuses the samples {where}", False
    if q.lag is not None and q.lag > BEHIND:
        return False, f"BEHIND: {text}: the store is unreachable or slow; the backlog waits in the WAL", False
    return True, text + (" (some refused since the start)" if q.failed else ""), bool(q.failed)


def agent_note() -> str:
    """What verify and status say on an agent-mode host (the drill refuses with the same reason)."""
    return (f"agent mode: {', '.join(MOVED_IN_AGENT_MODE)} are checked on the central store this host "
            "writes to, not here (README 'Agent mode')")


def checks(host: HostSettings, metrics: str) -> list[tuple[str, bool, str, bool]]:
    """verify's lines: one per remote_write target, and in agent mode the one that says what moved."""
    out = [(f"remote_write {q.name}", *verdict(q)) for q in queues(host, metrics)]
    if host.prometheus.agent:
        out.append(("agent mode", True, agent_note(), False))
    return out
