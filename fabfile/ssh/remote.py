"""The one place that talks to a server: sudo commands, batched probes, staged uploads, checksums.

Why one module: every step must (a) read its state in ONE round trip, (b) never leak a secret into
an error, (c) replace files atomically. Doing that once here keeps the steps short and the SSH
round trips countable (`stats(conn)`; the bench reads it).

- `run(conn, script, ...)`      one shell command (sudo -n by default), output hidden, RemoteError on failure;
                                root scripts go to the connection's one long-lived root shell (`RootShell`)
- `probe(conn, {key: snippet})` several snippets in ONE command; `{key: Out}` (a str with `.rc`);
                                `stdin=` reaches the snippets as the file "$PROBE_STDIN"
- `read_ahead(conn, [Read, ...])` every step's read in ONE command before the first step; each step's own
                                probe of the same read is answered from it until something is applied
- `peek_ahead(conn, Read)`      what the read-ahead found for a later step, without taking it
- `read_after_change(conn, Read)` the next step's read, done at the end of any changing `run` (same command)
- `stage(conn, data)`           SFTP bytes into a private staging dir (mode 0600), returns the staged path
- `forget_stage(conn)`          a remote script removed the staging dir; the next `stage` makes a new one
- `install_snippet(src, dest, owner, group, mode)`  shell text: atomic install of a staged file
- `sha256_snippet(paths)` / `parse_sha256(out)`  checksums of remote files (in a probe)

Secrets never go on a command line: pass them with `stdin=` (e.g. `curl --config -`).
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets as _random
import select
import shlex
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from fabric import Connection
from invoke.exceptions import CommandTimedOut

from fabfile.masking import Masker

STAGE_ROOT = "/tmp"  # the staging dir is /tmp/rosey-stage.<random>, mode 0700, owned by the SSH user


class RemoteError(RuntimeError):
    """A remote command failed; the message is one line, secrets already masked."""


class ConnectionLost(RemoteError):
    """The SSH connection went away while a command ran: nothing more is sent to that host in this run."""


@dataclass
class Stats:
    """Per-connection counters: `commands` = SSH exec round trips, `sftp` = files transferred."""

    commands: int = 0
    sftp: int = 0
    bytes_uploaded: int = 0
    per_label: dict[str, int] = field(default_factory=dict)  # commands per step (see `label`)
    label: str = ""

    def count(self) -> None:
        self.commands += 1
        self.per_label[self.label] = self.per_label.get(self.label, 0) + 1


def _keep(conn: Connection, name: str, value: object) -> None:
    """Attach our state to the Connection object itself. A plain `conn.x = v` goes through invoke's
    DataProxy into the config, which hands back a copy on every read (counters were lost)."""
    object.__setattr__(conn, name, value)


def stats(conn: Connection) -> Stats:
    """The counters of this connection (created on first use)."""
    st = getattr(conn, "_rosey_stats", None)
    if st is None:
        st = Stats()
        _keep(conn, "_rosey_stats", st)
    return st


class Out(str):
    """A snippet's output (stdout+stderr, trailing newline stripped) that also carries its exit status."""

    rc: int
    seconds: float | None  # how long the snippet ran on the server (None: its shell cannot tell)

    def __new__(cls, text: str, rc: int, seconds: float | None = None) -> Out:
        obj = super().__new__(cls, text)
        obj.rc = rc
        obj.seconds = seconds
        return obj

    @property
    def ok(self) -> bool:
        return self.rc == 0


