"""The drill's scenarios: what to break, which alert to expect from which host's Alertmanager, how to
restore — and how to make whole whatever happens. The runner (`runner.Drill`) drives them all through the
same delivery path.

- `BotDown` (`inv test-alert`): stop the bot, expect BotDown, start the bot.
- `Synthetic` (`--synthetic`): post a test alert straight to Alertmanager, resolve it; the bot is untouched.

A new scenario (e.g. stopping the monitoring on one host and expecting the PEER host's Alertmanager to deliver
`MonitoringPeerDown`) is one more class here: its `Expectation.target` names the peer's target.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING, Protocol

from fabfile.alerting.api import ApiError, Apis, iso, parse_time
from fabfile.alerting.silences import describe, me, swallowing
from fabfile.config.clusters import CLUSTER_PEER_TIMEOUT
from fabfile.config.durations import parse_duration
from fabfile.config.labels import BOT_JOB, CLUSTER_LABEL
from fabfile.config.layout import ALERTMANAGER as ALERTMANAGER_UNIT
from fabfile.config.layout import SERVICES
from fabfile.config.rules_file import Rule, RuleMissing, RulesFileError, load_rule, rules_source
from fabfile.drill import echo
from fabfile.drill.bounds import ALERT, Bounds, bounds_for
from fabfile.drill.errors import DrillFailed, why
from fabfile.drill.target import BOT_UNIT, Target
from fabfile.drill.timeline import Timeline

if TYPE_CHECKING:
    from fabfile.drill.runner import Drill, DrillResult

SYNTHETIC = "RoseyMonitoringTest"
RESTART_ECHO = "BotRestarting"  # fires after every restart of the bot, the drill's own included
GRACE = 30.0  # seconds on top of the computed bound before a wait gives up (the "bound + 30 s")
PRECHECK_TRIES = 3  # a health pre-check asks up to this often when the answer is slow (not refused)


@dataclass(frozen=True)
class Expectation:
    """The alert a scenario expects delivered: its name, labels to find it by, and whose Alertmanager
    delivers it (`target`; None: the drilled host's own)."""

    alert: str
    labels: dict[str, str]
    target: Target | None = None
    others: tuple[Target, ...] = ()  # the cluster's other Alertmanagers: a notification sent by any counts
    whose: str = "Alertmanager"  # how the progress lines name the target's Alertmanager


class Scenario(Protocol):
    """One way of breaking something and proving the alert about it reaches people.

    `prepare` runs the pre-checks and must break nothing; from `break_it` on, `broken` is True and the
    runner calls `make_whole` whatever happens (with signals only noted, not obeyed).
    """

    bounds: Bounds | None
    broken: bool
    restoring: str  # "making sure X is running", said when a signal arrives during make_whole
    firing_budget: float  # seconds from break_it to the notification
    resolve_budget: float  # seconds from restore to the resolved notification

    def prepare(self, d: Drill) -> Expectation: ...
    def break_it(self, d: Drill) -> None: ...
    def until_alerting(self, d: Drill, deadline: float, t0: float) -> None: ...
    def restore(self, d: Drill) -> None: ...
    def until_cleared(self, d: Drill, deadline: float, t0: float) -> None: ...
    def make_whole(self, d: Drill, result: DrillResult) -> None: ...
    def verdict(self, tl: Timeline) -> str: ...


def silence_problems(d: Drill, apis: Apis, labels: dict[str, str]) -> list[str]:
    """An active silence would swallow the alert: a pre-check failure (a warning with --force)."""
    hits = swallowing(apis.alertmanager, labels)
    if not hits:
        return []
    names = "; ".join(describe(s, apis.alertmanager.clock.now()) for s in hits)
    if d.force:
        d.say(f"WARNING: --force: silence(s) would swallow {labels['alertname']}: {names}")
        return []
    return [f"an active silence would swallow {labels['alertname']}: {names} "
            f"(remove it with `inv unsilence -H {d.host.name} --id ID`, or run with --force)"]


def rule_for_drill(path: Path, name: str) -> Rule:
    """The rule from the rules file; a missing or unreadable one fails the drill (not a crash)."""
    try:
        return load_rule(name, path)
    except RuleMissing as e:
        raise DrillFailed(f"{e}; the drill needs it") from None
    except RulesFileError as e:
        raise DrillFailed(str(e)) from None


def _ended(alert: dict, server_now: float) -> bool:
    """Judged by the server's clock (Alertmanager's), never this machine's."""
    try:
        return parse_time(alert.get("endsAt") or "") <= server_now
    except ValueError:
        return False


PEER_TIMEOUT = CLUSTER_PEER_TIMEOUT  # the second member's wait before it sends
PEER_TURN = f"plus up to one --cluster.peer-timeout ({PEER_TIMEOUT:g}s)"


def judged(detection: float, bounds: Bounds, peer_turn: bool) -> str:
    """How a detection compares with the bound (and, where another member may deliver, its turn)."""
    if detection <= bounds.detect:
        return "within"
    if peer_turn and detection <= bounds.detect + PEER_TIMEOUT:
        return "within the bound + peer-timeout"
    return "OVER"


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

    def _survivor(self, d: Drill) -> tuple[str, Target] | None:
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

    def am(self, d: Drill) -> Target:
        """Whose Alertmanager holds, silences and resolves the alert: ours, or the surviving peer's."""
        return self.via or d.t

    def prechecks(self, d: Drill, apis: Apis, rule: Rule) -> dict[str, str]:
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

    def pending_left_over(self, d: Drill, apis: Apis, rule: Rule, already: list[dict]) -> list[dict]:
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

    def prepare(self, d: Drill) -> Expectation:
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

    def break_it(self, d: Drill) -> None:
        self.broken = True  # before the call: even a half-done stop gets undone
        d.t.stop_bot()
        d.timeline.mark("stop")
        assert self.bounds is not None
        turn = f", {PEER_TURN}" if self.via else ""
        d.say(f"stopped {BOT_UNIT}; expecting a notification within {self.bounds.detect_text()}{turn} "
              f"(giving up after {self.firing_budget:.0f}s)")

    def until_alerting(self, d: Drill, deadline: float, t0: float) -> None:
        def firing(a: Apis) -> bool:
            return any(x.get("state") == "firing" for x in a.prometheus.alerts(self.alert))

        d.wait(f"Prometheus: {self.alert} firing", deadline, t0, firing)
        d.timeline.mark("firing")

    def hush_echo(self, d: Drill) -> None:
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

    def restore(self, d: Drill) -> None:
        self.hush_echo(d)
        d.t.start_bot()
        d.timeline.mark("started")
        assert self.bounds is not None
        d.say(f"started {BOT_UNIT}; expecting the resolved notification within ~{self.bounds.resolve:g}s "
              f"(scrape + evaluation + group_interval; giving up after {self.resolve_budget:.0f}s)")

    def until_cleared(self, d: Drill, deadline: float, t0: float) -> None:
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
                              if not _ended(x, a.alertmanager.server_now())], self.via)
        d.timeline.mark("resolved in alertmanager")

    def make_whole(self, d: Drill, result: DrillResult) -> None:
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

    def labels_for(self, d: Drill, apis: Apis) -> dict[str, str]:
        """`drill_run` makes each run a NEW alert: re-posting one Alertmanager already notified would be
        deduplicated (no mail until repeat_interval) and the drill would wait for nothing."""
        labels = {"alertname": SYNTHETIC, "severity": "critical", "env": d.host.env,
                  "job": "rosey-drill", "instance": me(), "drill": "true", "drill_run": token_hex(4)}
        with contextlib.suppress(ApiError):
            labels.update({k: v for k, v in apis.prometheus.external_labels().items() if k not in labels})
        labels.setdefault("cluster", CLUSTER_LABEL)
        return labels

    def prepare(self, d: Drill) -> Expectation:
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

    def break_it(self, d: Drill) -> None:
        am = d.t.apis().alertmanager
        # Both times come from Alertmanager's clock: it alone decides whether our endsAt is past.
        self.starts = am.server_now() - 1.0
        self.firing_ends = self.starts + 3600
        am.post_alerts([{"labels": self.labels, "annotations": self.annotations,
                         "startsAt": iso(self.starts), "endsAt": iso(self.firing_ends)}])
        self.broken = True
        self.posted = time.monotonic()
        d.timeline.mark("posted")

    def until_alerting(self, d: Drill, deadline: float, t0: float) -> None:
        """Nothing to wait for: the alert was posted to Alertmanager directly."""

    def restore(self, d: Drill) -> None:
        # A resolve that reaches Alertmanager before its group's first flush is never mailed (nothing was
        # notified to resolve): the counters cannot prove the mail we saw was ours, the clock can.
        rest = self.posted + (self.bounds.group_wait if self.bounds else 0.0) + 1.0 - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        self.resolve(d)
        self.broken = False
        d.timeline.mark("resolved")

    def until_cleared(self, d: Drill, deadline: float, t0: float) -> None:
        d.wait(f"Alertmanager: {SYNTHETIC} resolved", deadline, t0, lambda x: not self._still_held(x))

    def make_whole(self, d: Drill, result: DrillResult) -> None:
        """Never leave the test alert firing."""
        if not self.broken:
            return
        try:
            self.resolve(d)
        except Exception as e:
            d.say(f"WARNING: could not resolve the {SYNTHETIC} alert ({why(e)}); it expires by itself "
                  f"within the hour")

    def resolve(self, d: Drill) -> None:
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

    def peer(self, d: Drill) -> Target:
        return d.peers[self.peer_name]

    def labels(self, d: Drill) -> dict[str, str]:
        return {"alertname": PEER_ALERT, "peer": d.host.name}

    def prepare(self, d: Drill) -> Expectation:
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

    def break_it(self, d: Drill) -> None:
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

    def until_alerting(self, d: Drill, deadline: float, t0: float) -> None:
        d.wait(f"{self.peer_name}'s Prometheus: {PEER_ALERT}{{peer={d.host.name}}} firing", deadline, t0,
               lambda a: any(x.get("state") == "firing" for x in self._peer_alerts(a, d.host.name)),
               self.peer(d))
        d.timeline.mark("firing")

    def restore(self, d: Drill) -> None:
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

    def until_cleared(self, d: Drill, deadline: float, t0: float) -> None:
        d.wait(f"{d.host.name}: Prometheus and Alertmanager ready", deadline, t0, self._ready)
        d.timeline.mark("healthy")
        d.wait(f"{self.peer_name}'s Prometheus: {PEER_ALERT}{{peer={d.host.name}}} resolved", deadline, t0,
               lambda a: not self._peer_alerts(a, d.host.name), self.peer(d))
        d.timeline.mark("resolved")

    def make_whole(self, d: Drill, result: DrillResult) -> None:
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


