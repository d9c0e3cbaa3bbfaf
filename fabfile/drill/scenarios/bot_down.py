"""`bot-down` (the default): stop the bot, expect BotDown delivered, start the bot, expect it resolved."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from fabfile.alerting.api import ApiError, Apis
from fabfile.config.labels import BOT_JOB
from fabfile.config.layout import ALERTMANAGER as ALERTMANAGER_UNIT
from fabfile.config.rules_file import Rule, rules_source
from fabfile.drill import echo
from fabfile.drill.bounds import ALERT, Bounds, bounds_for
from fabfile.drill.contract import DrillResult, DrillRun, Expectation
from fabfile.drill.errors import DrillFailed
from fabfile.drill.scenarios.common import (
    GRACE,
    PEER_TIMEOUT,
    PEER_TURN,
    PRECHECK_TRIES,
    RESTART_ECHO,
    ended,
    judged,
    rule_for_drill,
    silence_problems,
)
from fabfile.drill.target import BOT_UNIT, Target
from fabfile.drill.timeline import Timeline


class BotDown:
    """Stop the bot; BotDown fires in Prometheus and is delivered; start the bot; it resolves."""

    restoring = f"making sure {BOT_UNIT} is running"

    def __init__(self, rules_path: Path | None = None, alert: str = ALERT) -> None:
        self.rules_path = rules_path or rules_source()
        self.alert = alert
        self.bounds: Bounds | None = None
        self.broken = False
        self.firing_budget = self.resolve_budget = 0.0
        self.target_labels: dict[str, str] = {}
        self.echo: echo.EchoSilence | None = None
        self.echo_error = ""
        self.via: Target | None = None  # a peer's Alertmanager delivering: this host's does not answer
        self.via_name = ""

    def _survivor(self, d: DrillRun) -> tuple[str, Target] | None:
        """On a cluster whose own Alertmanager is dead, a peer's that answers: this host's Prometheus sends
        to every member, so the drill can prove what the cluster is for — the survivor delivers."""
        for name, t in d.peers.items():
            try:
                if t.apis().alertmanager.healthy(PRECHECK_TRIES):
                    return name, t
            except ApiError:
                with contextlib.suppress(Exception):
                    t.reconnect()
        return None

    def am(self, d: DrillRun) -> Target:
        """Whose Alertmanager holds, silences and resolves the alert: ours, or the surviving peer's."""
        return self.via or d.t

    def prechecks(self, d: DrillRun, apis: Apis, rule: Rule) -> dict[str, str]:
        problems = []
        if not apis.prometheus.healthy(PRECHECK_TRIES):
            problems.append("Prometheus /-/healthy does not answer")
        if not apis.alertmanager.healthy(PRECHECK_TRIES):
            survivor = self._survivor(d)
            if survivor is None:
                peers = " (nor does any peer's)" if d.peers else ""
                problems.append(f"Alertmanager /-/healthy does not answer{peers}")
            else:
                self.via_name, self.via = survivor
                d.say(f"WARNING: {d.host.name}'s Alertmanager does not answer; its Prometheus also sends to "
                      f"{self.via_name}'s, which must deliver — this drill checks that it does "
                      f"(afterwards: inv verify -H {d.host.name})")
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        am_apis = self.am(d).apis()
        targets = apis.prometheus.targets(BOT_JOB)
        up = [t for t in targets if t.get("health") == "up"]
        if not targets:
            problems.append(f"Prometheus has no {BOT_JOB!r} target")
        elif len(up) != len(targets):
            errs = "; ".join(t.get("lastError", "") for t in targets if t.get("health") != "up")
            problems.append(f"target {BOT_JOB} is not up ({errs or 'not scraped yet'})")
        if not d.t.bot_active():
            problems.append(f"{BOT_UNIT} is not active")
        already = apis.prometheus.alerts(rule.name)
        if already and not problems:
            already = self.pending_left_over(d, apis, rule, already)
        if already:
            problems.append(f"{rule.name} is already {already[0].get('state')} in Prometheus; fix that first")
        if not apis.prometheus.alertmanagers():
            problems.append("Prometheus has no active Alertmanager to send to")
        own = d.t.extra_prechecks()
        if self.via is not None:  # known and said: its own Alertmanager's checks cannot pass
            own = [x for x in own if not x.startswith(f"verify: {ALERTMANAGER_UNIT}")]
        problems += own
        labels = self.expected_labels(apis, rule)
        problems += silence_problems(d, am_apis, labels)
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        return labels

    def pending_left_over(self, d: DrillRun, apis: Apis, rule: Rule, already: list[dict]) -> list[dict]:
        """The alert is pending although the target is up and the bot active: an evaluation that came before
        the target's first scrape after a (re)start (`absent(up)` is true until then) leaves it pending until
        the next one. Right after a fresh deploy that is the usual case. Wait for that next evaluation (one
        interval, plus a few seconds), then judge what is left; a firing alert is never waited for."""
        if any(a.get("state") != "pending" for a in already):
            return already
        assert self.bounds is not None
        wait = self.bounds.evaluation + 5
        d.say(f"{rule.name} is pending while the target is up (evaluated before its first scrape?); "
              f"waiting up to {wait:g}s for the next evaluation")
        end = time.monotonic() + wait
        while already and time.monotonic() < end:
            time.sleep(min(d.poll, max(0.05, end - time.monotonic())))
            already = apis.prometheus.alerts(rule.name)
        return already

    @staticmethod
    def expected_labels(apis: Apis, rule: Rule) -> dict[str, str]:
        labels: dict[str, str] = {}
        targets = apis.prometheus.targets(BOT_JOB)
        if targets:
            labels.update(targets[0].get("labels") or {})
        with contextlib.suppress(ApiError):
            labels.update(apis.prometheus.external_labels())
        labels.update(rule.labels)
        labels["alertname"] = rule.name
        return labels

    def prepare(self, d: DrillRun) -> Expectation:
        rule = rule_for_drill(self.rules_path, self.alert)
        self.bounds = b = bounds_for(d.host, rule)
        labels = self.prechecks(d, d.t.apis(), rule)
        turn = PEER_TIMEOUT if self.via else 0.0  # the survivor may wait its turn for the dead member
        self.firing_budget = d.timeout or (b.detect + turn + GRACE)
        self.resolve_budget = d.timeout or (b.resolve + turn + GRACE)
        self.target_labels = labels
        d.say(f"pre-checks passed on {d.host.name}; expected {rule.name} labels: "
              + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        others = tuple(t for t in d.peers.values() if t is not self.via)  # a dead own one counts nothing
        whose = f"{self.via_name}'s Alertmanager" if self.via else "Alertmanager"
        return Expectation(rule.name, {"alertname": rule.name}, target=self.via, others=others, whose=whose)

    def break_it(self, d: DrillRun) -> None:
        self.broken = True  # before the call: even a half-done stop gets undone
        d.t.stop_bot()
        d.timeline.mark("stop")
        assert self.bounds is not None
        turn = f", {PEER_TURN}" if self.via else ""
        d.say(f"stopped {BOT_UNIT}; expecting a notification within {self.bounds.detect_text()}{turn} "
              f"(giving up after {self.firing_budget:.0f}s)")

    def until_alerting(self, d: DrillRun, deadline: float, t0: float) -> None:
        def firing(a: Apis) -> bool:
            return any(x.get("state") == "firing" for x in a.prometheus.alerts(self.alert))

        d.wait(f"Prometheus: {self.alert} firing", deadline, t0, firing)
        d.timeline.mark("firing")

    def hush_echo(self, d: DrillRun) -> None:
        """Before the bot starts again: silence the restart alert it is about to cause (see drill/echo.py).
        Best effort: if it cannot be made, the drill goes on and the note says the alert will fire."""
        if self.echo is not None or self.echo_error:
            return
        assert self.bounds is not None
        try:
            rule = rule_for_drill(self.rules_path, RESTART_ECHO)
            self.echo = echo.hush(self.am(d).apis().alertmanager, rule, self.target_labels,
                                  self.bounds.scrape, rule.group_interval or self.bounds.evaluation)
        except (DrillFailed, ApiError) as e:
            self.echo_error = str(e)

    def restore(self, d: DrillRun) -> None:
        self.hush_echo(d)
        d.t.start_bot()
        d.timeline.mark("started")
        assert self.bounds is not None
        d.say(f"started {BOT_UNIT}; expecting the resolved notification within ~{self.bounds.resolve:g}s "
              f"(scrape + evaluation + group_interval; giving up after {self.resolve_budget:.0f}s)")

    def until_cleared(self, d: DrillRun, deadline: float, t0: float) -> None:
        def target_up(a: Apis) -> bool:
            ts = a.prometheus.targets(BOT_JOB)
            return bool(ts) and all(t.get("health") == "up" for t in ts)

        d.wait(f"Prometheus: {BOT_JOB} target up", deadline, t0, target_up)
        d.timeline.mark("target up")
        d.wait(f"Prometheus: {self.alert} resolved", deadline, t0,
               lambda a: not a.prometheus.alerts(self.alert))
        d.timeline.mark("resolved")
        whose = f"{self.via_name}'s Alertmanager" if self.via else "Alertmanager"
        d.wait(f"{whose}: {self.alert} resolved", deadline, t0,
               lambda a: not [x for x in a.alertmanager.alerts({"alertname": self.alert})
                              if not ended(x, a.alertmanager.server_now())], self.via)
        d.timeline.mark("resolved in alertmanager")

    def make_whole(self, d: DrillRun, result: DrillResult) -> None:
        """The bot guarantee: started and confirmed active, or the result says loudly that it is not."""
        if not self.broken:
            return
        with contextlib.suppress(Exception):  # never let the silence stand between us and the restart
            if self.bounds is not None and not d.t.bot_active():
                self.hush_echo(d)
        active = d.ensure_running(BOT_UNIT, d.t.bot_active, d.t.start_bot)
        result.bot_active = active
        if active:
            result.details.append(self.restart_echo_note())
        else:
            result.ok = False
            result.message += (f"; !!! {BOT_UNIT} could NOT be confirmed running on {d.host.name} — "
                               f"start it by hand: sudo systemctl start {BOT_UNIT}")
        if self.via is not None:  # the drill does not touch the monitoring: the user's to fix, said last
            result.details.append(
                f"note: {d.host.name}'s Alertmanager did not answer during this drill ({self.via_name}'s "
                f"delivered); start it: sudo systemctl start {ALERTMANAGER_UNIT}, then inv verify -H "
                f"{d.host.name}")

    def restart_echo_note(self) -> str:
        """Why: every restart — the drill's own — trips the restart alert a few minutes later; say what the
        drill did about it (its silence), or, without one, that the mail that follows is expected."""
        if self.echo is not None:
            return self.echo.line()
        try:
            rule = rule_for_drill(self.rules_path, RESTART_ECHO)
        except DrillFailed:
            return f"note: {BOT_UNIT} was restarted; restart alerts that follow are expected, not a problem"
        sev = rule.labels.get("severity", "")
        sev = f" ({sev})" if sev else ""
        why = f" (no silence: {self.echo_error})" if self.echo_error else ""
        return (f"note: {RESTART_ECHO}{sev} will fire for a few minutes — the expected echo of this drill's "
                f"restart of {BOT_UNIT}, not a problem{why}")

    def verdict(self, tl: Timeline) -> str:
        assert self.bounds is not None
        det = tl.between("stop", "notified") or 0.0
        within = judged(det, self.bounds, self.via is not None)
        via = f", delivered by {self.via_name}'s Alertmanager" if self.via else ""
        return (f"drill passed{via}: detection {det:.1f}s ({within} the bound of {self.bounds.detect:g}s), "
                f"recovery {tl.between('started', tl.events[-1][0]) or 0:.1f}s")