def one_line(text: str, masker: Masker | None = None, limit: int = 400) -> str:
    """Last meaningful lines of an error output as one line, masked and shortened."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    joined = " | ".join(lines[-3:]) or "no output"
    if masker:
        joined = masker(joined)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def wrap(script: str, sudo: bool = True) -> str:
    """The command line actually sent: `sudo -n bash -c '<script>'` (never prompts for a password)."""
    prefix = "sudo -n " if sudo else ""
    return f"{prefix}bash -c {shlex.quote(script)}"


# Two runs changing one server at once (two operators, or one host listed under two aliases) would trip
# over each other's staged files; every changing root script holds this lock while it runs, so they queue.
DEPLOY_LOCK = "/run/lock/rosey-monitoring.lock"

# A changing script must finish whatever happens to the SSH connection: half a change is worse than either
# end. So hangups are ignored and the script writes to files on the server (tmpfs /run: a full disk cannot
# stop that), which are handed back when it is done; a dropped connection leaves it running to its end,
# and the next run reads the result. Output is collected at the end anyway (nothing is streamed).
_DETACHED = """trap '' HUP PIPE
_o=$(mktemp /run/rosey-out.XXXXXX 2>/dev/null || mktemp)
_e=$(mktemp /run/rosey-err.XXXXXX 2>/dev/null || mktemp)
trap 'rm -f "$_o" "$_e"' EXIT
( {script}
) >"$_o" 2>"$_e"; _rc=$?
cat "$_o"; cat "$_e" >&2
{after}
exit $_rc"""


def locked(script: str, wait: float, after: str = "") -> str:
    """`script` run under the server's deploy lock, waiting at most `wait` seconds for it (exit 75 if not),
    detached from the connection's fate (see _DETACHED). `after`: shell run once the script succeeded
    (its output follows the script's; its exit status is not the command's)."""
    tail = f"if [ $_rc -eq 0 ]; then\n{after}\nfi" if after else ""
    return (f"exec 9>{DEPLOY_LOCK}; flock -w {int(wait)} 9 || {{ echo 'another deploy to this server holds "
            f"{DEPLOY_LOCK}; try again when it is done' >&2; exit 75; }}\n"
            + _DETACHED.replace("{script}", script).replace("{after}", tail))


# Nothing waits forever: a command that hangs (systemctl stuck, a dead mount) ends the step with a clear
# error after this long; the keepalive notices a silently dropped connection.
COMMAND_TIMEOUT = 600.0
LOST = -1  # Paramiko's exit status when the channel closed without one: the connection went away
PROBE_TIMEOUT = 300.0
KEEPALIVE = 15


def _open(conn: Connection) -> None:
    """Connect (if not yet) and turn the keepalive on, once per connection."""
    if not isinstance(conn, Connection) or getattr(conn, "_rosey_keepalive", False):
        return
    if not conn.is_connected:
        conn.open()
    conn.transport.set_keepalive(KEEPALIVE)
    _keep(conn, "_rosey_keepalive", True)


def run(conn: Connection, script: str, *, sudo: bool = True, what: str = "", masker: Masker | None = None,
        check: bool = True, stdin: str | bytes | None = None, timeout: float | None = COMMAND_TIMEOUT,
        read_only: bool = False):
    """Run one shell script on the server (one round trip); returns Fabric's Result.

    `check=True`: non-zero exit raises RemoteError("<what> failed on <host> (exit N): <stderr tail>").
    `stdin`: fed to the command's standard input (the way to hand over a password or a curl config).
    Unless `read_only` (a probe), the script may change the server: what `read_ahead` read is dropped.
    A command still running after `timeout` seconds raises RemoteError (the remote process is signalled).
    """
    stats(conn).count()
    if not read_only:
        _keep(conn, "_rosey_ahead", [])
    text = stdin.decode() if isinstance(stdin, bytes) else stdin
    follow = _follow(conn) if sudo and not read_only else None  # its snippets never read the run's stdin
    fmark = _FOLLOW_MARK.format(_random.token_hex(6))
    pmark = _MARK.format(_random.token_hex(6))
    if sudo and not read_only:
        after = f"echo; echo {fmark}\n( {probe_script(follow.snippets, pmark)}\n)" if follow else ""
        script = locked(script, (timeout or COMMAND_TIMEOUT) / 2, after)
    _open(conn)
    try:
        res = _root_shell_run(conn, script, text, timeout) if sudo else None
        if res is None:
            in_stream: io.IOBase | bool = False if text is None else io.StringIO(text)
            res = conn.run(wrap(script, sudo), hide=True, warn=True, pty=False, in_stream=in_stream,
                           timeout=timeout)
    except CommandTimedOut:
        msg = (f"{what or 'remote command'} on {conn.host} did not finish within {timeout:.0f}s "
               "(a command hung: is systemd or the disk stuck? is the server overloaded?)")
        raise RemoteError(msg) from None
    if res.exited == LOST:
        raise ConnectionLost(f"{what or 'remote command'} on {conn.host}: the SSH connection was lost before "
                             "it finished; the server carries the change through on its own (it ignores "
                             "hangups): run the command again to see where it stands")
    if follow is not None:
        _take_follow(conn, res, follow, fmark, pmark)
    if check and res.exited != 0:
        tail = one_line(res.stderr or res.stdout, masker)
        if res.exited == 1 and sudo and "sudo:" in (res.stderr or "") and "password" in (res.stderr or ""):
            tail += " (the SSH user needs passwordless sudo)"
        raise RemoteError(f"{what or 'remote command'} failed on {conn.host} (exit {res.exited}): {tail}")
    return res



# ---------------------------------------------------------------- the root shell

# Every root script of a run goes to one `sudo -n bash` per connection that stays open, each as its own
# subshell. Why: a new SSH channel, sudo's PAM session and a fresh bash cost 0.3-0.6 s per command on an
# emulated server (a round trip in the open shell: 0.002 s), and a deploy sends seven. Nothing else changes:
# each script still runs in its own process with its own `set -e`, traps, lock and exit status; its stdin is
# /dev/null or the text handed over (a quoted here-document: never on a command line).
@dataclass
class ShellResult:
    """What Fabric's Result gives the callers of `run`."""

    stdout: str
    stderr: str
    exited: int


