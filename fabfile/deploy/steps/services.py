"""install-services: hardened systemd units in place, enabled, running, healthy; restarted only when needed.

When is a restart needed? Exactly when the running process is not what the files on disk describe:
- the binary: `/proc/<MainPID>/exe` (the real file the process runs, symlinks resolved) differs from
  `readlink -f /usr/local/bin/<service>` — true right after install switched the symlink, and still true
  on the next run if that run failed before restarting (no marker file to get out of sync);
- the unit: the rendered unit differs from the one on disk (we replace it now), or the unit file on disk
  is newer than the process's start (`stat %Y` > `ExecMainStartTimestamp`) — the latter catches a unit
  written by an earlier run that failed before its restart.
Config files are not our business here: deploy-configs reloads for those.

Round trips: one probe for both services; when something changes, one command (units installed from
staging, enable, a systemd reload only for a changed unit, restart, wait for /-/healthy, journal tail on
failure) plus SFTP.
A restart onto a new binary that does not become healthy is switched back to the previous release in
that same script (fabfile/deploy/rollback.py says why here and how).
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import shlex
from dataclasses import dataclass, field

from fabfile.config import layout, render
from fabfile.config.settings import HostSettings
from fabfile.deploy import rollback
from fabfile.deploy.steps.base import StepContext, StepResult, certificates, file_diff
from fabfile.facts import releases
from fabfile.facts import units as unit_state
from fabfile.ssh import probe, stage, transport
from fabfile.ssh.session import HostSession
from fabfile.ssh.webauth import curl_config, web_get_fn

STEP = "install-services"
HEALTH_TIMEOUT = 120  # seconds; Prometheus replays its WAL before answering, slow under emulation
JOURNAL_LINES = 20
UNSTAGED = "__ROSEY_UNSTAGED__"  # the script removed the (then empty) staging dir


def _snippets(host: HostSettings) -> dict[str, str]:
    q = shlex.quote
    out = {"units": unit_state.snippet(host)}  # the same text as deploy-configs' and verify's: read once
    for svc in layout.SERVICES:
        path = layout.remote_path(host, f"{svc}.service")
        out[f"{svc}_unit"] = f"sha256sum {q(path)} 2>/dev/null"
    return out


@dataclass
class ServicePlan:
    service: str
    upload_unit: bool = False
    daemon_reload: bool = False  # a unit systemd has loaded changed on disk: it must re-read it
    new_unit: bool = False  # no unit file yet: systemd loads it on first use (an old one needs a reload)
    enable: bool = False
    start: bool = False  # not running: start it
    restart: bool = False  # running an outdated binary/unit: restart it
    previous: str | None = None  # release dir of the binary running now: switched back to if the new fails
    reasons: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return self.upload_unit or self.daemon_reload or self.enable or self.start or self.restart

    def describe(self) -> str:
        verb = "started" if self.start else "restarted" if self.restart else ""
        parts = [*self.reasons] + ([verb] if verb else [])
        return f"{self.service}: " + ", ".join(parts)


def decide(host: HostSettings, units: dict[str, str], state: dict[str, str]) -> list[ServicePlan]:
    """Pure decision from the rendered units and the probe answers (unit-tested without a server)."""
    plans = []
    facts = unit_state.parse(host, state["units"])
    for svc in layout.SERVICES:
        p = ServicePlan(svc)
        want_sha = hashlib.sha256(units[f"{svc}.service"].encode()).hexdigest()
        st = facts[svc]
        have_sha = state[f"{svc}_unit"].split(" ", 1)[0].strip()
        if have_sha != want_sha:
            p.upload_unit = True
            p.new_unit = not have_sha
            p.daemon_reload = bool(have_sha)
            p.reasons.append("unit updated" if have_sha else "unit installed")
        if st.need_daemon_reload and not p.daemon_reload:  # systemd says its view of the unit is stale
            p.daemon_reload = True
            p.reasons.append("systemd reload pending")
        if st.enabled != "enabled":
            p.enable = True
            p.reasons.append("enabled")
        if not st.running:
            p.start = True
        else:
            if st.exe != st.binary:
                p.restart = True
                p.reasons.append("binary changed")
                p.previous = releases.previous_release(svc, st.exe, st.binary)
            if p.upload_unit or (st.started and st.unit_mtime > int(st.started)):
                p.restart = True
                if not p.upload_unit:
                    p.reasons.append("unit newer than the running process")
        plans.append(p)
    return plans


def dry_run_details(host: HostSettings, plans: list[ServicePlan], units: dict[str, str],
                    current: dict[str, str | None]) -> list[str]:
    """What a real run would write and (re)start: unit diffs, daemon-reload, enable, start/restart and why."""
    out: list[str] = []
    for p in plans:
        unit = f"{p.service}.service"
        if p.upload_unit:
            path = layout.remote_path(host, unit)
            out.append(f"would write {path}")
            out += file_diff(path, current.get(unit), units[unit])
    if any(p.daemon_reload for p in plans):
        out.append("would run: systemctl daemon-reload")
    elif any(p.new_unit for p in plans):
        out.append("would run: systemctl daemon-reload only if systemd does not load the new units itself")
    enable = [f"{p.service}.service" for p in plans if p.enable]
    if enable:
        out.append(f"would enable: {', '.join(enable)}")
    for p in plans:
        if p.start:
            out.append(f"would start {p.service}.service (not running) and wait for /-/healthy")
        elif p.restart:
            why = ", ".join(r for r in p.reasons if r != "enabled")
            out.append(f"would restart {p.service}.service ({why}) and wait for /-/healthy")
    return out


def _current_units(conn: HostSession, host: HostSettings, plans: list[ServicePlan],
                   ctx: StepContext) -> dict[str, str | None]:
    """The server's unit files that a run would replace (one read, dry run only); None: absent."""
    units = [f"{p.service}.service" for p in plans if p.upload_unit]
    if not units:
        return {}
    paths = [shlex.quote(layout.remote_path(host, u)) for u in units]
    outs = probe.probe(conn, {f"u{i}": f"test -f {p} && base64 -w0 -- {p}" for i, p in enumerate(paths)},
                        masker=ctx.masker, what=f"{STEP} read units")
    return {u: base64.b64decode(outs[f"u{i}"].strip()).decode(errors="replace") if outs[f"u{i}"].ok else None
            for i, u in enumerate(units)}


