"""deploy-configs: stage -> validate on the server -> activate atomically -> reload only what changed.

One probe reads the server's state (checksums, owners/modes, which services run). Nothing changed ->
`ok`, no upload, no reload. Otherwise the changed files go to a private staging dir over SFTP and ONE
sudo script lays them out like the real directory (so the relative `rule_files` resolve), runs the
server's own promtool/amtool on that copy, and only if every check passes moves the files into place
and reloads the affected running services, confirming the reload through their metrics.

Nothing is lost: the same script first keeps copies of the files it replaces. If activation breaks off,
or a service does not confirm its reload (it can reject a config for reasons the validator cannot see:
it reads the files as its own user, under systemd hardening, and may simply not answer in time), the
previous files go back atomically, the services are reloaded again and must confirm the old config.
Unit files are install-services' business and are left alone here.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import secrets
import shlex
from dataclasses import dataclass

from fabfile.config import checks, layout, render
from fabfile.config.needed_secrets import WEB_TLS_CONFIG, required_secrets
from fabfile.config.settings import HostSettings
from fabfile.deploy.steps.base import StepContext, StepResult, certificates, file_diff
from fabfile.facts import units as unit_state
from fabfile.facts.files import parse_sha256, parse_stat, sha256_snippet
from fabfile.masking import Masker
from fabfile.ssh.probe import Read, probe, probe_read
from fabfile.ssh.session import HostSession
from fabfile.ssh.stage import forget_stage, install_snippet, stage
from fabfile.ssh.transport import one_line, run
from fabfile.ssh.webauth import curl_config, web_get_fn

STEP = "deploy-configs"
RELOAD_WAIT_S = 45  # emulated lab VMs are slow; a real server confirms in well under a second
SILENT_WAIT_S = 10  # the restore's wait when the service did not answer the first one at all
_MARK = "__ROSEY_CFG__"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    data: bytes
    owner: str
    group: str
    mode: int
    secret: bool


@dataclass(frozen=True)
class Change(Target):
    """One file that differs from the server (content, or only owner/group/mode)."""

    content_changed: bool  # False: same bytes, only owner/group/mode drifted -> fix, no reload

    def label(self) -> str:
        what = "" if self.content_changed else " (owner/mode only)"
        return f"{self.path}{what}"


def target_paths(host: HostSettings) -> list[str]:
    """Where `targets` go, from the settings alone (what the step reads before it renders)."""
    return ([layout.secret_path(host, name) for name in required_secrets(host)]
            + [layout.remote_path(host, name) for name in layout.CONFIG_FILES])


def targets(host: HostSettings, rendered: render.Rendered) -> list[Target]:
    """Every file this step owns on the server: configs (not units) and secret files, secrets first
    so a config never points at a password file that is not there yet."""
    out = [Target(s.name, s.path, s.content.encode(), s.owner, s.group, s.mode, True)
           for s in rendered.secret_files]
    for name in layout.CONFIG_FILES:
        out.append(Target(name, layout.remote_path(host, name), rendered.files[name].encode(),
                          "root", "root", layout.CONFIG_MODE, False))
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
    """(reload now, changed but not reloaded) in a stable order; only content changes count.

    `running[s]` is False for a stopped service and for one whose restart is pending (it still runs the
    binary install replaced): the old binary may reject a config rendered for the new release (2.x and
    3.x's `fallback_scrape_protocol`), and install-services' restart loads the files anyway.
    """
    affected = {s for c in changes if c.content_changed for s in layout.services_for(c.name)}
    order = [s for s in layout.SERVICES if s in affected]
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
        out += [masker(line) for line in file_diff(c.path, remote.get(c.path), c.data.decode())]
    return out


# ---------------------------------------------------------------- remote scripts


def _snippets(host: HostSettings, paths: list[str]) -> dict[str, str]:
    q = " ".join(shlex.quote(p) for p in paths)
    return {
        "sha": sha256_snippet(paths),
        "stat": f"stat -c '%U %G %a %n' -- {q} 2>/dev/null; true",
        "units": unit_state.snippet(host),  # the same text as install-services' and verify's: read once
    }


def reloadable(units: dict[str, unit_state.UnitState]) -> dict[str, bool]:
    """{service: reload it now?}: running, and still on the binary the symlink points at (a restart is
    pending otherwise: install-services' restart loads the files anyway)."""
    return {svc: st.running and not st.restart_pending for svc, st in units.items()}


_RELOAD = r"""
reload_state() {  # port prefix -> "<successful> <last success, unix s>" from the service's own metrics
  web_get "$1" /metrics -sS --max-time 3 ${CFG:+-K "$CFG"} 2>/dev/null | awk -v p="$2" '
    $1 == p "_config_last_reload_successful" { ok = $2 }
    $1 == p "_config_last_reload_success_timestamp_seconds" { ts = sprintf("%d", $2) }
    END { print (ok == "" ? "?" : ok), (ts == "" ? 0 : ts) }'
}
reload_svc() {  # name port [wait]: ask for a reload, then wait (at most WAIT s) until the metrics confirm it
  local t0 prev st ok="?" ts=0 end wait=${3:-WAIT} why
  why="not confirmed within $wait s"
  t0=$(date +%s); prev=$(reload_state "$2" "$1"); prev=${prev%% *}
  systemctl reload "$1" || kill -HUP "$(systemctl show -p MainPID --value "$1")"
  end=$(( $(date +%s) + wait ))
  while :; do
    st=$(reload_state "$2" "$1"); ok=${st%% *}; ts=${st##* }
    if [ "$ok" = 1 ] && [ "$ts" -ge "$t0" ]; then echo "reloaded $1 (last reload successful)"; return 0; fi
    # 1 before we asked, 0 now: the service read the files and rejected them; no point in waiting
    if [ "$prev" = 1 ] && [ "$ok" = 0 ]; then why="rejected"; break; fi
    [ "$(date +%s)" -lt "$end" ] || break
    sleep 0.5
  done
  # no answer at all, not even before the reload: the service hangs (or is overloaded)
  if [ "$prev" = "?" ] && [ "$ok" = "?" ]; then
    why="$why: it does not answer at all (hung? systemctl status $1)"; SILENT=1
  fi
  echo "$1: reload $why ($1_config_last_reload_successful=$ok)"
  journalctl -u "$1" -n JOURNAL --no-pager -o cat 2>/dev/null | sed 's/^/  journal: /'
  return 1
}
SILENT=""
"""
JOURNAL_LINES = 6


def _reload_fns() -> str:
    """Shell functions: read a service's reload metrics; reload it and wait for its confirmation
    (a real deadline, so an unresponsive service cannot stretch the wait; early exit on a rejection)."""
    return _RELOAD.replace("WAIT", str(RELOAD_WAIT_S)).replace("JOURNAL", str(JOURNAL_LINES))


def _restore_fn(changes: list[Change], keep: str) -> str:
    """Shell function `restore`: put every file this run touched back as it was before, each by an
    atomic rename of a copy (owner, mode, ACLs, timestamps kept by `cp -a`); a file that did not exist
    before is removed. Configs first, secrets last: the reverse of activation. rc 1 if anything failed."""
    q = shlex.quote
    body = ["restore() {", "  r=0"]
    for i, c in reversed(list(enumerate(changes))):
        dest, old = q(c.path), q(c.path + ".rosey-old")
        body.append(f"  if [ -z \"${{M{i}:-}}\" ]; then :  # never replaced: nothing to put back")
        body.append(f"  elif [ -e {keep}/{i} ] || [ -L {keep}/{i} ]; then "
                    f"{{ cp -a -- {keep}/{i} {old} && mv -fT {old} {dest}; }} || "
                    f"{{ rm -f -- {old}; echo {q('could not restore ' + c.path)}; r=1; }}")
        body.append(f"  elif [ -e {keep}/{i}.absent ]; then rm -f -- {dest} || r=1; fi")
    body += ["  return $r", "}"]
    return "\n".join(body)


def _sed(text: str, replacement: bool = False) -> str:
    """`text` as a literal in a sed `s#...#...#` pattern (or, with `replacement`, its replacement part)."""
    special = "\\#&" if replacement else "\\#.[]*^$"
    return "".join("\\" + ch if ch in special else ch for ch in text)


def apply_script(host: HostSettings, staged: dict[str, str], changes: list[Change], reload: list[str],
                 with_auth: bool, secret_targets: list[Target]) -> str:
    """One sudo script: lay out, validate, keep the current files, activate, reload+confirm, and put the
    previous files back if activation or a reload fails.

    Exit codes: 10 validation failed (nothing activated); 20 activation failed, previous files restored
    (21: restoring failed too); 30 a reload was not confirmed, previous config restored and confirmed
    (31: restoring the files failed; 32: restored, but the old config's reload was not confirmed either).
    """
    q = shlex.quote
    base, secrets_dir = layout.config_dir(host), layout.secrets_dir(host)
    v = f"/tmp/rosey-validate.{secrets.token_hex(6)}"  # literal: the check argv is quoted, no $VARS
    keep = f"{v}/prev"  # root-only copies of the files about to be replaced
    # the staged uploads go whatever happens (they may hold secrets); their dir too once it is empty
    unstage = [f"rm -f -- {' '.join(q(p) for p in staged.values())}"] if staged else []
    unstage += [f"rmdir {q(d)} 2>/dev/null && echo {_MARK} unstaged"
                for d in sorted({posixpath.dirname(p) for p in staged.values()})]
    lines = ["set -u", "umask 077", "exec 2>&1",  # one stream: messages stay in their section
             "export LC_ALL=C",  # the tools' messages in English, whatever the server's locale (DISK_FULL)
             "trap '' HUP PIPE",  # a dropped SSH connection must not stop us halfway (or mid-restore)
             'CFG=""',
             "cleanup() {", f"  rm -rf {v} ${{CFG:+\"$CFG\"}}", *(f"  {u}" for u in unstage), "}",
             "trap cleanup EXIT", "trap 'exit 143' INT TERM",
             f"mkdir -m 0700 {v}/ {v}/secrets {keep}/ || exit 20"]
    if with_auth:
        lines.append('CFG=$(mktemp /tmp/rosey-curl.XXXXXX); cat > "$CFG"')  # basic auth arrives on stdin
    # The validation copy: staged new files, current ones for the rest, named as in the real dir (so
    # rule_files resolve), secret paths pointed at copies inside it (a first deploy has none in place yet).
    for name in layout.CONFIG_FILES:
        src = staged.get(name) or layout.remote_path(host, name)
        lines.append(f"cp -- {q(src)} {v}/{q(name)} 2>/dev/null || true")
    for t in secret_targets:
        src = staged.get(t.name) or t.path
        lines.append(f"cp -- {q(src)} {v}/secrets/{q(t.name)} 2>/dev/null || true")
    lines.append(f"sed -i {q(f's#{_sed(secrets_dir)}/#{v}/secrets/#g')} {v}/*.yml")
    lines.append(f"echo {_MARK} validate")
    promtool, amtool = layout.binary_path("promtool"), layout.binary_path("amtool")
    for tool in (promtool, amtool):
        lines.append(f"[ -x {tool} ] || {{ echo '{tool} not found on the server: run install-prometheus/"
                     f"install-alertmanager first'; exit 10; }}")
    has_tls = any(t.name == WEB_TLS_CONFIG for t in secret_targets)
    web_tls = [f"{v}/secrets/{WEB_TLS_CONFIG}"] if has_tls else []
    if web_tls:  # the HTTPS web config names the certificate and key: check it against the new ones
        lines.append(f"sed -i {q(f's#{_sed(secrets_dir)}/#{v}/secrets/#g')} {web_tls[0]}")
    chks = [*checks.check_commands(f"{v}/prometheus.yml", f"{v}/alert_rules.yml", f"{v}/web.yml",
                                   f"{v}/alertmanager.yml", promtool=promtool, amtool=amtool),
            *(checks.ToolCheck("promtool check web-config (HTTPS)", (promtool, "check", "web-config", w))
              for w in web_tls)]
    # all at once (each is a Go program start, the slow part on a small server), judged in this order:
    # the first failing one is reported, with the real paths in its words, as if they had run in turn
    back = q(f"s#{v}/secrets/#{_sed(secrets_dir, True)}/#g; s#{v}/#{_sed(base, True)}/#g")
    lines += [f"{chk.shell()} > {v}/check{i}.out 2>&1 & c{i}=$!" for i, chk in enumerate(chks)]
    lines += [f"wait $c{i} || {{ sed {back} {v}/check{i}.out; echo {q(chk.name + ' failed')}; "
              "wait; exit 10; }" for i, chk in enumerate(chks)]
    lines.append(f"echo {_MARK} activate")
    lines.append(_restore_fn(changes, keep))
    lines.append("fail() { restore && exit $1; exit $(( $1 + 1 )); }  # activation broke off: undo it")
    # Keep what is there now (before anything moves; a failure here has changed nothing yet).
    for i, c in enumerate(changes):
        p = q(c.path)
        lines.append(f"if [ -e {p} ] || [ -L {p} ]; then cp -a -- {p} {keep}/{i} || "
                     f"{{ echo {q('could not keep a copy of ' + c.path)}; exit 20; }}; "
                     f"else : > {keep}/{i}.absent; fi")
    lines.append(f"install -d -o root -g root -m 0755 {q(base)} {q(secrets_dir)} || exit 20")
    for i, c in enumerate(changes):  # M<i>=1 once file i really changed: `restore` undoes only those
        if c.name in staged:
            lines.append(install_snippet(staged[c.name], c.path, c.owner, c.group, c.mode,
                                         on_fail="fail 20", moved=f"M{i}=1"))
        else:  # owner/mode drift only: same bytes
            lines.append(f"{{ M{i}=1; chown {q(c.owner)}:{q(c.group)} {q(c.path)} && "
                         f"chmod {c.mode:04o} {q(c.path)}; }} || fail 20")
    lines.append(f"echo {_MARK} reload")
    if reload:
        lines += [web_get_fn(host), _reload_fns(), _restore_reload_fn(host, reload), 'did=""']
        for svc in reload:  # stop at the first failure: later services still run their old config
            port = getattr(host, svc).port
            lines.append(f'did="$did {svc}"; reload_svc {svc} {port} || {{ restore_reload; exit $?; }}')
    lines.append("exit 0")
    return "\n".join(lines)


def _restore_reload_fn(host: HostSettings, reload: list[str]) -> str:
    """Shell function `restore_reload`: a reload failed -> previous files back, then reload again every
    service reloaded so far (even one that took the new config: its files are the old ones again) and
    make it confirm the old config. Returns the script's exit code (30, 31 or 32)."""
    body = ["restore_reload() {", f"  echo {_MARK} restore", "  restore || return 31", "  rr=30"]
    for svc in reload:  # a service that did not answer at all gets a short wait: it has the old files now
        port = getattr(host, svc).port
        body.append(f'  case " $did " in *" {svc} "*) reload_svc {svc} {port} ${{SILENT:+{SILENT_WAIT_S}}} '
                    '|| rr=32;; esac')
    body += ["  return $rr", "}"]
    return "\n".join(body)


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


def reads(host: HostSettings, ctx: StepContext) -> Read:
    """The state of every target path, and web.yml's text: its hash is kept while the password matches it
    (render.web_password_hash), so the files are rendered once, after this read."""
    web = shlex.quote(layout.remote_path(host, "web.yml"))
    return Read({**_snippets(host, target_paths(host)), "web": f"cat -- {web} 2>/dev/null; true"},
                what="read config state")


def deploy_configs(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    """Make the server's configs match the rendered ones; see the module docstring for the order."""
    m = ctx.masker
    issued = certificates(host, ctx)  # before rendering: the secret files carry them
    state = probe_read(conn, reads(host, ctx), masker=m)
    current = render.current_web_hash(state["web"], host.web.username) if host.web.basic_auth else None
    rendered = render.render_host(ctx.inventory, host, ctx.secrets, web_hash=current)
    tgts = targets(host, rendered)
    changes = plan(tgts, parse_sha256(state["sha"]), parse_stat(state["stat"]))
    if not changes:
        return StepResult(STEP, "ok", "configs up to date", issued)
    running = reloadable(unit_state.parse(host, state["units"]))
    reload, idle = services_to_reload(changes, running)
    if ctx.dry_run:
        result = _dry_run(conn, changes, reload, idle, m)
        result.details[:0] = issued
        return result
    staged = {c.name: stage(conn, c.data, c.name) for c in changes if c.content_changed}
    auth = host.web.basic_auth and bool(reload)  # curl needs it only to confirm reloads
    script = apply_script(host, staged, changes, reload, auth, [t for t in tgts if t.secret])
    res = run(conn, script, check=False, masker=m, what="validate and activate configs",
              stdin=curl_config(host, ctx.secrets) if auth else None)
    sec = _sections(m(res.stdout + res.stderr))
    if "unstaged" in sec:  # the script removed the (then empty) staging dir
        forget_stage(conn)
    result = _outcome(res.exited, sec, changes, reload, idle, m)
    result.details[:0] = issued
    return result


def _dry_run(conn: HostSession, changes: list[Change], reload: list[str], idle: list[str],
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
        details.append(f"not running or restart pending, would only place files: {', '.join(idle)}")
    return StepResult(STEP, "changed", f"would update {len(changes)} file(s) (dry run)", details)


def reload_failure(text: str) -> str:
    """The script's one-line verdict on the reload that failed (the journal lines follow it)."""
    for line in text.splitlines():
        if ": reload rejected" in line or ": reload not confirmed" in line:
            return line.strip()
    return one_line(text)


def _lines(text: str, m: Masker) -> list[str]:
    return [m(ln) for ln in text.splitlines() if ln.strip()]


DISK_FULL = "No space left on device"  # strerror(ENOSPC) as cp and install print it (C locale)


def _outcome(rc: int, sec: dict[str, str], changes: list[Change], reload: list[str], idle: list[str],
             m: Masker) -> StepResult:
    """Exit code + the script's sections -> the step's verdict (see `apply_script` for the codes)."""
    names = ", ".join(c.label() for c in changes)
    if rc == 10:
        msg = sec.get("validate", "") or sec.get("", "")
        return StepResult(STEP, "failed", "validation failed on the server; nothing activated, nothing "
                          f"reloaded: {one_line(msg, m, limit=600)}", m(msg).splitlines())
    if rc in (30, 31, 32):
        why = m(reload_failure(sec.get("reload", "")))
        after = {
            30: "previous config restored and active again (reload confirmed)",
            31: "restoring the previous files FAILED, new files may still be in place: check the server",
            32: "previous files restored, but their reload was not confirmed either: check the server",
        }[rc]
        details = [ln for ln in _lines(sec.get("reload", ""), m) if ln.strip() != why]
        return StepResult(STEP, "failed", f"{why}; {after}; not kept: {names}",
                          details + _lines(sec.get("restore", ""), m))
    if rc in (20, 21):
        after = "the previous files are in place, nothing reloaded" if rc == 20 else \
            "restoring the previous files FAILED too: check the server"
        said = sec.get("activate") or sec.get("") or ""
        if DISK_FULL in said:  # staging may sit on another filesystem (a tmpfs /tmp): the copy is what fails
            after += "; the server's disk is full: free some space (df -h), then run again"
        return StepResult(STEP, "failed", f"could not activate configs: {one_line(said, m)}; {after}")
    if rc != 0:
        return StepResult(STEP, "failed", f"could not activate configs (exit {rc}): "
                          f"{one_line(sec.get('activate') or sec.get('') or '', m)}")
    details = [f"updated {names}"]
    details += sec.get("reload", "").splitlines()
    if idle:
        details.append(f"not running or restart pending (placed only; install-services loads them): "
                       f"{', '.join(idle)}")
    how = f"reloaded {', '.join(reload)}" if reload else "no reload needed"
    return StepResult(STEP, "changed", f"updated {len(changes)} file(s); {how}", details)