class RootShell:
    """One long-lived root shell on one connection; `run` sends a script and reads up to its end marks."""

    def __init__(self, conn: Connection) -> None:
        self.channel = conn.client.get_transport().open_session()
        self.channel.exec_command("sudo -n bash")
        self.lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return not (self.channel.closed or self.channel.exit_status_ready() or self.channel.eof_received)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()

    def send(self, script: str, stdin: str | None, mark: str) -> None:
        end = f"__ROSEY_STDIN_{_random.token_hex(8)}__"
        feed = "</dev/null" if stdin is None else f"<<'{end}'\n{stdin.removesuffix(chr(10))}\n{end}"
        self.channel.sendall(f"(\n{script}\n) {feed}\nprintf '\\n%s %s\\n' {mark} \"$?\"; "
                             f"printf '\\n%s\\n' {mark} >&2\n".encode())

    def read(self, mark: str, timeout: float | None) -> ShellResult | None:
        """The script's output up to the marks; None if they did not come within `timeout` seconds."""
        ch, out, err = self.channel, bytearray(), bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        end_out, end_err = re.compile(rb"\n" + mark.encode() + rb" (\d+)\n"), b"\n" + mark.encode() + b"\n"
        while True:
            while ch.recv_ready():
                out += ch.recv(65536)
            while ch.recv_stderr_ready():
                err += ch.recv_stderr(65536)
            m = end_out.search(out)
            if m and err.endswith(end_err):
                return ShellResult(out[:m.start()].decode("utf-8", "replace"),
                                   err[:-len(end_err)].decode("utf-8", "replace"), int(m.group(1)))
            if not self.alive and not ch.recv_ready() and not ch.recv_stderr_ready():
                # the shell ended without the marks: sudo refused (its exit status), or the connection went
                ch.status_event.wait(5)
                status = ch.exit_status if ch.exit_status_ready() else LOST
                return ShellResult(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), status)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            select.select([ch], [], [], 1.0 if left is None else min(left, 1.0))


def _root_shell_run(conn: Connection, script: str, stdin: str | None, timeout: float | None
                    ) -> ShellResult | None:
    """`script` in the connection's root shell (opened on first use); None when it cannot be used (a
    test's stand-in connection, or the shell busy with another thread's command): then `run` execs it."""
    if not isinstance(conn, Connection) or conn.transport is None:
        return None
    shell: RootShell | None = getattr(conn, "_rosey_shell", None)
    if shell is not None and not shell.alive:
        shell.close()
        shell = None
    if shell is None:
        try:
            shell = RootShell(conn)
        except Exception:  # noqa: BLE001 - no new channel: the exec path says why, in its own words
            return None
        _keep(conn, "_rosey_shell", shell)
    if not shell.lock.acquire(blocking=False):
        return None
    try:
        mark = f"__ROSEY_END_{_random.token_hex(8)}__"
        try:
            shell.send(script, stdin, mark)
        except Exception:  # noqa: BLE001 - nothing ran: drop the shell, the exec path tries (and reports)
            shell.close()
            _keep(conn, "_rosey_shell", None)
            return None
        res = shell.read(mark, timeout)
        if res is None:  # the script hangs: this shell is done with (its end is never waited for again)
            shell.close()
            _keep(conn, "_rosey_shell", None)
            raise CommandTimedOut(None, timeout)
        if res.exited == LOST or not shell.alive:
            shell.close()
            _keep(conn, "_rosey_shell", None)
        return res
    finally:
        shell.lock.release()


