"""deploy-configs: stage -> validate on the server -> activate atomically -> reload only what changed.

One probe reads the server's state (checksums, owners/modes, which services run). Nothing changed ->
`ok`, no upload, no reload. Otherwise the changed files go to a private staging dir over SFTP and ONE
sudo script lays them out like the real directory (so the relative `rule_files` resolve), runs the
server's own promtool/amtool on that copy, and only if every check passes moves the files into place
and reloads the affected running services, confirming the reload through their metrics.
Unit files are install-services' business and are left alone here.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import secrets
import shlex
from dataclasses import dataclass

from fabric import Connection

from fabfile import checks, render
from fabfile.inventory import HostSettings
from fabfile.masking import Masker
from fabfile.remote import (
    RemoteError,
    install_snippet,
    one_line,
    parse_sha256,
    probe,
    run,
    sha256_snippet,
    stage,
)
from fabfile.steps.base import StepContext, StepResult
from fabfile.webauth import curl_config

STEP = "deploy-configs"
RUNNING = ("active", "reloading")
RELOAD_WAIT_S = 45  # emulated lab VMs are slow; a real server confirms in well under a second
_MARK = "__ROSEY_CFG__"


@dataclass(frozen=True)
class Change:
    """One file that differs from the server (content, or only owner/group/mode)."""

    name: str  # config filename, or secret name
    path: str
    data: bytes
    owner: str
    group: str
    mode: int
    secret: bool
    content_changed: bool  # False: same bytes, only owner/group/mode drifted -> fix, no reload

    def label(self) -> str:
        what = "" if self.content_changed else " (owner/mode only)"
        return f"{self.path}{what}"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    data: bytes
    owner: str
    group: str
    mode: int
    secret: bool


def targets(host: HostSettings, rendered: render.Rendered) -> list[Target]:
    """Every file this step owns on the server: configs (not units) and secret files, secrets first
    so a config never points at a password file that is not there yet."""
    out = [Target(s.name, s.path, s.content.encode(), "root", s.group, s.mode, True)
           for s in rendered.secret_files]
    for name in render.CONFIG_FILES:
        out.append(Target(name, render.remote_path(host, name), rendered.files[name].encode(),
                          "root", "root", render.CONFIG_MODE, False))
    return out


def parse_stat(text: str) -> dict[str, tuple[str, str, int]]:
    """`stat -c '%U %G %a %n'` lines -> {path: (owner, group, mode)}."""
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2].isdigit():
            out[parts[3]] = (parts[0], parts[1], int(parts[2], 8))
    return out


def plan(tgts: list[Target], remote_sha: dict[str, str],
         remote_stat: dict[str, tuple[str, str, int]]) -> list[Change]:
    """The files to (re)install: content differs or missing, or owner/group/mode drifted."""
    out = []
    for t in tgts:
        same = remote_sha.get(t.path) == hashlib.sha256(t.data).hexdigest()
        perms_ok = remote_stat.get(t.path) == (t.owner, t.group, t.mode)
        if not same or not perms_ok:
            out.append(Change(t.name, t.path, t.data, t.owner, t.group, t.mode, t.secret, not same))
    return out


def services_to_reload(changes: list[Change], running: dict[str, bool]) -> tuple[list[str], list[str]]:
    """(reload now, changed but not running) in a stable order; only content changes count."""
    affected = {s for c in changes if c.content_changed for s in render.services_for(c.name)}
    order = [s for s in render.SERVICES if s in affected]
    return [s for s in order if running.get(s)], [s for s in order if not running.get(s)]


def diff_lines(changes: list[Change], remote: dict[str, str], masker: Masker) -> list[str]:
    """Dry-run output: a unified diff per changed config, secret files only named. All masked."""
    out: list[str] = []
    for c in changes:
        if c.secret:
            out.append(f"would change {c.path} (secret: content not shown)")
            continue
        if not c.content_changed:
            out.append(f"would fix owner/group/mode of {c.path} -> {c.owner}:{c.group} {c.mode:04o}")
            continue
        old = remote.get(c.path)
        new = c.data.decode()
        diff = difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                    fromfile=f"{c.path} (server)" if old is not None else "/dev/null",
                                    tofile=f"{c.path} (rendered)")
        out += [masker(line.rstrip("\n")) for line in diff]
    return out


# ---------------------------------------------------------------- remote scripts


def _probe_snippets(paths: list[str]) -> dict[str, str]:
    q = " ".join(shlex.quote(p) for p in paths)
    services = " ".join(render.SERVICES)
    return {
        "sha": sha256_snippet(paths),
        "stat": f"stat -c '%U %G %a %n' -- {q} 2>/dev/null; true",
        "active": f"for s in {services}; do printf '%s %s\\n' \"$s\" \"$(systemctl is-active \"$s\")\"; done",
    }


def _parse_active(text: str) -> dict[str, bool]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1] in RUNNING
    return out


_CONFIRM = r"""
confirm() {  # name port metric-prefix t0
  ok=""; ts=0
  for _ in $(seq 1 TRIES); do
    m=$(curl -sS --max-time 3 ${CFG:+-K "$CFG"} "http://127.0.0.1:$2/metrics" 2>/dev/null \
        | grep -E "^$3_config_last_reload_(successful|success_timestamp_seconds) ")
    ok=$(printf '%s\n' "$m" | awk '/_successful /{print $2}')
    ts=$(printf '%s\n' "$m" | awk '/_timestamp_seconds /{printf "%d", $2}')
    if [ "$ok" = 1 ] && [ "${ts:-0}" -ge "$4" ]; then
      echo "reloaded $1 (last reload successful)"; return 0
    fi
    sleep 0.5
  done
  echo "$1: reload not confirmed: $3_config_last_reload_successful=${ok:-?}, last success at ${ts:-?}, \
requested at $4"
  journalctl -u "$1" -n 5 --no-pager -o cat 2>/dev/null | sed 's/^/  journal: /'
  return 1
}
"""


def _confirm_fn() -> str:
    """Shell function: wait until <svc>'s metrics say the last reload succeeded at/after t0."""
    return _CONFIRM.replace("TRIES", str(RELOAD_WAIT_S * 2))


