"""Runs one drill scenario on one host (`inv test-alert`) and ALWAYS puts back what it broke.

The frame is the same for every scenario: pre-checks, break something, watch the alert travel to a delivered
notification, restore, watch it resolve and the resolved notification go out — and whatever happens (Ctrl-C,
SIGTERM, timeout, error, lost connection) the scenario's `make_whole` runs. What differs per scenario (what to
break, which alert from which host's Alertmanager, how to restore) lives in `scenarios` (its registry).

Why the pieces are injectable (`Target`): the waits, counters and timeline are the hard part and are tested
against real local Prometheus/Alertmanager binaries; only "stop/start the bot", "read Alertmanager's log" and
"reach the APIs" differ between that test bed and a real server over SSH (`SshTarget`, the default).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fabfile.alerting.api import ApiError, Apis
from fabfile.config.inventory import Inventory
from fabfile.config.settings import HostSettings
from fabfile.deploy.steps.base import StepContext
from fabfile.drill import scenarios
from fabfile.drill.contract import DrillResult, Expectation, Scenario
from fabfile.drill.errors import DrillFailed, DrillInterrupted, why
from fabfile.drill.notifications import Baseline, NotificationWatch, mail_subjects, receiver_integrations
from fabfile.drill.signals import interrupt, signals_to
from fabfile.drill.target import BOT_UNIT, SshTarget, Target
from fabfile.drill.timeline import Timeline
from fabfile.masking import Masker
from fabfile.output import Output
from fabfile.ssh.session import host_secrets

FAIL_GRACE = 10.0  # a failed notification request with no success within this -> the path is failing
RESTART_BUDGET = 180.0  # how long we keep trying to get the bot running again (reconnecting as needed)


@dataclass(frozen=True)
class Delivery:
    """What the firing notification left for the resolved one to be counted against."""

    receivers: list[str]
    notified: bool  # False: suppressed and --force, no notification was waited for
    after: Baseline


class Drill:
    """One run of one scenario on one host. `run()` never leaves things broken (see `Scenario.make_whole`)."""

    def __init__(self, target: Target, host: HostSettings, ctx: StepContext, *, force: bool = False,
                 timeout: float | None = None, poll: float = 1.0, output: Output | None = None,
                 stream: IO[str] | None = None, tty: bool | None = None,
                 restart_budget: float = RESTART_BUDGET, fail_grace: float = FAIL_GRACE,
                 peers: dict[str, Target] | None = None) -> None:
        self.t, self.host, self.ctx = target, host, ctx
        self.peers = peers or {}  # the cluster's other members by alias (clustered hosts only)
        self.force, self.timeout, self.poll = force, timeout, poll
        self.restart_budget, self.fail_grace = restart_budget, fail_grace
        self.progress = (output or Output(stream)).progress(tty)  # the live line; `say` goes via ctx.log
        self.timeline = Timeline()
        self.mask: Masker = ctx.masker
        self._watches: dict[int, NotificationWatch] = {}

    # -- output
    def say(self, text: str) -> None:
        self.progress.clear()
        self.ctx.log(self.mask(text))

    # -- polling with reconnects
    def wait(self, phase: str, deadline: float, t_start: float, check: Callable[[Apis], Any],
             target: Target | None = None) -> Any:
        """Poll `check` until it returns something truthy; DrillFailed at the deadline (monotonic)."""
        t = target or self.t
        last_err, backoff = "", self.poll
        while True:
            now = time.monotonic()
            self.progress.show(phase, now - t_start, deadline - t_start)
            try:
                got = check(t.apis())
                last_err, backoff = "", self.poll
                if got:
                    self.progress.clear()
                    return got
            except ApiError as e:
                last_err = str(e)
                with contextlib.suppress(Exception):
                    t.reconnect()
                backoff = min(backoff * 2, 10.0)
            if time.monotonic() >= deadline:
                self.progress.clear()
                extra = f" (last error: {last_err})" if last_err else ""
                raise DrillFailed(self.mask(f"timed out after {deadline - t_start:.0f}s waiting for: "
                                            f"{phase}{extra}"))
            time.sleep(min(backoff if last_err else self.poll, max(0.05, deadline - time.monotonic())))

    def ensure_running(self, unit: str, active: Callable[[], bool], start: Callable[[], None]) -> bool:
        """Start `unit` and confirm it active, reconnecting with backoff within the restart budget."""
        end, delay, last = time.monotonic() + self.restart_budget, 1.0, ""
        while True:
            try:
                if not active():
                    start()
                for _ in range(10):
                    if active():
                        return True
                    time.sleep(1)
                last = f"{unit} still not active after start"
            except Exception as e:  # connection lost, sudo failed, ... -> reconnect and retry
                last = why(e)
                with contextlib.suppress(Exception):
                    self.t.reconnect()
            if time.monotonic() + delay > end:
                self.say(f"!!! could not confirm {unit} active on {self.host.name}: {last}")
                return False
            self.say(f"retrying to start {unit} in {delay:.0f}s ({last})")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)

    # -- the delivery path every scenario shares
    def watch(self, expect: Expectation) -> NotificationWatch:
        """The notification watch of the Alertmanager that should deliver (`expect.target`, default ours)."""
        t = expect.target or self.t
        if id(t) not in self._watches:
            others = tuple(o for o in expect.others if o is not t)
            self._watches[id(t)] = NotificationWatch(t, self.mask, self.fail_grace, others)
        return self._watches[id(t)]

    def baseline(self, expect: Expectation) -> Baseline:
        """Taken before anything is broken: only notifications after it count."""
        return self.watch(expect).baseline((expect.target or self.t).apis())

    def deliver(self, expect: Expectation, base: Baseline, deadline: float, t0: float,
                group_wait: float = 0.0) -> Delivery:
        """The alert reaches Alertmanager, is routed, and every integration of its receivers sends it."""
        name, t, watch = expect.alert, expect.target or self.t, self.watch(expect)
        held = self.wait(f"{expect.whose}: holds {name}", deadline, t0,
                         lambda a: a.alertmanager.alerts(expect.labels) or None, t)
        self.timeline.mark("in alertmanager")
        # a group of its own is flushed group_wait after the alert came (seen here within a poll or two)
        new_group = not any(name in names for names in base.groups.values())
        not_before = time.monotonic() + group_wait - 2 * self.poll if new_group else 0.0
        suppressed = [x for x in held if (x.get("status") or {}).get("state") == "suppressed"]
        if suppressed:
            st = suppressed[0]["status"]
            reason = (f"{name} is suppressed in Alertmanager (silenced by {st.get('silencedBy')}, "
                      f"inhibited by {st.get('inhibitedBy')}); no notification will be sent")
            if not self.force:
                raise DrillFailed(reason)
            self.say(f"WARNING: {reason}; --force: skipping the notification checks")
        receivers = sorted({r["name"] for x in held for r in x.get("receivers", [])})
        need = watch.expected(t.apis(), receivers, resolved=False)
        if not need:
            raise DrillFailed(f"{name} routes to {receivers or 'no receiver'}, which has no integration")
        after = base.counts
        if not suppressed:
            subjects = mail_subjects(watch.config(t.apis()), receivers, name)
            mail = f" (mail: {', '.join(repr(x) for x in subjects)})" if subjects else ""
            cfg = watch.config(t.apis())
            routed = ", ".join(f"{r} ({', '.join(receiver_integrations(cfg, r)) or 'no integration'})"
                               for r in receivers)
            self.say(f"{name} routed to {routed}{mail}; waiting for a successful "
                     + ", ".join(f"{k} x{v}" for k, v in need.items()) + " notification")
            after = self.wait(f"{expect.whose}: {', '.join(need)} notification sent", deadline, t0,
                              watch.sent(need, base, name, not_before), t)
            self.say(f"delivered by Alertmanager: {', '.join(need)}")
            self.timeline.mark("notified")
        return Delivery(receivers, not suppressed, watch.baseline(t.apis(), after))

    def rebase(self, expect: Expectation, d: Delivery) -> Delivery:
        """Counted again just before the restore: while things were broken the group may have been notified
        again (a second alert joining it, e.g. the peer's Alertmanager target after its Prometheus), and
        that must not pass for the resolve. After the restore the group only changes by resolving."""
        try:
            return Delivery(d.receivers, d.notified,
                            self.watch(expect).baseline((expect.target or self.t).apis()))
        except ApiError:
            return d

    def deliver_resolved(self, expect: Expectation, d: Delivery, deadline: float, t0: float) -> None:
        """Every integration with send_resolved sends the resolved notification."""
        t, watch = expect.target or self.t, self.watch(expect)
        need = watch.expected(t.apis(), d.receivers, resolved=True) if d.notified else {}
        if not need:
            self.say("no routed receiver has send_resolved: true — no resolved notification to wait for")
            return
        self.wait(f"{expect.whose}: resolved {', '.join(need)} notification sent", deadline, t0,
                  watch.sent(need, d.after, expect.alert), t)
        self.say(f"resolved notification delivered by Alertmanager: {', '.join(need)}")
        self.timeline.mark("resolved-notified")

    def _drive(self, sc: Scenario) -> str:
        expect = sc.prepare(self)
        base = self.baseline(expect)
        sc.break_it(self)
        t0 = time.monotonic()
        deadline = t0 + sc.firing_budget
        sc.until_alerting(self, deadline, t0)
        delivery = self.deliver(expect, base, deadline, t0, sc.bounds.group_wait if sc.bounds else 0.0)
        delivery = self.rebase(expect, delivery)
        sc.restore(self)
        t1 = time.monotonic()
        deadline = t1 + sc.resolve_budget
        sc.until_cleared(self, deadline, t1)
        self.deliver_resolved(expect, delivery, deadline, t1)
        return sc.verdict(self.timeline)

    # -- the frame: whatever happens, make whole
    def run(self, sc: Scenario) -> DrillResult:
        result: DrillResult | None = None
        try:
            with signals_to(interrupt):
                try:
                    result = DrillResult(True, self._drive(sc), self.timeline, sc.bounds)
                except (DrillFailed, ApiError) as e:
                    result = DrillResult(False, str(e), self.timeline, sc.bounds)
        except DrillInterrupted as e:
            result = DrillResult(False, f"interrupted by {e.args[0] if e.args else 'signal'}", self.timeline,
                                 sc.bounds)
        except KeyboardInterrupt:
            result = DrillResult(False, "interrupted", self.timeline, sc.bounds)
        except Exception as e:  # anything else: still make whole, then report it
            result = DrillResult(False, self.mask(f"unexpected error: {why(e)}"), self.timeline, sc.bounds)
        finally:
            self.progress.clear()
            if result is None:
                result = DrillResult(False, "aborted", self.timeline, sc.bounds)
            if sc.broken:
                def noted(name: str) -> None:
                    self.say(f"{name} received — still {sc.restoring}, please wait")

                with signals_to(noted):
                    sc.make_whole(self, result)
            with contextlib.suppress(Exception):
                self.t.close()
        result.message = self.mask(result.message)
        return result


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


def drill_context(inventory: Inventory, host: HostSettings, log: Callable[[str], None],
                  also_mask: Iterable[str] = ()) -> StepContext:
    """A host's secrets and masker as a context (`also_mask`: the drilled host's, naming both)."""
    secrets, masker = host_secrets(inventory, host, also_mask=also_mask)
    return StepContext(inventory=inventory, secrets=secrets, masker=masker, log=log)


def peer_targets(inventory: Inventory, host: HostSettings, ctx: StepContext) -> dict[str, Target]:
    """An SSH target per cluster peer (its own secrets: its web password), for counting its notifications."""
    out: dict[str, Target] = {}
    for p in host.cluster.peers if host.cluster else ():
        peer = inventory.host(p.name)
        out[p.name] = SshTarget.of(peer, drill_context(inventory, peer, ctx.log, ctx.secrets.values()))
    return out


def run_drill(host: HostSettings, ctx: StepContext, *,
              synthetic: bool = False, force: bool = False, timeout: float | None = None,
              target: Target | None = None, rules_path: Path | None = None,
              scenario: Scenario | None = None, peers: dict[str, Target] | None = None,
              **kw: Any) -> DrillResult:
    """The drill on one host; `target` and `peers` replace the SSH/systemd actions (tests)."""
    t = target or SshTarget.of(host, ctx)
    sc = scenario or scenarios.chosen(synthetic=synthetic).factory(rules_path)
    drill = Drill(t, host, ctx, force=force, timeout=timeout, peers=peers, **kw)
    try:
        return drill.run(sc)
    finally:
        for p in drill.peers.values():
            with contextlib.suppress(Exception):
                p.close()


# ---------------------------------------------------------------- CLI glue (tasks.py stays thin)


def cli_test_alert(inventory: Inventory, hosts: list[HostSettings], *, synthetic: bool = False,
                   force: bool = False, timeout: float | None = None, scenario: str = "", alert: str = "",
                   severity: str = "") -> int:
    """Run the drill on each host in turn (a drill stops a bot: never in parallel); exit code for the task."""
    spec = scenarios.chosen(scenario, synthetic)
    scenarios.refuse_unfit(spec, inventory, hosts)
    factory = scenarios.with_alert(spec, alert, severity)  # checked here, before any host is reached
    out, code = Output(), 0
    for host in hosts:
        ctx = drill_context(inventory, host, out.line)
        ctx.log(f"== alert drill ({spec.name}) on {host.name} ({host.address})")
        result = run_drill(host, ctx, force=force, timeout=timeout, output=out,
                           scenario=factory(None), peers=peer_targets(inventory, host, ctx))
        report(result, ctx.log)
        if not result.ok:
            interrupted = result.message.startswith("interrupted")
            code = max(code, 130 if interrupted else 1)
            if interrupted:
                break
    return code