_MARK = "__ROSEY_PROBE_{}__"
_FOLLOW_MARK = "__ROSEY_READ_AFTER_{}__"


def read_after_change(conn: Connection, read: Read | None) -> None:
    """The read the next step will ask for first. Any changing `run` until this is set again ends with it, in
    the same command, and the next step's `probe` of it is answered from there (once), so a step that
    changed something costs the next step no round trip of its own. Not done when the change failed, or for
    a read that needs stdin (the run's own input is its script's) or waits (`Read.follows_change`)."""
    _keep(conn, "_rosey_follow", read)


def _follow(conn: Connection) -> Read | None:
    read: Read | None = getattr(conn, "_rosey_follow", None)
    if read is None or not read.sudo or read.stdin is not None or not read.follows_change:
        return None
    return read


def _take_follow(conn: Connection, res, read: Read, fmark: str, pmark: str) -> None:
    """Split the read that followed the change off the run's stdout and keep it for the next step."""
    cut = res.stdout.find(f"\n{fmark}\n")
    if cut < 0:  # the change failed (or the connection dropped): the next step reads for itself
        return
    text = res.stdout[cut + len(fmark) + 2:]
    res.stdout = res.stdout[:cut]
    try:
        outs = parse_probe(text, read.snippets.keys(), pmark)
    except RemoteError:
        return
    _keep(conn, "_rosey_ahead", [(read, outs)])


# `version_snippet(path)`: a binary's `--version` first line. Under emulation a Go binary takes seconds to
# start, and every run asks for four of them (install for the release's binaries, verify for the stable links
# to them), so:
# - install keeps what a binary it unpacked said in a mark file next to it (`version_mark_snippet`), with the
#   binary's identity (device, inode, size, and mtime and ctime in nanoseconds: any write, chmod or chown
#   changes the ctime, and nobody can set it back); a read whose binary still has that identity answers from
#   the mark, any other runs the binary, as git's index trusts a file's stat data;
# - inside one probe each real binary runs at most once.
_ID_FORMAT = "%d:%i:%s:%.9Y:%.9Z"
_IDENTITY = f"stat -L -c {_ID_FORMAT} --"
# Every binary of a probe at once, before its snippets: one `realpath` and one `stat` for all of them, the
# marks read with bash's own `read`, so a read with everything installed starts two processes for its
# versions instead of four per binary (each start costs 0.05-0.1 s on an emulated VM).
_VERSION_FN = """rosey_versions_init() {
  declare -gA RV_REAL=() RV_ID=() RV_VER=()
  local p real n id ver mark i=0 reals=()
  mapfile -t reals < <(realpath -m -- "$@")
  for p in "$@"; do RV_REAL[$p]=${reals[$i]}; i=$((i + 1)); done
  while read -r n id; do RV_ID[$n]=$id; done < <(stat -L -c '%n ID_FORMAT' -- "${reals[@]}" 2>/dev/null)
  for real in "${reals[@]}"; do
    [ -z "${RV_VER[$real]+x}" ] && [ -x "$real" ] || continue
    mark="${real%/*}/.rosey-version.${real##*/}" id="" ver=""
    { IFS= read -r id; IFS= read -r ver; } 2>/dev/null < "$mark"
    if [ -n "$id" ] && [ "$id" = "${RV_ID[$real]:-}" ]; then RV_VER[$real]=$ver
    else RV_VER[$real]=$("$real" --version 2>&1 | head -n 1); fi
  done
}
rosey_version() {
  local real=${RV_REAL[$1]:-}
  if [ -n "$real" ] && [ -n "${RV_VER[$real]+x}" ]; then printf '%s\n' "${RV_VER[$real]}"; return; fi
  "$1" --version 2>&1 | head -n 1
}""".replace("ID_FORMAT", _ID_FORMAT)
_VERSION_CALL = re.compile(r"rosey_version ('[^']*'|[^\s;|&)]+)")


def version_snippet(path: str) -> str:
    return f"rosey_version {shlex.quote(path)}"


def version_mark_snippet(binary: str, said: str) -> str:
    """Shell recording `said` (a shell word, e.g. "$v") as `binary`'s `--version` line (version_snippet)."""
    real, mark = shlex.quote(binary), shlex.quote(f"{binary.rsplit('/', 1)[0]}/.rosey-version."
                                                   f"{binary.rsplit('/', 1)[1]}")
    return f'{{ {_IDENTITY} {real}; printf "%s\\n" "{said}"; }} > {mark}'