def apply_script(host: HostSettings, staged: dict[str, str], changes: list[Change], reload: list[str],
                 with_auth: bool, secret_targets: list[Target]) -> str:
    """One sudo script: lay out, validate, activate, reload+confirm. Exit 10 = validation failed
    (nothing activated), 20 = activation failed, 30 = a reload was not confirmed."""
    q = shlex.quote
    base = host.base_dir.rstrip("/")
    v = f"/tmp/rosey-validate.{secrets.token_hex(6)}"  # literal: the check argv is quoted, no $VARS
    lines = ["set -u", "umask 077", f"mkdir -m 0700 {v}/ {v}/secrets || exit 20", 'CFG=""',
             f'trap \'rm -rf {v} ${{CFG:+"$CFG"}}\' EXIT']
    if with_auth:
        lines.append('CFG=$(mktemp /tmp/rosey-curl.XXXXXX); cat > "$CFG"')  # basic auth arrives on stdin
    # The validation copy: staged new files, current ones for the rest, named as in the real dir (so
    # rule_files resolve), secret paths pointed at copies inside it (a first deploy has none in place yet).
    for name in render.CONFIG_FILES:
        src = staged.get(name) or f"{base}/{name}"
        lines.append(f"cp -- {q(src)} {v}/{q(name)} 2>/dev/null || true")
    for t in secret_targets:
        src = staged.get(t.name) or t.path
        lines.append(f"cp -- {q(src)} {v}/secrets/{q(t.name)} 2>/dev/null || true")
    lines.append(f"sed -i 's#{base}/secrets/#{v}/secrets/#g' {v}/*.yml")
    lines.append(f"echo {_MARK} validate")
    promtool, amtool = render.binary_path("promtool"), render.binary_path("amtool")
    for tool in (promtool, amtool):
        lines.append(f"[ -x {tool} ] || {{ echo '{tool} not found on the server: run install-prometheus/"
                     f"install-alertmanager first'; exit 10; }}")
    for chk in checks.check_commands(f"{v}/prometheus.yml", f"{v}/alert_rules.yml", f"{v}/web.yml",
                                     f"{v}/alertmanager.yml", promtool=promtool, amtool=amtool):
        lines.append(f"out=$({chk.shell()} 2>&1) || {{ printf '%s\\n' \"$out\" | sed 's#{v}/secrets/#{base}/"
                     f"secrets/#g; s#{v}/#{base}/#g'; echo {q(chk.name + ' failed')}; exit 10; }}")
    lines.append(f"echo {_MARK} activate")
    lines.append(f"install -d -o root -g root -m 0755 {q(base)} {q(base + '/secrets')} || exit 20")
    for c in changes:
        if c.name in staged:
            lines.append(install_snippet(staged[c.name], c.path, c.owner, c.group, c.mode)
                         .replace("|| exit 1", "|| exit 20"))
        else:  # owner/mode drift only: same bytes
            lines.append(f"{{ chown {q(c.owner)}:{q(c.group)} {q(c.path)} && "
                         f"chmod {c.mode:04o} {q(c.path)}; }} || exit 20")
    lines.append(f"echo {_MARK} reload")
    if reload:
        lines.append(_confirm_fn())
        lines.append("rc=0")
        for svc in reload:
            port = getattr(host, svc).port
            lines.append(f"t0=$(date +%s); systemctl reload {svc} || "
                         f"kill -HUP \"$(systemctl show -p MainPID --value {svc})\"")
            lines.append(f"confirm {svc} {port} {svc} \"$t0\" || rc=30")
        lines.append("exit $rc")
    return "\n".join(lines)


