"""`synthetic` (also `--synthetic`): post a test alert straight to Alertmanager, resolve it; the bot is
untouched. `--alert NAME --severity SEV` send a rule's name (with its labels) through that alert's real route.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from pathlib import Path
from secrets import token_hex

from fabfile.alerting.api import ApiError, Apis, iso, parse_time
from fabfile.alerting.silences import me
from fabfile.config.durations import parse_duration
from fabfile.config.labels import CLUSTER_LABEL
from fabfile.config.rules_file import alert_names, load_rule, rules_source
from fabfile.drill.bounds import Bounds
from fabfile.drill.contract import DrillResult, DrillRun, Expectation
from fabfile.drill.errors import DrillFailed, why
from fabfile.drill.scenarios.common import GRACE, PRECHECK_TRIES, silence_problems
from fabfile.drill.timeline import Timeline
from fabfile.errors import UserError, quoted

SYNTHETIC = "RoseyMonitoringTest"
SEVERITIES = ("critical", "warning", "info")  # what the routes tell apart (alert_rules.yml uses these)


class AlertChoiceError(UserError):
    """`--alert` / `--severity` name nothing the rules and routes know (one line, before connecting)."""


def _shown(flag_value: str) -> str:
    """A flag's value as typed when it is a short plain word; quoted and cut otherwise (a newline would
    split the one error line, 5000 characters would bury it)."""
    plain = flag_value.isprintable() and len(flag_value) <= 40 and " " not in flag_value
    return flag_value if plain else quoted(flag_value)


def chosen_alert(alert: str = "", severity: str = "", rules_path: Path | None = None) -> dict[str, str]:
    """The labels that decide the route of the test alert: `alertname`, `severity` and the rule's others.

    `--alert` must be a rule of the rules file that gets deployed (or the default test alert): the point
    is the real route of a real alert, its labels (e.g. `component`) come from the rule, and a typo is
    refused instead of testing a route no alert takes. `--severity` overrides the rule's.
    """
    if severity and severity not in SEVERITIES:
        raise AlertChoiceError(f"--severity {_shown(severity)}: unknown; one of {', '.join(SEVERITIES)}")
    labels = {"alertname": SYNTHETIC, "severity": "critical"}
    if alert and alert != SYNTHETIC:
        path = rules_path or rules_source()
        names = alert_names(path)
        if alert not in names:
            near = difflib.get_close_matches(alert, names, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"one of {', '.join(names)}"
            raise AlertChoiceError(f"--alert {_shown(alert)}: no alert rule of that name in {path}; {hint}")
        labels = {**load_rule(alert, path).labels, "alertname": alert}
    if severity:
        labels["severity"] = severity
    return labels


class Synthetic:
    """Post a test alert to Alertmanager, resolve it: checks the Alertmanager -> receiver path without
    touching the bot."""

    def __init__(self, chosen: dict[str, str] | None = None) -> None:
        self.chosen = chosen or chosen_alert()  # alertname, severity and the rule's other labels
        self.alert = self.chosen["alertname"]
        self.restoring = f"resolving the test {self.alert} alert"
        self.bounds: Bounds | None = None
        self.broken = False  # the test alert is posted and not yet resolved
        self.firing_budget = self.resolve_budget = 0.0
        self.labels: dict[str, str] = {}
        self.annotations = {
            "summary": f"DRILL: synthetic test {self.alert} ({self.chosen.get('severity', '-')}) from "
                       f"`inv test-alert --synthetic` by {me()} — no action needed",
            "description": "Checks the Alertmanager -> receiver path without touching the bot. "
                           "A resolved notification follows."}
        self.starts = self.firing_ends = self.posted = 0.0

    def labels_for(self, d: DrillRun, apis: Apis) -> dict[str, str]:
        """`drill_run` makes each run a NEW alert: re-posting one Alertmanager already notified would be
        deduplicated (no mail until repeat_interval) and the drill would wait for nothing."""
        labels = {**self.chosen, "env": d.host.env,
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
            d.say(f"note: resolving a test {self.alert} alert left active by an earlier run "
                  f"(drill_run={(old.get('labels') or {}).get('drill_run', '?')})")
            old_start = parse_time(old.get("startsAt") or iso(apis.alertmanager.server_now()))
            apis.alertmanager.post_alerts([{"labels": old.get("labels") or {}, "startsAt": iso(old_start),
                                            "endsAt": iso(max(old_start, apis.alertmanager.server_past()))}])
        self.firing_budget = d.timeout or (b.group_wait + b.group_interval + GRACE)
        self.resolve_budget = d.timeout or (b.group_interval + GRACE)
        return Expectation(self.alert, labels)

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
        d.wait(f"Alertmanager: test {self.alert} resolved", deadline, t0, lambda x: not self._still_held(x))

    def make_whole(self, d: DrillRun, result: DrillResult) -> None:
        """Never leave the test alert firing."""
        if not self.broken:
            return
        try:
            self.resolve(d)
        except Exception as e:
            d.say(f"WARNING: could not resolve the test {self.alert} alert ({why(e)}); it expires by itself "
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
            raise DrillFailed(f"Alertmanager rejected the resolve of {self.alert} (endsAt {iso(ends)}, "
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
                        f"Alertmanager ignored the resolve of {self.alert}: it still ends at "
                        f"{a.get('endsAt')} (the firing posting's end); {apis.alertmanager.clock.describe()}")
        return bool(held)

    def verdict(self, tl: Timeline) -> str:
        notified = tl.between("posted", "notified") or 0
        resolved = tl.between("resolved", tl.events[-1][0]) or 0
        return (f"synthetic drill passed: notified {notified:.1f}s after posting, "
                f"resolved notification {resolved:.1f}s after resolving")