def probe_script(snippets: Mapping[str, str], marker: str) -> str:
    """Shell text that runs each snippet in its own subshell (stdin closed, stderr merged) and
    follows its output with a marker line carrying the key and the exit status.

    The snippets run at the same time (they only read), each into its own pipe, and one `cat` prints the
    pipes in the snippets' order, so a read takes about as long as its slowest part, not the sum of its
    parts: a part that waits (on a service's HTTP answer) or starts programs overlaps the others, on every
    core the server has. Pipes, not files: nothing to clean up, and one part's output never mixes with
    another's.
    """
    parts = ["export LC_ALL=C"]
    binaries = list(dict.fromkeys(shlex.split(m)[0] for s in snippets.values()
                                  for m in _VERSION_CALL.findall(s)))
    if binaries:
        parts += [_VERSION_FN, "rosey_versions_init " + " ".join(shlex.quote(b) for b in binaries)]
    jobs = []
    for key, snippet in snippets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise ValueError(f"probe key must be a plain name, got {key!r}")
        # $EPOCHREALTIME (bash 5): the snippet's own time, free (no process), so a slow read names its parts
        jobs.append(f"<(__t=$EPOCHREALTIME; ( {snippet}\n) </dev/null 2>&1; "
                    f"printf '\\n{marker} %s %d %s %s\\n' {key} $? \"$__t\" \"$EPOCHREALTIME\")")
    if jobs:
        parts.append("cat " + " \\\n  ".join(jobs))
    return "\n".join(parts)


def _elapsed(start: str | None, end: str | None) -> float | None:
    try:
        return round(float((end or "").replace(",", ".")) - float((start or "").replace(",", ".")), 3)
    except ValueError:
        return None


def parse_probe(stdout: str, keys: Iterable[str], marker: str) -> dict[str, Out]:
    out: dict[str, Out] = {}
    buf: list[str] = []
    pat = re.compile(rf"^{re.escape(marker)} (\S+) (\d+)(?: (\S*) (\S*))?$")
    for line in stdout.split("\n"):
        m = pat.match(line)
        if m:
            text = "\n".join(buf)
            out[m.group(1)] = Out(text[:-1] if text.endswith("\n") else text, int(m.group(2)),
                                  _elapsed(m.group(3), m.group(4)))
            buf = []
        else:
            buf.append(line)
    missing = [k for k in keys if k not in out]
    if missing:
        raise RemoteError(f"probe output incomplete (no answer for {', '.join(missing)})")
    return out


# `probe(stdin=...)`: the text is saved to a private temp file (0600, removed on exit) named by this variable
PROBE_STDIN = "PROBE_STDIN"
_STDIN_PRELUDE = f'umask 077; {PROBE_STDIN}=$(mktemp /tmp/rosey-probe.XXXXXX); cat > "${PROBE_STDIN}"\n'
# whatever the probe created goes when it ends (set first, so an early exit cleans up too)
_CLEANUP = f"trap 'rm -rf ${{{PROBE_STDIN}:+\"${PROBE_STDIN}\"}}' EXIT\n"


def probe(conn: Connection, snippets: Mapping[str, str], *, sudo: bool = True,
          masker: Masker | None = None, what: str = "probe", stdin: str | None = None) -> dict[str, Out]:
    """Run several read-only snippets in ONE SSH command; `{key: Out}` with each one's output and rc.

    A failing snippet does not stop the others (its `.rc` says so); only the transport failing raises.
    `stdin` (e.g. a curl config with a password): kept in a private temp file the snippets read as
    `"$PROBE_STDIN"` (`curl -K "$PROBE_STDIN"`) — each snippet's own stdin stays closed.
    """
    if not snippets:
        return {}
    ahead = _take_ahead(conn, Read(snippets, stdin, sudo))
    if ahead is not None:
        return ahead
    marker = _MARK.format(_random.token_hex(6))
    script = probe_script(snippets, marker)
    if stdin is not None:
        script = _STDIN_PRELUDE + script
    script = _CLEANUP + script
    res = run(conn, script, sudo=sudo, what=what, masker=masker, check=False, stdin=stdin, read_only=True,
              timeout=PROBE_TIMEOUT)
    if res.exited != 0 and marker not in res.stdout:
        raise RemoteError(f"{what} failed on {conn.host} (exit {res.exited}): "
                          f"{one_line(res.stderr or res.stdout, masker)}")
    return parse_probe(res.stdout, snippets.keys(), marker)