def apply_script(host: HostSettings, plans: list[ServicePlan], installs: list[str]) -> str:
    """One root script: units in place, daemon-reload, enable, (re)start, wait healthy or show the journal."""
    q = shlex.quote
    lines = ["set -eu", 'cfg=$(mktemp); trap \'rm -f "$cfg"\' EXIT; chmod 600 "$cfg"; cat > "$cfg"',
             *installs]
    enable = [f"{p.service}.service" for p in plans if p.enable]
    reload = any(p.daemon_reload for p in plans)
    # One systemd reload at most (2-3 s each on a small or emulated server), and none for new units where
    # systemd does without: Debian 12's 252 loads a unit file on its first use, even for a unit it was asked
    # about before the file existed, and is content. Debian 13's 257 loads it too but then says a reload is
    # pending (NeedDaemonReload=yes: the unit folders changed since its last load), so it gets the reload
    # now, not on the next run. A changed file of a loaded unit always needs the reload.
    if enable:  # `systemctl enable` reloads after linking unless told not to: then it is the one reload
        lines.append("systemctl enable --quiet " + ("" if reload else "--no-reload ") + " ".join(enable))
    elif reload:
        lines.append("systemctl daemon-reload")
    new = [f"{p.service}.service" for p in plans if p.new_unit]
    if new and not reload:  # a systemd that says "not-found" or "reload pending" has to reload after all
        units = " ".join(new)  # its answer: one value per property and unit, a blank line between units
        lines.append(f"if systemctl show -p LoadState,NeedDaemonReload --value -- {units} "
                     "| grep -qvx -e loaded -e no -e ''; then systemctl daemon-reload; fi")
    waits = [p for p in plans if p.start or p.restart]
    if waits:  # one systemctl for both: their starts overlap, and one program start less
        lines += ["t0=$(date +%s)", "rc=0", web_get_fn(host), rollback.health_fn(HEALTH_TIMEOUT),
                  "systemctl restart " + " ".join(q(p.service + ".service") for p in waits)]
    # healthy is all this step waits for: Prometheus applies its discovered targets and Alertmanagers 5-10 s
    # after its start, and scrapes each target at its own offset within the interval after that; verify
    # waits for both (bounded), and the firewall step between them usually covers that wait.
    for p in waits:
        port = getattr(host, p.service).port
        lines += rollback.wait_or_roll_back(p.service, port, p.previous, JOURNAL_LINES)
    if waits:
        lines.append("exit $rc")
    return "\n".join(lines)


def reads(host: HostSettings, ctx: StepContext) -> probe.Read:
    return probe.Read(_snippets(host), what=f"{STEP} probe")


def install_services(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    issued = certificates(host, ctx)  # the Alertmanager unit names the gossip material's hash
    rendered = render.render_host(ctx.inventory, host, ctx.secrets, hash_password=False)  # units only
    state = probe.probe_read(conn, reads(host, ctx), masker=ctx.masker)
    plans = decide(host, rendered.files, state)
    todo = [p for p in plans if p.changes]
    if not todo:
        return StepResult(STEP, "ok", "prometheus, alertmanager: enabled, running current binary and unit",
                          issued)
    summary = "; ".join(p.describe() for p in todo)
    if ctx.dry_run:
        details = dry_run_details(host, todo, rendered.files, _current_units(conn, host, todo, ctx))
        return StepResult(STEP, "changed", f"would: {summary} (dry run)",
                          issued + [ctx.masker(d) for d in details])
    installs, staged_in = [], set()
    for p in plans:
        if p.upload_unit:
            unit = f"{p.service}.service"
            staged = stage.stage(conn, rendered.files[unit].encode(), unit)
            staged_in.add(posixpath.dirname(staged))
            installs.append(stage.install_snippet(staged, layout.remote_path(host, unit), mode=0o644))
    # the staging dir goes with its last file (when nothing else is in it): no cleanup command at the end
    installs += [f"rmdir -- {shlex.quote(d)} 2>/dev/null && echo {UNSTAGED} || true"
                 for d in sorted(staged_in)]
    waits = HEALTH_TIMEOUT * 2 * len(layout.SERVICES)  # each: new, then rolled back
    res = transport.run(conn, apply_script(host, plans, installs), what=STEP, masker=ctx.masker, check=False,
                     stdin=curl_config(host, ctx.secrets), timeout=waits + 120)
    if UNSTAGED in res.stdout:
        stage.forget_stage(conn)
    if res.exited != 0:
        out = ctx.masker(res.stdout.replace(UNSTAGED + "\n", "") + "\n" + res.stderr)
        failure = rollback.report(out, {p.service: getattr(host, p.service).version for p in plans},
                                  {p.service: p.previous for p in plans})
        if failure:
            return StepResult(STEP, "failed", failure.head, failure.details[-4 * JOURNAL_LINES:])
        lines = [ln for ln in out.splitlines() if ln.strip()]
        return StepResult(STEP, "failed", transport.one_line("\n".join(lines)), lines[-JOURNAL_LINES:])
    return StepResult(STEP, "changed", summary, issued)
