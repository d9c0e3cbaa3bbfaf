"""Was a notification for this alert successfully sent, per integration? Read from Alertmanager's own
counters (`alertmanager_notification_requests_*`), and when requests fail, its log says why.

Why counters and not the mail box: the drill runs against real receivers (mail, chat) it cannot read; the
counters are what Alertmanager itself knows about delivery. Another alert's notification must never be taken
for ours, so alert groups that appear meanwhile raise the number of requests we wait for.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fabfile.alerting.api import ApiError, Apis, NotifyCounts
from fabfile.drill.errors import DrillFailed, why
from fabfile.drill.target import Target

_INTEGRATIONS = re.compile(r"^(\w+)_configs$")
LOG_READS, LOG_READ_PAUSE = 4, 3.0  # the journal read for a failure's error line: tries, seconds apart


def receiver_integrations(am_config: dict, receiver: str, resolved: bool = False) -> dict[str, int]:
    """{integration: number of configs} of a receiver; with resolved=True only configs with send_resolved."""
    for r in am_config.get("receivers") or []:
        if r.get("name") != receiver:
            continue
        out: dict[str, int] = {}
        for key, configs in r.items():
            m = _INTEGRATIONS.match(key)
            if not m or not configs:
                continue
            n = sum(1 for c in configs if not resolved or (c or {}).get("send_resolved"))
            if n:
                out[m.group(1)] = out.get(m.group(1), 0) + n
        return out
    return {}


def mail_subjects(am_config: dict, receivers: list[str], alertname: str) -> list[str]:
    """The Subject lines the receivers' email configs will send for `alertname` (what to look for in the
    mailbox: the subject of the receiver the alert is actually routed to, not a guess)."""
    out = []
    for r in am_config.get("receivers") or []:
        if r.get("name") in receivers:
            for c in r.get("email_configs") or []:
                subject = ((c or {}).get("headers") or {}).get("Subject")
                if subject:
                    out.append(re.sub(r"{{\s*\.GroupLabels\.alertname\s*}}", alertname, subject))
    return out


def _group_key(g: dict) -> tuple:
    return ((g.get("receiver") or {}).get("name", ""), tuple(sorted((g.get("labels") or {}).items())))


Snapshot = tuple[dict[str, NotifyCounts] | None, ...]  # counters per Alertmanager (None: no answer)


@dataclass(frozen=True)
class Baseline:
    """Counters (the delivering Alertmanager's first, then the other cluster members') and alert groups at
    one moment; notifications are counted from here."""

    counts: Snapshot
    groups: dict[tuple, list[str]]  # active alert groups -> the alert names in each


def _since(now: NotifyCounts, base: NotifyCounts | None) -> NotifyCounts:
    """What happened from `base` to `now`; a counter below its baseline means a restart (count from 0)."""
    if base is None or now.requests < base.requests or now.total < base.total:
        return now
    return NotifyCounts(now.total - base.total, now.failed - base.failed, now.requests - base.requests,
                        now.requests_failed - base.requests_failed)


class NotificationWatch:
    """Delivery as the cluster sees it: the `target`'s Alertmanager, plus the other members (`others`).

    Why the others count too: in a cluster each notification is sent ONCE, by whichever member's turn it is
    (ordered by gossip position), not necessarily by the Alertmanager the drill watches.
    """

    def __init__(self, target: Target, mask: Callable[[str], str], fail_grace: float,
                 others: tuple[Target, ...] = ()) -> None:
        self.t, self.mask, self.fail_grace, self.others = target, mask, fail_grace, others
        self._config: dict | None = None

    def config(self, apis: Apis) -> dict:
        if self._config is None:
            self._config = apis.alertmanager.config()
        return self._config

    def expected(self, apis: Apis, receivers: list[str], resolved: bool) -> dict[str, int]:
        """{integration: notifications} the receivers send (resolved=True: only those with send_resolved)."""
        need: dict[str, int] = {}
        cfg = self.config(apis)
        for r in receivers:
            for integ, n in receiver_integrations(cfg, r, resolved).items():
                need[integ] = need.get(integ, 0) + n
        return need

    def active_groups(self, apis: Apis) -> dict[tuple, list[str]]:
        """Alert groups with at least one alert that will be notified (not silenced/inhibited)."""
        groups = apis.alertmanager.json("GET", "/api/v2/alerts/groups",
                                        params={"silenced": "false", "inhibited": "false", "active": "true"})
        return {_group_key(g): [((a.get("labels") or {}).get("alertname", "")) for a in g.get("alerts", [])]
                for g in groups if g.get("alerts")}

    def snapshot(self, apis: Apis) -> Snapshot:
        """The counters of every member; a member that does not answer (stopped, host down) is None."""
        out: list[dict[str, NotifyCounts] | None] = [apis.alertmanager.notify_counts()]
        for t in self.others:
            try:
                out.append(t.apis().alertmanager.notify_counts())
            except ApiError:
                with contextlib.suppress(Exception):
                    t.reconnect()
                out.append(None)
        return tuple(out)

    def baseline(self, apis: Apis, counts: Snapshot | None = None) -> Baseline:
        return Baseline(self.snapshot(apis) if counts is None else counts, self.active_groups(apis))

    @staticmethod
    def delta(now: Snapshot, base: Snapshot, integ: str) -> NotifyCounts:
        """Sent by the whole cluster for `integ` since `base` (a member not answering now adds nothing)."""
        total = NotifyCounts()
        for i, counts in enumerate(now):
            if counts is None:
                continue
            b = base[i] if i < len(base) else None
            d = _since(counts.get(integ, NotifyCounts()), None if b is None else b.get(integ, NotifyCounts()))
            total = NotifyCounts(total.total + d.total, total.failed + d.failed, total.requests + d.requests,
                                 total.requests_failed + d.requests_failed)
        return total

    def sent(self, need: dict[str, int], base: Baseline, exclude: str,
             not_before: float = 0.0) -> Callable[[Apis], Snapshot | None]:
        """A check for `Drill.wait`: the counters once every needed integration has that many more SUCCESSFUL
        requests (plus one per new, unrelated alert group routed to it); DrillFailed naming each failing
        integration and Alertmanager's error when requests to it fail and none succeeds, once every other
        integration has delivered or failed too (so the report says which channels did get it).

        `not_before` (monotonic): nothing counts as ours before then. The counters are per integration, so
        another group's mail in the same second (an alert of a dead host expiring, the resolve of a group
        resolved just before the drill) would pass for ours; a NEW group cannot be notified before its
        group_wait, which is what the caller passes. Until then every look re-bases the count: a mail sent
        before it is someone else's, and taking it for ours would leave ours uncounted (and a resolve posted
        before our group's first flush is never mailed at all)."""
        first_fail: dict[str, float] = {}
        since = time.time()
        counted_from, known, first_look = base.counts, dict(base.groups), True

        def check(apis: Apis) -> Snapshot | None:
            nonlocal counted_from, known, first_look
            now_counts = self.snapshot(apis)
            groups = self.active_groups(apis)
            if time.monotonic() < not_before:
                counted_from = now_counts
                if first_look:  # groups already there came before ours: their first mail is not awaited
                    known = {**known, **groups}
                first_look = False
                return None
            want = dict(need)
            cfg = self.config(apis)
            for key, names in groups.items():
                if key in known or exclude in names:
                    continue
                for integ, n in receiver_integrations(cfg, key[0], False).items():
                    if integ in want:
                        want[integ] += n
            delivered, failing, waiting = [], {}, False
            for integ, n in want.items():
                d = self.delta(now_counts, counted_from, integ)
                ok, bad, final_bad = d.succeeded_requests, d.requests_failed, d.failed
                if ok >= n:
                    delivered.append(integ)
                    continue
                if bad > 0 or final_bad > 0:
                    first_fail.setdefault(integ, time.monotonic())
                    if final_bad > 0 or time.monotonic() - first_fail[integ] >= self.fail_grace:
                        failing[integ] = (int(bad), int(final_bad))
                        continue
                waiting = True
            if failing and not waiting:
                self._fail(failing, delivered, since)
            return now_counts if not failing and not waiting else None

        return check

    def _fail(self, failing: dict[str, tuple[int, int]], delivered: list[str], since: float) -> None:
        errors: list[str] = []
        try:
            # the failure counter moves before its log line reaches the journal (seconds on a busy server):
            # read again a few times before saying there is none
            for attempt in range(LOG_READS):
                if attempt:
                    time.sleep(LOG_READ_PAUSE)
                errors = self.t.notify_errors(since)
                if errors:
                    break
        except Exception as e:  # reading the log must not hide the real finding
            errors = [f"(could not read Alertmanager's log: {why(e)})"]
        parts = []
        for integ, (bad, final_bad) in failing.items():
            mine = [e for e in errors if integ in e] or errors
            err = "; ".join(mine) if mine else "no error line found in Alertmanager's log"
            parts.append(f"notifications are FAILING for integration {integ!r} ({bad} failed request(s), "
                         f"{final_bad} notification(s) given up): {err}")
        ok = f" (delivered: {', '.join(delivered)})" if delivered else ""
        raise DrillFailed(self.mask("; ".join(parts) + ok))