@dataclass(frozen=True)
class Read:
    """One step's read of the server, as `probe` takes it, so the runner can read all steps' state at once."""

    snippets: Mapping[str, str]
    stdin: str | None = None
    sudo: bool = True
    what: str = "probe"
    # False: never read at the end of an earlier step's change (a read that may wait for the server to
    # settle: its wait belongs in its own step's time)
    follows_change: bool = True


def probe_read(conn: Connection, read: Read, masker: Masker | None = None) -> dict[str, Out]:
    return probe(conn, read.snippets, sudo=read.sudo, masker=masker, what=read.what, stdin=read.stdin)


def read_ahead(conn: Connection, reads: Sequence[Read], masker: Masker | None = None) -> int:
    """Run several steps' reads as ONE probe; each step's own `probe` of the same read is then answered
    from it, once, as long as nothing was applied on this connection since (any non-probe `run` drops it:
    from then on every read goes to the server). Returns how many reads it answered ahead.

    Why: a run where nothing needs doing (the common re-run) costs one round trip instead of one per step.
    A read whose stdin differs from an earlier read's, or without sudo, is left to its step.
    """
    kept: list[tuple[int, Read]] = []
    stdin: str | None = None
    for i, r in enumerate(reads):
        if not r.sudo or (r.stdin is not None and stdin is not None and r.stdin != stdin):
            continue
        stdin = r.stdin if r.stdin is not None else stdin
        kept.append((i, r))
    if len(kept) < 2:
        return 0
    # the same snippet asked by two steps (verify re-reads the firewall) runs once
    first: dict[str, str] = {}
    for i, r in kept:
        for key, snippet in r.snippets.items():
            first.setdefault(snippet, f"r{i}.{key}")
    outs = probe(conn, {k: snippet for snippet, k in first.items()}, masker=masker, what="read host state",
                 stdin=stdin)
    _keep(conn, "_rosey_ahead", [(r, {key: outs[first[snippet]] for key, snippet in r.snippets.items()})
                                 for _, r in kept])
    return len(kept)


def _ahead_index(conn: Connection, read: Read) -> int | None:
    ahead: list = getattr(conn, "_rosey_ahead", None) or []
    for n, (r, _) in enumerate(ahead):
        if dict(r.snippets) == dict(read.snippets) and r.stdin == read.stdin and r.sudo == read.sudo:
            return n
    return None


def peek_ahead(conn: Connection, read: Read) -> dict[str, Out] | None:
    """What the read-ahead answered for `read` (None: it did not, or a change since has dropped it), left
    for the step that owns the read: lets a step see what a later step of this run is about to do."""
    n = _ahead_index(conn, read)
    return None if n is None else conn._rosey_ahead[n][1]


def _take_ahead(conn: Connection, read: Read) -> dict[str, Out] | None:
    n = _ahead_index(conn, read)  # once: a step that reads again (waiting for something) must see the server
    return None if n is None else conn._rosey_ahead.pop(n)[1]


# ---------------------------------------------------------------- uploads


def _stage_dir(conn: Connection, sftp) -> str:
    d = getattr(conn, "_rosey_stage", None)
    if d is None:
        d = f"{STAGE_ROOT}/rosey-stage.{_random.token_hex(8)}"
        sftp.mkdir(d, 0o700)
        sftp.chmod(d, 0o700)  # mkdir's mode is subject to the umask
        _keep(conn, "_rosey_stage", d)
    return d


def stage(conn: Connection, data: bytes, name: str = "file") -> str:
    """Upload bytes over SFTP to a fresh path in this connection's private staging dir (mode 0600).

    The staged file belongs to the SSH user; `install_snippet` moves it into place as root.
    """
    st = stats(conn)
    with _upload_errors(conn, name):
        sftp = conn.sftp()
        d = _stage_dir(conn, sftp)
        path = f"{d}/{_random.token_hex(4)}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        with sftp.open(path, "wb") as f:
            f.chmod(0o600)  # before any byte is written: secret files are never world-readable
            f.set_pipelined(True)
            f.write(data)
    st.sftp += 1
    st.bytes_uploaded += len(data)
    return path


