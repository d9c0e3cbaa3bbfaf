"""`synthetic` (also `--synthetic`): post a test alert straight to Alertmanager, resolve it; the bot is
untouched."""

from __future__ import annotations

import contextlib
import time
from secrets import token_hex

from fabfile.alerting.api import ApiError, Apis, iso, parse_time
from fabfile.alerting.silences import me
from fabfile.config.durations import parse_duration
from fabfile.config.labels import CLUSTER_LABEL
from fabfile.drill.bounds import Bounds
from fabfile.drill.contract import DrillResult, DrillRun, Expectation
from fabfile.drill.errors import DrillFailed, why
from fabfile.drill.scenarios.common import GRACE, PRECHECK_TRIES, silence_problems
from fabfile.drill.timeline import Timeline

SYNTHETIC = "RoseyMonitoringTest"

class Synthetic:
    """Post a test alert to Alertmanager, resolve it: checks the Alertmanager -> receiver path without
    touching the bot."""

    restoring = f"resolving the {SYNTHETIC} alert"

    def __init__(self) -> None:
        self.bounds: Bounds | None = None
        self.broken = False  # the test alert is posted and not yet resolved
        self.firing_budget = self.resolve_budget = 0.0
        self.labels: dict[str, str] = {}
        self.annotations = {
            "summary": f"DRILL: synthetic test alert from `inv test-alert --synthetic` by {me()} "
                       f"— no action needed",
            "description": "Checks the Alertmanager -> receiver path without touching the bot. "
                           "A resolved notification follows."}
        self.starts = self.firing_ends = self.posted = 0.0

    def labels_for(self, d: DrillRun, apis: Apis) -> dict[str, str]:
        """`drill_run` makes each run a NEW alert: re-posting one Alertmanager already notified would be
        deduplicated (no mail until repeat_interval) and the drill would wait for nothing."""
        labels = {"alertname": SYNTHETIC, "severity": "critical", "env": d.host.env,
                  "job": "rosey-drill", "instance": me(), "drill": "true", "drill_run": token_hex(4)}
        with contextlib.suppress(ApiError):
            labels.update({k: v for k, v in apis.prometheus.external_labels().items() if k not in labels})
        labels.setdefault("cluster", CLUSTER_LABEL)
        return labels

    def prepare(self, d: DrillRun) -> Expectation:
        apis = d.t.apis()
        if not apis.alertmanager.healthy(PRECHECK_TRIES):
            raise DrillFailed("pre-check failed: Alertmanager /-/healthy does not answer")
        a = d.host.alertmanager
        self.bounds = b = Bounds(0, 0, 0, parse_duration(a.group_wait), parse_duration(a.group_interval))
        self.labels = labels = self.labels_for(d, apis)
        problems = silence_problems(d, apis, labels)
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        mine = {k: labels[k] for k in ("alertname", "job", "instance")}
        for old in apis.alertmanager.alerts(mine):  # an earlier run's, e.g. killed before its clean-up
            d.say(f"note: resolving a {SYNTHETIC} alert left active by an earlier run "
                  f"(drill_run={(old.get('labels') or {}).get('drill_run', '?')})")
            old_start = parse_time(old.get("startsAt") or iso(apis.alertmanager.server_now()))
            apis.alertmanager.post_alerts([{"labels": old.get("labels") or {}, "startsAt": iso(old_start),
                                            "endsAt": iso(max(old_start, apis.alertmanager.server_past()))}])
        self.firing_budget = d.timeout or (b.group_wait + b.group_interval + GRACE)
        self.resolve_budget = d.timeout or (b.group_interval + GRACE)
        return Expectation(SYNTHETIC, labels)

    def break_it(self, d: DrillRun) -> None:
        am = d.t.apis().alertmanager
        # Both times come from Alertmanager's clock: it alone decides whether our endsAt is past.
        self.starts = am.server_now() - 1.0
        self.firing_ends = self.starts + 3600
        am.post_alerts([{"labels": self.labels, "annotations": self.annotations,
                         "startsAt": iso(self.starts), "endsAt": iso(self.firing_ends)}])
        self.broken = True
        self.posted = time.monotonic()
        d.timeline.mark("posted")

    def until_alerting(self, d: DrillRun, deadline: float, t0: float) -> None:
        """Nothing to wait for: the alert was posted to Alertmanager directly."""

    def restore(self, d: DrillRun) -> None:
        # A resolve that reaches Alertmanager before its group's first flush is never mailed (nothing was
        # notified to resolve): the counters cannot prove the mail we saw was ours, the clock can.
        rest = self.posted + (self.bounds.group_wait if self.bounds else 0.0) + 1.0 - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        self.resolve(d)
        self.broken = False
        d.timeline.mark("resolved")

    def until_cleared(self, d: DrillRun, deadline: float, t0: float) -> None:
        d.wait(f"Alertmanager: {SYNTHETIC} resolved", deadline, t0, lambda x: not self._still_held(x))

    def make_whole(self, d: DrillRun, result: DrillResult) -> None:
        """Never leave the test alert firing."""
        if not self.broken:
            return
        try:
            self.resolve(d)
        except Exception as e:
            d.say(f"WARNING: could not resolve the {SYNTHETIC} alert ({why(e)}); it expires by itself "
                  f"within the hour")

    def resolve(self, d: DrillRun) -> None:
        """Post the test alert again with `endsAt` certainly in Alertmanager's past, and check it took.

        Why not "now" on this machine: if this clock is ahead of the server's even by 0.3 s, that endsAt
        is still in the server's future, and Alertmanager's merge keeps the LATER end of the two postings
        (the firing one's, an hour away) — the resolve is answered 200 and silently ignored.
        """
        am = d.t.apis().alertmanager
        ends = max(self.starts, am.server_past(margin=1.0))
        try:
            am.post_alerts([{"labels": self.labels, "annotations": self.annotations,
                             "startsAt": iso(self.starts), "endsAt": iso(ends)}])
        except ApiError as e:
            raise DrillFailed(f"Alertmanager rejected the resolve of {SYNTHETIC} (endsAt {iso(ends)}, "
                              f"{am.clock.describe()}): {e}") from None
        self._still_held(d.t.apis())  # an ignored resolve fails here, at once

    def _still_held(self, apis: Apis) -> bool:
        """Still active; DrillFailed at once if Alertmanager kept the firing posting's end (resolve ignored),
        instead of waiting out the deadline in silence."""
        held = apis.alertmanager.alerts(self.labels)
        for a in held:
            with contextlib.suppress(ValueError):
                if parse_time(a.get("endsAt") or "") >= self.firing_ends - 1:
                    raise DrillFailed(
                        f"Alertmanager ignored the resolve of {SYNTHETIC}: it still ends at "
                        f"{a.get('endsAt')} (the firing posting's end); {apis.alertmanager.clock.describe()}")
        return bool(held)

    def verdict(self, tl: Timeline) -> str:
        notified = tl.between("posted", "notified") or 0
        resolved = tl.between("resolved", tl.events[-1][0]) or 0
        return (f"synthetic drill passed: notified {notified:.1f}s after posting, "
                f"resolved notification {resolved:.1f}s after resolving")