def _sections(stdout: str) -> dict[str, str]:
    out: dict[str, list[str]] = {"": []}
    cur = ""
    for line in stdout.splitlines():
        if line.startswith(_MARK + " "):
            cur = line.split(" ", 1)[1]
            out[cur] = []
        else:
            out.setdefault(cur, []).append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


# ---------------------------------------------------------------- the step


def deploy_configs(conn: Connection, host: HostSettings, ctx: StepContext,
                   rendered: render.Rendered | None = None) -> StepResult:
    """Make the server's configs match the rendered ones; see the module docstring for the order."""
    m = ctx.masker
    try:
        rendered = rendered or render.render_host(ctx.inventory, host, ctx.secrets)
        tgts = targets(host, rendered)
        state = probe(conn, _probe_snippets([t.path for t in tgts]), masker=m, what="read config state")
        changes = plan(tgts, parse_sha256(state["sha"]), parse_stat(state["stat"]))
        if not changes:
            return StepResult(STEP, "ok", "configs up to date")
        running = _parse_active(state["active"])
        reload, idle = services_to_reload(changes, running)
        if ctx.dry_run:
            return _dry_run(conn, changes, reload, idle, m)
        staged = {c.name: stage(conn, c.data, c.name) for c in changes if c.content_changed}
        auth = host.web.basic_auth and bool(reload)  # curl needs it only to confirm reloads
        script = apply_script(host, staged, changes, reload, auth, [t for t in tgts if t.secret])
        res = run(conn, script, check=False, masker=m, what="validate and activate configs",
                  stdin=curl_config(host, ctx.secrets) if auth else None)
        return _outcome(res.exited, _sections(m(res.stdout + res.stderr)), changes, reload, idle, m)
    except RemoteError as e:
        return StepResult(STEP, "failed", m(str(e)))


def _dry_run(conn: Connection, changes: list[Change], reload: list[str], idle: list[str],
             m: Masker) -> StepResult:
    want = [c for c in changes if c.content_changed and not c.secret]
    remote: dict[str, str] = {}
    if want:  # one more read, only when there is something to show
        snippets = {f"f{i}": f"test -f {shlex.quote(c.path)} && base64 -w0 -- {shlex.quote(c.path)}"
                    for i, c in enumerate(want)}
        outs = probe(conn, snippets, masker=m, what="read current configs")
        for i, c in enumerate(want):
            o = outs[f"f{i}"]
            if o.ok:
                remote[c.path] = base64.b64decode(o.strip()).decode(errors="replace")
    details = diff_lines(changes, remote, m)
    if reload:
        details.append(f"would reload: {', '.join(reload)}")
    if idle:
        details.append(f"not running, would only place files: {', '.join(idle)}")
    return StepResult(STEP, "changed", f"would update {len(changes)} file(s) (dry run)", details)


def _outcome(rc: int, sec: dict[str, str], changes: list[Change], reload: list[str], idle: list[str],
             m: Masker) -> StepResult:
    names = ", ".join(c.label() for c in changes)
    if rc == 10:
        msg = sec.get("validate", "") or sec.get("", "")
        return StepResult(STEP, "failed", "validation failed on the server; nothing activated, nothing "
                          f"reloaded: {one_line(msg, m, limit=600)}", m(msg).splitlines())
    if rc == 30:
        msg = sec.get("reload", "")
        return StepResult(STEP, "failed", f"files updated ({names}) but a reload did not take",
                          m(msg).splitlines())
    if rc != 0:
        return StepResult(STEP, "failed", f"could not activate configs (exit {rc}): "
                          f"{one_line(sec.get('activate') or sec.get('') or '', m)}")
    details = [f"updated {names}"]
    details += sec.get("reload", "").splitlines()
    if idle:
        details.append(f"not running (placed only): {', '.join(idle)}")
    how = f"reloaded {', '.join(reload)}" if reload else "no reload needed"
    return StepResult(STEP, "changed", f"updated {len(changes)} file(s); {how}", details)