class PowerSwitch(Protocol):
    """What HostDown needs of a machine: pull the plug, and boot it again (seconds until it runs)."""

    def power_off(self) -> bool: ...
    def power_on(self) -> float: ...


class HostDown(MonitoringDown):
    """Lab hosts only: pull the plug on the VM itself (SIGKILL to QEMU, as a kernel panic or a provider
    outage would), expect the PEER to deliver MonitoringPeerDown, then cold-boot the VM from its own disk and
    confirm its monitoring healthy again. The one failure `monitoring-down` can only imitate."""

    def __init__(self, rules_path: Path | None = None,
                 vm_factory: Callable[[Drill], PowerSwitch] | None = None) -> None:
        super().__init__(rules_path)
        self.restoring = "booting the lab VM again"
        self.boot_seconds = 0.0
        self.vm_factory = vm_factory  # tests: a switch over local processes; None: the host's lab VM

    def vm(self, d: Drill) -> PowerSwitch:
        if self.vm_factory is not None:
            return self.vm_factory(d)
        from fabfile.lab.vm import LabVM  # imported only when a lab host is drilled

        if d.host.lab is None:
            raise DrillFailed(f"{d.host.name} is not a lab host: host-down powers off a lab VM "
                              f"(on a real server use --scenario monitoring-down)")
        return LabVM(d.host)

    def prepare(self, d: Drill) -> Expectation:
        self.vm(d)
        expect = super().prepare(d)
        # the drilled host's Alertmanager dies with its VM: only the peer can notify
        return Expectation(expect.alert, expect.labels, target=expect.target, whose=expect.whose)

    def break_it(self, d: Drill) -> None:
        vm = self.vm(d)
        self.broken = True
        d.t.close()  # its tunnels die with the VM
        vm.power_off()
        d.timeline.mark("stop")
        assert self.bounds is not None
        d.say(f"powered off the VM of {d.host.name} (SIGKILL to QEMU, no shutdown); expecting "
              f"{self.peer_name} to notify within {self.bounds.detect_text()}, {PEER_TURN} "
              f"(giving up after {self.firing_budget:.0f}s)")

    def restore(self, d: Drill) -> None:
        self.boot_seconds = self.vm(d).power_on()
        d.t.reconnect()
        d.timeline.mark("started")
        d.say(f"{d.host.name} booted again from its own disk in {self.boot_seconds:.0f}s")

    def make_whole(self, d: Drill, result: DrillResult) -> None:
        """The VM is running again (booted from its own disk), then the monitoring guarantee."""
        if not self.broken:
            return
        try:
            self.vm(d).power_on()
        except Exception as e:  # noqa: BLE001 - said loudly, never swallowed
            result.ok = False
            result.message += (f"; !!! the VM of {d.host.name} could NOT be booted again ({why(e)}) — "
                               f"start it by hand: inv lab.up -H {d.host.name}")
            return
        d.t.reconnect()
        super().make_whole(d, result)
        result.details.append(f"note: {BOT_UNIT} on {d.host.name} started again with its VM; {RESTART_ECHO} "
                              f"will fire there for a few minutes — the expected echo of this drill's "
                              f"power-off, not a problem")

    def verdict(self, tl: Timeline) -> str:
        assert self.bounds is not None
        return (super().verdict(tl).replace("after the stop", "after the power-off")
                + f" (boot {self.boot_seconds:.0f}s)")
