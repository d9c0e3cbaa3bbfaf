"""Run steps on hosts: pre-flight checks first, then every host in its own thread with its own HostSession.

Why this shape: one unreachable or broken host must not hold back the others, the user must see which
host said what (`[host] ` prefix on every line), and a missing secret must be reported before we touch
any server. The exit code is 0 only when no host failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

from fabric import Connection

from fabfile.config.clusters import alone_warning
from fabfile.config.inventory import Inventory
from fabfile.config.secrets import load_secrets
from fabfile.config.settings import HostSettings
from fabfile.deploy import steps as registry
from fabfile.deploy.interrupt import EXIT_INTERRUPTED, Stop
from fabfile.deploy.steps.base import Step, StepContext, StepResult
from fabfile.errors import UserError
from fabfile.masking import Masker
from fabfile.output import Output, RecapRow, StepTime
from fabfile.ssh import probe, stage, transport
from fabfile.ssh.connection import connect
from fabfile.ssh.host_keys import HostKeyError
from fabfile.ssh.session import HostSession, open_session
from fabfile.ssh.webauth import clear_text_warning

ALWAYS_RUN = ("verify",)  # still runs (and reports) after an earlier step of that host failed
DEFAULT_PARALLEL = 10  # hosts at once; bench/deploy_bench.py measures the control side's cost per host
SYMBOL = {"ok": "ok", "changed": "changed", "failed": "FAILED"}
READ_AHEAD = "read-state"  # the profile's name for the one probe that reads every step's state first


@dataclass
class HostReport:
    host: str
    results: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    commands: dict[str, int] = field(default_factory=dict)  # SSH commands per step (see transport.stats)
    step_seconds: dict[str, float] = field(default_factory=dict)  # wall time per step
    bytes_uploaded: int = 0
    stopped: str = ""  # after a Ctrl-C: "before <step>" or "not started"

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)


def preflight(inventory: Inventory,
              hosts: Sequence[HostSettings]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Secrets of every host, and every problem found (all of them, not just the first)."""
    from fabfile.config.render import render_host  # pure: catches settings the templates cannot honour
    from fabfile.ssh.connection import key_problem

    secrets, problems = {}, []
    for h in hosts:
        if key_problem(h):
            problems.append(str(key_problem(h)))
        try:
            secrets[h.name] = load_secrets(inventory, h)
            render_host(inventory, h, secrets[h.name], hash_password=False)
        except UserError as e:
            problems.append(str(e))
    return secrets, problems


def _format(result: StepResult, masker: Masker) -> list[str]:
    head = f"{result.step}: {SYMBOL[result.status]}"
    if result.summary:
        head += f" — {masker(result.summary)}"
    return [head] + [f"    {masker(d)}" for d in result.details]


def run_host(host: HostSettings, steps: Sequence[tuple[str, Step]], ctx: StepContext,
             connector: Callable[[HostSettings], Connection] = connect,
             stop: Stop | None = None) -> HostReport:
    """All steps on one host, in order; a failure stops the rest except ALWAYS_RUN steps; a Ctrl-C (`stop`)
    stops before the next step, verify included."""
    report = HostReport(host.name)
    started = time.monotonic()
    broken = False  # an earlier step failed
    unreachable = False
    ahead = registry.reads_of([n for n, _ in steps])
    if len(ahead) < 2:  # one step reads for itself: nothing to gain
        ahead = []
    with open_session(ctx.inventory, host, secrets=ctx.secrets, masker=ctx.masker,
                      connector=connector) as session:
        try:
            for i, (name, step) in enumerate(steps):
                if unreachable or (broken and name not in ALWAYS_RUN):
                    continue
                if stop is not None and stop.requested.is_set():
                    report.stopped = f"before {name}"
                    break
                if stop is not None:
                    stop.doing(host.name, name)
                step_started = time.monotonic()
                try:
                    if ahead:  # inside the first step's try: a host that cannot be reached fails that step
                        reads, ahead = ahead, []
                        session.stats.label = READ_AHEAD
                        if probe.read_ahead(session, [r(host, ctx) for r in reads], ctx.masker):
                            report.step_seconds[READ_AHEAD] = time.monotonic() - step_started
                        step_started = time.monotonic()
                    # a change this step makes ends with the next step's read (no round trip of its own)
                    following = registry.reads_of([n for n, _ in steps[i + 1:i + 2]])
                    probe.read_after_change(session, following[0](host, ctx) if following else None)
                    session.stats.label = name
                    ctx.later = later_reads(session, host, ctx, name)
                    result = step(session, host, ctx)
                except transport.RemoteError as e:
                    result = StepResult(name, "failed", ctx.masker(str(e)))
                    # not even verify: it would reconnect
                    unreachable = isinstance(e, transport.ConnectionLost)
                except UserError as e:
                    result = StepResult(name, "failed", ctx.masker(str(e)))
                    unreachable = isinstance(e, HostKeyError)  # refused before anything was sent: stop here
                except Exception as e:  # noqa: BLE001 — one host's surprise must not kill the others
                    msg = transport.describe_connect_error(e, host.name, host.address, host.ssh.port)
                    if msg:
                        unreachable = True
                        result = StepResult(name, "failed", msg)
                    else:
                        text = f"{type(e).__name__}: {e}".splitlines()[0]
                        result = StepResult(name, "failed", ctx.masker(text))
                report.step_seconds[name] = time.monotonic() - step_started
                if stop is not None:
                    stop.doing(host.name, None)
                for ln in _format(result, ctx.masker):
                    ctx.log(ln)
                report.results.append(result)
                broken = broken or result.failed
            probe.read_after_change(session, None)
            if not unreachable:
                session.stats.label = "cleanup"
                with contextlib.suppress(Exception):  # best effort: a leftover /tmp dir is harmless
                    stage.cleanup(session)
        finally:
            st = session.stats
            report.commands = {k: v for k, v in st.per_label.items() if k}
            report.bytes_uploaded = st.bytes_uploaded
            report.seconds = time.monotonic() - started
    return report


