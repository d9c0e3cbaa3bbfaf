"""The alert drill (`inv test-alert`): stop the bot, watch BotDown travel to a delivered notification, start
the bot, watch it resolve — and ALWAYS leave the bot running.

Why the pieces are injectable (`Target`): the waits, counters and timeline are the hard part and are tested
against real local Prometheus/Alertmanager binaries; only "stop/start the bot", "read Alertmanager's log" and
"reach the APIs" differ between that test bed and a real server over SSH (`SshTarget`, the default).
Bounds, the timeline and the targets live in `alert_bounds`, `timeline` and `drill_target`.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import IO, Any

from fabric import Connection

from fabfile.alerting.api import ApiError, Apis, NotifyCounts, iso, parse_time
from fabfile.alerting.silences import describe, me, silence_matches
from fabfile.config import render
from fabfile.config.inventory import HostSettings, Inventory
from fabfile.deploy.steps.base import StepContext
from fabfile.drill.bounds import (
    ALERT as ALERT,  # `X as X`: re-exported for `from fabfile.drill.scenarios import`
)
from fabfile.drill.bounds import Bounds, DrillFailed, Rule, bounds_for, load_rule, prom_duration
from fabfile.drill.target import BOT_UNIT, SshTarget, Target, _why
from fabfile.drill.target import parse_notify_errors as parse_notify_errors
from fabfile.drill.timeline import Timeline
from fabfile.output import Progress
from fabfile.ssh.masking import Masker

BOT_JOB = "rosey-bot"
SYNTHETIC = "RoseyMonitoringTest"
RESTART_ECHO = "BotRestarting"  # fires after every restart of the bot, the drill's own included
GRACE = 30.0  # seconds on top of the computed bound before a wait gives up (the "bound + 30 s")
FAIL_GRACE = 10.0  # a failed notification request with no success within this -> the path is failing
RESTART_BUDGET = 180.0  # how long we keep trying to get the bot running again (reconnecting as needed)


class DrillInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; unwinds like Ctrl-C so every `finally` runs."""


@dataclass
class DrillResult:
    ok: bool
    message: str
    timeline: Timeline
    bounds: Bounds | None = None
    bot_active: bool | None = None  # None: the bot was never touched
    details: list[str] = field(default_factory=list)

    @property
    def detection(self) -> float | None:
        return self.timeline.between("stop", "notified")


# ---------------------------------------------------------------- signals


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT/SIGTERM -> DrillInterrupted in the main thread (no-op elsewhere, e.g. in a runner thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise DrillInterrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_deferred(say: Callable[[str], None]) -> Iterator[list[str]]:
    """While the bot is being restarted, a further Ctrl-C must not abort that: note it, keep going."""
    import threading

    got: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum: int, _frame: Any) -> None:
        got.append(signal.Signals(signum).name)
        say(f"{signal.Signals(signum).name} received — still making sure {BOT_UNIT} is running, please wait")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---------------------------------------------------------------- the drill


_INTEGRATIONS = re.compile(r"^(\w+)_configs$")


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


def _ended(alert: dict, server_now: float) -> bool:
    """Judged by the server's clock (Alertmanager's), never this machine's."""
    try:
        return parse_time(alert.get("endsAt") or "") <= server_now
    except ValueError:
        return False


def _group_key(g: dict) -> tuple:
    return ((g.get("receiver") or {}).get("name", ""), tuple(sorted((g.get("labels") or {}).items())))