def stage_file(conn: Connection, local_path: str, name: str) -> str:
    """Like `stage` but streams a local file (archives are too big to hold twice in memory)."""
    import os

    st = stats(conn)
    with _upload_errors(conn, name):
        sftp = conn.sftp()
        d = _stage_dir(conn, sftp)
        path = f"{d}/{_random.token_hex(4)}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        sftp.put(local_path, path)
        sftp.chmod(path, 0o600)
    st.sftp += 1
    st.bytes_uploaded += os.path.getsize(local_path)
    return path


LOW_SPACE_KB = 1024  # below this much free in the staging dir, a failed upload is put down to the disk


@contextlib.contextmanager
def _upload_errors(conn: Connection, name: str) -> Iterator[None]:
    """An SFTP failure as one line that says why. SFTP reports a full disk only as "Failure", so the free
    space of the staging dir is asked for then (one more command, only on this path)."""
    try:
        yield
    except OSError as e:
        where = f"{conn.host}:{STAGE_ROOT}"
        why = f"uploading {name} to {where} failed ({e.strerror or e or type(e).__name__})"
        free = None
        with contextlib.suppress(Exception):
            df = run(conn, f"df -Pk {STAGE_ROOT} | awk 'NR==2 {{print $4}}'", sudo=False, check=False,
                     read_only=True, timeout=30)
            free = int(df.stdout.strip())
        if free is not None and free < LOW_SPACE_KB:
            why += (f": no space left on the server ({STAGE_ROOT} has {free} KiB free); free some space "
                    "(df -h), then run again. Nothing was changed")
        raise RemoteError(why) from None


def install_snippet(src: str, dest: str, owner: str = "root", group: str = "root", mode: int = 0o644,
                    on_fail: str = "exit 1", moved: str = "") -> str:
    """Shell text: copy staged `src` next to `dest` with owner/group/mode, then rename over `dest`.

    rename(2) in the same directory is atomic: readers see the old file or the new one, never half. A copy
    that fails (a full disk) leaves no half-written temp file behind. `moved`: shell run right after the
    rename, so a caller knows which files really changed even if a later command fails.
    """
    q, tmp = shlex.quote, f"{dest}.rosey-new"
    after = f"{moved} && " if moved else ""
    return (f"{{ install -o {q(owner)} -g {q(group)} -m {mode:04o} {q(src)} {q(tmp)} && "
            f"mv -fT {q(tmp)} {q(dest)} && {after}rm -f {q(src)}; }} || {{ rm -f -- {q(tmp)}; {on_fail}; }}")


def forget_stage(conn: Connection) -> None:
    """A remote script removed this connection's staging dir: the next `stage` makes a new one."""
    _keep(conn, "_rosey_stage", None)


def cleanup(conn: Connection) -> None:
    """Remove this connection's staging dir (if any). Costs one command; call once per host at the end."""
    d = getattr(conn, "_rosey_stage", None)
    if d:
        run(conn, f"rm -rf {shlex.quote(d)}", sudo=True, what="clean staging dir", check=False)
        _keep(conn, "_rosey_stage", None)


# ---------------------------------------------------------------- checksums


def sha256_snippet(paths: Iterable[str]) -> str:
    """Snippet for `probe`: sha256 of each path; missing files are simply absent from the answer."""
    return "sha256sum -- " + " ".join(shlex.quote(p) for p in paths) + " 2>/dev/null; true"


def parse_sha256(out: str) -> dict[str, str]:
    """`sha256sum` output -> {path: hex}."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^\\?([0-9a-f]{64}) [ *](.+)$", line)
        if m:
            res[m.group(2)] = m.group(1)
    return res


# ---------------------------------------------------------------- connection errors


def describe_connect_error(exc: BaseException, host_name: str, address: str, port: int) -> str | None:
    """A one-line, actionable message if `exc` means "could not reach / log in to the server"."""
    import paramiko

    where = f"cannot connect to host {host_name} ({address}:{port})"
    hint = "check ssh.address/ssh.port in hosts.yml or that the server is up"
    if isinstance(exc, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return f"{where}: connection refused — {hint}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{where}: timed out — {hint}"
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host name — check address in hosts.yml"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"{where}: SSH login refused for this user/key — check ssh.user and ssh.key in hosts.yml"
    if isinstance(exc, paramiko.SSHException):
        return f"{where}: SSH error: {exc}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{where}: {exc.strerror or exc} — {hint}"
    return None