def later_reads(session: HostSession, host: HostSettings, ctx: StepContext, name: str
                ) -> dict[str, Mapping[str, str]]:
    """What the read-ahead found for the later steps `name` declares it sees (StepSpec.sees), by step name;
    left in place for those steps (a change since has dropped it: then nothing)."""
    later: dict[str, Mapping[str, str]] = {}
    for other, reads in registry.sees_of(name):
        got = probe.peek_ahead(session, reads(host, ctx))
        if got is not None:
            later[other] = got
    return later


def recap_rows(reports: Sequence[HostReport]) -> list[RecapRow]:
    return [RecapRow(r.host, r.count("ok"), r.count("changed"), r.count("failed"), r.seconds,
                     tuple(StepTime(s, secs, r.commands.get(s, 0)) for s, secs in r.step_seconds.items()),
                     r.stopped)
            for r in reports]


def run(inventory: Inventory, hosts: Sequence[HostSettings], steps: Sequence[tuple[str, Step]], *,
        dry_run: bool = False, strict: bool = False, stream: TextIO | None = None,
        connector: Callable[[HostSettings], Connection] = connect,
        reports_out: list[HostReport] | None = None, output: Output | None = None,
        parallel: int = DEFAULT_PARALLEL, stop: Stop | None = None) -> int:
    """Run `steps` on every host, at most `parallel` at once; print results and a recap; return the exit code.

    2: a pre-flight problem (nothing was contacted); 1: some host failed; 0: all good; 130: stopped by
    Ctrl-C (interrupt.py; the hosts run in worker threads even one at a time, so the main thread hears it).
    `output` (default: a new one on `stream`) also keeps every step result as a record for `--json`.
    """
    out = output or Output(stream)
    secrets, problems = preflight(inventory, hosts)
    if problems:
        for p in problems:
            out.error(p)
        out.line("nothing was changed: fix the above first")
        return 2
    for h in hosts:
        for warning in (clear_text_warning(h), alone_warning(h)):
            if warning:
                out.line(f"warning: {warning}")
    reports: dict[str, HostReport] = {}
    stop = stop or Stop(out)

    def work(h: HostSettings) -> None:
        if stop.requested.is_set():
            reports[h.name] = HostReport(h.name, stopped="not started")
            return
        masker = Masker(secrets[h.name].values())
        ctx = StepContext(inventory=inventory, secrets=secrets[h.name], dry_run=dry_run,
                          strict=strict, log=out.for_host(h.name, masker), masker=masker)
        try:
            reports[h.name] = run_host(h, steps, ctx, connector, stop)
        except Exception as e:  # noqa: BLE001 — e.g. a bad key file: report it as this host's failure
            ctx.log(f"{type(e).__name__}: {e}")
            reports[h.name] = HostReport(h.name, [StepResult("connect", "failed", masker(str(e)))])
        for res in reports[h.name].results:
            out.record("step", host=h.name, step=res.step, status=res.status, summary=masker(res.summary),
                       details=[masker(d) for d in res.details])

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts))), thread_name_prefix="host") as pool:
        futures = [pool.submit(work, h) for h in hosts]
        stop.wait(futures)
        for f in futures:
            f.result()  # a surprise in work() itself is a bug: let it show
    ordered = [reports[h.name] for h in hosts]
    if dry_run:
        out.line("dry run: nothing was changed")
    out.recap(recap_rows(ordered))
    if reports_out is not None:
        reports_out.extend(ordered)
    if stop.requested.is_set():
        stopped = [f"{r.host} {r.stopped}" for r in ordered if r.stopped]
        out.line("stopped by Ctrl-C" + (": " + ", ".join(stopped) if stopped else " after the last step")
                 + "; run the same command again to carry on")
        return EXIT_INTERRUPTED
    return 1 if any(r.failed for r in ordered) else 0


# ---------------------------------------------------------------- named steps (what the tasks run)


def run_named(inventory: Inventory, hosts: Sequence[HostSettings], names: Sequence[str], *,
              dry_run: bool = False, strict: bool = False, stream: TextIO | None = None,
              parallel: int = DEFAULT_PARALLEL) -> int:
    """What the tasks call: `run` with steps given by their registry names."""
    return run(inventory, hosts, registry.named(names), dry_run=dry_run, strict=strict, stream=stream,
               parallel=parallel)