class Drill:
    """One run on one host. `run()` never leaves the bot stopped (see `_ensure_bot`)."""

    def __init__(self, target: Target, host: HostSettings, ctx: StepContext, *, force: bool = False,
                 timeout: float | None = None, rules_path: Path | None = None, poll: float = 1.0,
                 stream: IO[str] | None = None, tty: bool | None = None,
                 restart_budget: float = RESTART_BUDGET, fail_grace: float = FAIL_GRACE) -> None:
        self.t, self.host, self.ctx = target, host, ctx
        self.force, self.timeout, self.poll = force, timeout, poll
        self.rules_path = rules_path or render.rules_source()
        self.restart_budget, self.fail_grace = restart_budget, fail_grace
        self.progress = Progress(stream, tty)
        self.timeline = Timeline()
        self.mask: Masker = ctx.masker
        self._am_config: dict | None = None

    # -- output
    def say(self, text: str) -> None:
        self.progress.clear()
        self.ctx.log(self.mask(text))

    # -- polling with reconnects
    def wait(self, phase: str, deadline: float, t_start: float, check: Callable[[Apis], Any]) -> Any:
        """Poll `check` until it returns something truthy; DrillFailed at the deadline (monotonic)."""
        last_err, backoff = "", self.poll
        while True:
            now = time.monotonic()
            self.progress.show(phase, now - t_start, deadline - t_start)
            try:
                got = check(self.t.apis())
                last_err, backoff = "", self.poll
                if got:
                    self.progress.clear()
                    return got
            except ApiError as e:
                last_err = str(e)
                with contextlib.suppress(Exception):
                    self.t.reconnect()
                backoff = min(backoff * 2, 10.0)
            if time.monotonic() >= deadline:
                self.progress.clear()
                extra = f" (last error: {last_err})" if last_err else ""
                raise DrillFailed(self.mask(f"timed out after {deadline - t_start:.0f}s waiting for: "
                                            f"{phase}{extra}"))
            time.sleep(min(backoff if last_err else self.poll, max(0.05, deadline - time.monotonic())))

    def am_config(self, apis: Apis) -> dict:
        if self._am_config is None:
            self._am_config = apis.alertmanager.config()
        return self._am_config

    def expected(self, apis: Apis, receivers: list[str], resolved: bool) -> dict[str, int]:
        need: dict[str, int] = {}
        cfg = self.am_config(apis)
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

    def wait_notified(self, phase: str, deadline: float, t_start: float, need: dict[str, int],
                      base: dict[str, NotifyCounts], base_groups: set[tuple], resolved: bool,
                      exclude: str) -> dict[str, NotifyCounts]:
        """Until every needed integration has that many more SUCCESSFUL requests (plus one per new, unrelated
        alert group routed to it, so another alert's mail is never mistaken for ours); DrillFailed naming the
        integration and Alertmanager's error when requests to it fail and none succeeds."""
        first_fail: dict[str, float] = {}
        since = time.time()

        def check(apis: Apis) -> dict[str, NotifyCounts] | None:
            now_counts = apis.alertmanager.notify_counts()
            want = dict(need)
            cfg = self.am_config(apis)
            for key, names in self.active_groups(apis).items():
                if key in base_groups or exclude in names:
                    continue
                for integ, n in receiver_integrations(cfg, key[0], False).items():
                    if integ in want:
                        want[integ] += n
            done = True
            for integ, n in want.items():
                b, c = base.get(integ, NotifyCounts()), now_counts.get(integ, NotifyCounts())
                ok = c.succeeded_requests - b.succeeded_requests
                bad = c.requests_failed - b.requests_failed
                final_bad = c.failed - b.failed
                if ok >= n:
                    continue
                done = False
                if bad > 0 or final_bad > 0:
                    first_fail.setdefault(integ, time.monotonic())
                    if final_bad > 0 or time.monotonic() - first_fail[integ] >= self.fail_grace:
                        self._fail_notify(integ, int(bad), int(final_bad), since)
            return now_counts if done else None

        return self.wait(phase, deadline, t_start, check)

    def _fail_notify(self, integ: str, bad: int, final_bad: int, since: float) -> None:
        try:
            errors = [e for e in self.t.notify_errors(since) if integ in e] or self.t.notify_errors(since)
        except Exception as e:  # reading the log must not hide the real finding
            errors = [f"(could not read Alertmanager's log: {_why(e)})"]
        err = "; ".join(errors) if errors else "no error line found in Alertmanager's log"
        raise DrillFailed(self.mask(
            f"notifications are FAILING for integration {integ!r} ({bad} failed request(s), "
            f"{final_bad} notification(s) given up): {err}"))

    # -- pre-checks
    def expected_labels(self, apis: Apis, rule: Rule) -> dict[str, str]:
        labels: dict[str, str] = {}
        targets = apis.prometheus.targets(BOT_JOB)
        if targets:
            labels.update(targets[0].get("labels") or {})
        with contextlib.suppress(ApiError):
            labels.update(apis.prometheus.external_labels())
        labels.update(rule.labels)
        labels["alertname"] = rule.name
        return labels

    def silence_problems(self, apis: Apis, labels: dict[str, str]) -> list[str]:
        hits = [s for s in apis.alertmanager.silences("active") if silence_matches(s, labels)]
        if not hits:
            return []
        names = "; ".join(describe(s, apis.alertmanager.clock.now()) for s in hits)
        if self.force:
            self.say(f"WARNING: --force: silence(s) would swallow {labels['alertname']}: {names}")
            return []
        return [f"an active silence would swallow {labels['alertname']}: {names} "
                f"(remove it with `inv unsilence -H {self.host.name} --id ID`, or run with --force)"]

    def prechecks(self, apis: Apis, rule: Rule) -> dict[str, str]:
        problems = []
        if not apis.prometheus.healthy():
            problems.append("Prometheus /-/healthy does not answer")
        if not apis.alertmanager.healthy():
            problems.append("Alertmanager /-/healthy does not answer")
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        targets = apis.prometheus.targets(BOT_JOB)
        up = [t for t in targets if t.get("health") == "up"]
        if not targets:
            problems.append(f"Prometheus has no {BOT_JOB!r} target")
        elif len(up) != len(targets):
            errs = "; ".join(t.get("lastError", "") for t in targets if t.get("health") != "up")
            problems.append(f"target {BOT_JOB} is not up ({errs or 'not scraped yet'})")
        if not self.t.bot_active():
            problems.append(f"{BOT_UNIT} is not active")
        already = apis.prometheus.alerts(rule.name)
        if already:
            problems.append(f"{rule.name} is already {already[0].get('state')} in Prometheus; fix that first")
        if not apis.prometheus.alertmanagers():
            problems.append("Prometheus has no active Alertmanager to send to")
        problems += self.t.extra_prechecks()
        labels = self.expected_labels(apis, rule)
        problems += self.silence_problems(apis, labels)
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        return labels

    # -- the bot guarantee
    def ensure_bot(self) -> bool:
        """Start the bot and confirm `is-active`, reconnecting with backoff for a bounded time."""
        end, delay, last = time.monotonic() + self.restart_budget, 1.0, ""
        while True:
            try:
                if not self.t.bot_active():
                    self.t.start_bot()
                for _ in range(10):
                    if self.t.bot_active():
                        return True
                    time.sleep(1)
                last = f"{BOT_UNIT} still not active after start"
            except Exception as e:  # connection lost, sudo failed, ... -> reconnect and retry
                last = _why(e)
                with contextlib.suppress(Exception):
                    self.t.reconnect()
            if time.monotonic() + delay > end:
                self.say(f"!!! could not confirm {BOT_UNIT} active on {self.host.name}: {last}")
                return False
            self.say(f"retrying to start {BOT_UNIT} in {delay:.0f}s ({last})")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)

    def restart_echo_note(self) -> str:
        """Why: every restart — the drill's own — trips the restart alert a few minutes later; say so before
        whoever reads the mail takes it for a new problem."""
        try:
            rule = load_rule(self.rules_path, RESTART_ECHO)
        except DrillFailed:
            return f"note: {BOT_UNIT} was restarted; restart alerts that follow are expected, not a problem"
        sev = rule.labels.get("severity", "")
        sev = f" ({sev})" if sev else ""
        return (f"note: {RESTART_ECHO}{sev} will fire for a few minutes — the expected echo of this drill's "
                f"restart of {BOT_UNIT}, not a problem")

    # -- main flows
    def run(self, synthetic: bool = False) -> DrillResult:
        stopped = False
        result: DrillResult | None = None
        bounds = None
        try:
            with _signals_raise():
                try:
                    if synthetic:
                        bounds, msg = self._synthetic()
                    else:
                        rule = load_rule(self.rules_path)
                        bounds = bounds_for(self.host, rule)

                        def mark_stopped() -> None:
                            nonlocal stopped
                            stopped = True

                        msg = self._real(rule, bounds, mark_stopped)
                    result = DrillResult(True, msg, self.timeline, bounds)
                except DrillFailed as e:
                    result = DrillResult(False, str(e), self.timeline, bounds)
                except ApiError as e:
                    result = DrillResult(False, str(e), self.timeline, bounds)
        except DrillInterrupted as e:
            result = DrillResult(False, f"interrupted by {e.args[0] if e.args else 'signal'}", self.timeline,
                                 bounds)
        except KeyboardInterrupt:
            result = DrillResult(False, "interrupted", self.timeline, bounds)
        except Exception as e:  # anything else: still restart the bot, then report it
            result = DrillResult(False, self.mask(f"unexpected error: {_why(e)}"), self.timeline, bounds)
        finally:
            self.progress.clear()
            if stopped:
                with _signals_deferred(self.say):
                    active = self.ensure_bot()
                if result is None:
                    result = DrillResult(False, "aborted", self.timeline, bounds)
                result.bot_active = active
                if active:
                    result.details.append(self.restart_echo_note())
                if not active:
                    result.ok = False
                    result.message += (f"; !!! {BOT_UNIT} could NOT be confirmed running on "
                                       f"{self.host.name} — start it by hand: "
                                       f"sudo systemctl start {BOT_UNIT}")
            with contextlib.suppress(Exception):
                self.t.close()
        result.message = self.mask(result.message)
        return result

    def _real(self, rule: Rule, b: Bounds, mark_stopped: Callable[[], None]) -> str:
        apis = self.t.apis()
        labels = self.prechecks(apis, rule)
        self.say(f"pre-checks passed on {self.host.name}; expected {rule.name} labels: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        detect_budget = self.timeout or (b.detect + GRACE)
        resolve_budget = self.timeout or (b.resolve + GRACE)
        base = apis.alertmanager.notify_counts()
        base_groups = set(self.active_groups(apis))
        tl = self.timeline

        mark_stopped()  # before the call: even a half-done stop gets undone
        self.t.stop_bot()
        tl.mark("stop")
        t_stop = time.monotonic()
        deadline = t_stop + detect_budget
        self.say(f"stopped {BOT_UNIT}; expecting a notification within {b.detect_text()} "
                 f"(giving up after {detect_budget:.0f}s)")

        def firing(a: Apis) -> bool:
            return any(x.get("state") == "firing" for x in a.prometheus.alerts(rule.name))

        self.wait(f"Prometheus: {rule.name} firing", deadline, t_stop, firing)
        tl.mark("firing")

        def held(a: Apis) -> list[dict] | None:
            return a.alertmanager.alerts({"alertname": rule.name}) or None

        am_alerts = self.wait(f"Alertmanager: holds {rule.name}", deadline, t_stop, held)
        tl.mark("in alertmanager")
        suppressed = [x for x in am_alerts if (x.get("status") or {}).get("state") == "suppressed"]
        if suppressed:
            st = suppressed[0]["status"]
            why = (f"{rule.name} is suppressed in Alertmanager (silenced by {st.get('silencedBy')}, "
                   f"inhibited by {st.get('inhibitedBy')}); no notification will be sent")
            if not self.force:
                raise DrillFailed(why)
            self.say(f"WARNING: {why}; --force: skipping the notification checks")
        receivers = sorted({r["name"] for x in am_alerts for r in x.get("receivers", [])})
        need = self.expected(apis, receivers, resolved=False)
        if not need:
            raise DrillFailed(f"{rule.name} routes to {receivers or 'no receiver'}, which has no integration")
        notify = not suppressed
        after = base
        if notify:
            self.say(f"{rule.name} routed to {', '.join(receivers)}; waiting for a successful "
                     + ", ".join(f"{k} x{v}" for k, v in need.items()) + " notification")
            after = self.wait_notified(f"Alertmanager: {', '.join(need)} notification sent", deadline, t_stop,
                                       need, base, base_groups, False, rule.name)
            tl.mark("notified")
        groups_at_notify = set(self.active_groups(self.t.apis()))

        self.t.start_bot()
        tl.mark("started")
        t_start = time.monotonic()
        deadline = t_start + resolve_budget
        self.say(f"started {BOT_UNIT}; expecting the resolved notification within ~{b.resolve:g}s "
                 f"(scrape + evaluation + group_interval; giving up after {resolve_budget:.0f}s)")

        def target_up(a: Apis) -> bool:
            ts = a.prometheus.targets(BOT_JOB)
            return bool(ts) and all(t.get("health") == "up" for t in ts)

        self.wait(f"Prometheus: {BOT_JOB} target up", deadline, t_start, target_up)
        tl.mark("target up")
        self.wait(f"Prometheus: {rule.name} resolved", deadline, t_start,
                  lambda a: not a.prometheus.alerts(rule.name))
        tl.mark("resolved")
        self.wait(f"Alertmanager: {rule.name} resolved", deadline, t_start,
                  lambda a: not [x for x in a.alertmanager.alerts({"alertname": rule.name})
                                 if not _ended(x, a.alertmanager.server_now())])
        tl.mark("resolved in alertmanager")
        need_r = self.expected(self.t.apis(), receivers, resolved=True) if notify else {}
        if need_r:
            self.wait_notified(f"Alertmanager: resolved {', '.join(need_r)} notification sent", deadline,
                               t_start, need_r, after, groups_at_notify, True, rule.name)
            tl.mark("resolved-notified")
        else:
            self.say("no routed receiver has send_resolved: true — no resolved notification to wait for")
        det = tl.between("stop", "notified") or 0.0
        verdict = "within" if det <= b.detect else "OVER"
        return (f"drill passed: detection {det:.1f}s ({verdict} the bound of {b.detect:g}s), "
                f"recovery {tl.between('started', tl.events[-1][0]) or 0:.1f}s")

    def resolve_synthetic(self, labels: dict[str, str], annotations: dict[str, str], starts: float,
                          firing_ends: float) -> None:
        """Post the test alert again with `endsAt` certainly in Alertmanager's past, and check it took.

        Why not "now" on this machine: if this clock is ahead of the server's even by 0.3 s, that endsAt
        is still in the server's future, and Alertmanager's merge keeps the LATER end of the two postings
        (the firing one's, an hour away) — the resolve is answered 200 and silently ignored.
        """
        am = self.t.apis().alertmanager
        ends = max(starts, am.server_past(margin=1.0))
        try:
            am.post_alerts([{"labels": labels, "annotations": annotations,
                             "startsAt": iso(starts), "endsAt": iso(ends)}])
        except ApiError as e:
            raise DrillFailed(f"Alertmanager rejected the resolve of {SYNTHETIC} (endsAt {iso(ends)}, "
                              f"{am.clock.describe()}): {e}") from None
        self._still_held(self.t.apis(), labels, firing_ends)  # an ignored resolve fails here, at once

    @staticmethod
    def _still_held(apis: Apis, labels: dict[str, str], firing_ends: float) -> bool:
        """Still active; DrillFailed at once if Alertmanager kept the firing posting's end (resolve ignored),
        instead of waiting out the deadline in silence."""
        held = apis.alertmanager.alerts(labels)
        for a in held:
            with contextlib.suppress(ValueError):
                if parse_time(a.get("endsAt") or "") >= firing_ends - 1:
                    raise DrillFailed(
                        f"Alertmanager ignored the resolve of {SYNTHETIC}: it still ends at "
                        f"{a.get('endsAt')} (the firing posting's end); {apis.alertmanager.clock.describe()}")
        return bool(held)

    def synthetic_labels(self, apis: Apis) -> dict[str, str]:
        """`drill_run` makes each run a NEW alert: re-posting one Alertmanager already notified would be
        deduplicated (no mail until repeat_interval) and the drill would wait for nothing."""
        labels = {"alertname": SYNTHETIC, "severity": "critical", "env": self.host.env,
                  "job": "rosey-drill", "instance": me(), "drill": "true", "drill_run": token_hex(4)}
        with contextlib.suppress(ApiError):
            labels.update({k: v for k, v in apis.prometheus.external_labels().items() if k not in labels})
        labels.setdefault("cluster", "rosey-bot")
        return labels

    def _synthetic(self) -> tuple[Bounds, str]:
        apis = self.t.apis()
        if not apis.alertmanager.healthy():
            raise DrillFailed("pre-check failed: Alertmanager /-/healthy does not answer")
        a = self.host.alertmanager
        b = Bounds(0, 0, 0, prom_duration(a.group_wait), prom_duration(a.group_interval))
        labels = self.synthetic_labels(apis)
        problems = self.silence_problems(apis, labels)
        if problems:
            raise DrillFailed("pre-check failed: " + "; ".join(problems))
        mine = {k: labels[k] for k in ("alertname", "job", "instance")}
        for old in apis.alertmanager.alerts(mine):  # an earlier run's, e.g. killed before its clean-up
            self.say(f"note: resolving a {SYNTHETIC} alert left active by an earlier run "
                     f"(drill_run={(old.get('labels') or {}).get('drill_run', '?')})")
            old_start = parse_time(old.get("startsAt") or iso(apis.alertmanager.server_now()))
            apis.alertmanager.post_alerts([{"labels": old.get("labels") or {}, "startsAt": iso(old_start),
                                            "endsAt": iso(max(old_start, apis.alertmanager.server_past()))}])
        notify_budget = self.timeout or (b.group_wait + b.group_interval + GRACE)
        resolve_budget = self.timeout or (b.group_interval + GRACE)
        annotations = {"summary": f"DRILL: synthetic test alert from `inv test-alert --synthetic` by {me()} "
                                  f"— no action needed",
                       "description": "Checks the Alertmanager -> receiver path without touching the bot. "
                                      "A resolved notification follows."}
        base = apis.alertmanager.notify_counts()
        base_groups = set(self.active_groups(apis))
        tl = self.timeline
        posted = False
        # Both times come from Alertmanager's clock: it alone decides whether our endsAt is past.
        starts = apis.alertmanager.server_now() - 1.0
        firing_ends = starts + 3600
        try:
            apis.alertmanager.post_alerts([{"labels": labels, "annotations": annotations,
                                            "startsAt": iso(starts), "endsAt": iso(firing_ends)}])
            posted = True
            tl.mark("posted")
            t0 = time.monotonic()
            deadline = t0 + notify_budget
            held = self.wait(f"Alertmanager: holds {SYNTHETIC}", deadline, t0,
                             lambda x: x.alertmanager.alerts(labels) or None)
            tl.mark("in alertmanager")
            receivers = sorted({r["name"] for x in held for r in x.get("receivers", [])})
            need = self.expected(apis, receivers, resolved=False)
            if not need:
                raise DrillFailed(f"{SYNTHETIC} routes to {receivers or 'no receiver'}, "
                                  f"which has no integration")
            self.say(f"{SYNTHETIC} routed to {', '.join(receivers)}; waiting for "
                     + ", ".join(f"{k} x{v}" for k, v in need.items()))
            after = self.wait_notified(f"Alertmanager: {', '.join(need)} notification sent", deadline, t0,
                                       need, base, base_groups, False, SYNTHETIC)
            tl.mark("notified")
            groups_at_notify = set(self.active_groups(self.t.apis()))
            self.resolve_synthetic(labels, annotations, starts, firing_ends)
            posted = False
            tl.mark("resolved")
            t1 = time.monotonic()
            deadline = t1 + resolve_budget
            self.wait(f"Alertmanager: {SYNTHETIC} resolved", deadline, t1,
                      lambda x: not self._still_held(x, labels, firing_ends))
            need_r = self.expected(self.t.apis(), receivers, resolved=True)
            if need_r:
                self.wait_notified(f"Alertmanager: resolved {', '.join(need_r)} notification sent", deadline,
                                   t1, need_r, after, groups_at_notify, True, SYNTHETIC)
                tl.mark("resolved-notified")
            else:
                self.say("no routed receiver has send_resolved: true — no resolved notification to wait for")
        finally:
            if posted:  # never leave the test alert firing
                try:
                    self.resolve_synthetic(labels, annotations, starts, firing_ends)
                except Exception as e:
                    self.say(f"WARNING: could not resolve the {SYNTHETIC} alert ({_why(e)}); it expires "
                             f"by itself within the hour")
        notified = tl.between("posted", "notified") or 0
        resolved = tl.between("resolved", tl.events[-1][0]) or 0
        return b, (f"synthetic drill passed: notified {notified:.1f}s after posting, "
                   f"resolved notification {resolved:.1f}s after resolving")


def report(result: DrillResult, log: Callable[[str], None]) -> None:
    """Timeline and verdict, as the task prints them."""
    if result.timeline.events:
        log("timeline:")
        for line in result.timeline.lines():
            log(line)
    if result.bounds and result.detection is not None:
        log(f"detection (stop → notified): {result.detection:.1f}s; "
            f"expected bound: {result.bounds.detect_text()}")
    if result.bot_active is not None:
        log(f"{BOT_UNIT}: {'active' if result.bot_active else '!!! NOT ACTIVE !!!'}")
    for line in result.details:
        log(line)
    log(("OK: " if result.ok else "FAILED: ") + result.message)


def run_drill(conn_factory: Callable[[], Connection], host: HostSettings, ctx: StepContext, *,
              synthetic: bool = False, force: bool = False, timeout: float | None = None,
              target: Target | None = None, rules_path: Path | None = None, **kw: Any) -> DrillResult:
    """The drill on one host; `target` replaces the SSH/systemd actions (tests)."""
    t = target or SshTarget(conn_factory, host, ctx)
    return Drill(t, host, ctx, force=force, timeout=timeout, rules_path=rules_path, **kw).run(synthetic)


# ---------------------------------------------------------------- CLI glue (tasks.py stays thin)


def cli_test_alert(inventory: Inventory, hosts: list[HostSettings], *, synthetic: bool = False,
                   force: bool = False, timeout: float | None = None) -> int:
    """Run the drill on each host in turn (a drill stops a bot: never in parallel); exit code for the task."""
    from fabfile.config.secrets import load_secrets
    from fabfile.ssh.connection import connect

    code = 0
    for host in hosts:
        secrets = load_secrets(inventory, host)
        ctx = StepContext(inventory=inventory, secrets=secrets, masker=Masker(secrets.values()),
                          log=lambda m: print(m, flush=True))
        kind = "synthetic alert drill" if synthetic else "alert drill"
        ctx.log(f"== {kind} on {host.name} ({host.address})")
        result = run_drill(lambda h=host: connect(h), host, ctx, synthetic=synthetic, force=force,
                           timeout=timeout)
        report(result, ctx.log)
        if not result.ok:
            interrupted = result.message.startswith("interrupted")
            code = max(code, 130 if interrupted else 1)
            if interrupted:
                break
    return code
