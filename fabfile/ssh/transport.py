"""How a command reaches a server: one shell script per round trip, as root through a long-lived root shell,
under the deploy lock when it changes things, with a timeout, and a one-line masked error when it fails.

- `run(conn, script, ...)`  one shell command (sudo -n by default), output hidden, RemoteError on failure;
                            root scripts go to the connection's one long-lived root shell (`RootShell`)
- `stats(conn)`             the round trips counted per connection (the bench and the profile read it)
- `locked(script, wait)`    a changing script under the server's deploy lock, detached from the connection

Secrets never go on a command line: pass them with `stdin=` (e.g. `curl --config -`). Reading several things
in one command is `probe.py`; uploads are `stage.py`.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fabric import Connection
from invoke.exceptions import CommandTimedOut

from fabfile.masking import Masker
from fabfile.ssh.session import HostSession, Stats, resolve, session_of


class RemoteError(RuntimeError):
    """A remote command failed; the message is one line, secrets already masked."""


class ConnectionLost(RemoteError):
    """The SSH connection went away while a command ran: nothing more is sent to that host in this run."""


def stats(conn: HostSession | Connection) -> Stats:
    """The counters of this host's session (see session.Stats)."""
    return resolve(conn)[1].stats


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
KEEPALIVE = 15


# Paramiko waits up to an hour for the server to answer a new channel; a server that has not answered in a
# minute is not going to (a stuck sshd, a dropped link), and the command then fails instead of hanging.
CHANNEL_OPEN_TIMEOUT = 60.0


def _open(conn: Connection) -> None:
    """Connect (if not yet), turn the keepalive on and bound the channel-open wait, once per transport;
    one thread at a time (a second thread waits for the first one's connection instead of making its own).
    The state is the connection's own (`session_of`), whichever run's session the callers hold."""
    if not isinstance(conn, Connection):
        return
    own = session_of(conn)
    if conn.is_connected and own.set_up is conn.transport:
        return
    with own.opening:
        if not conn.is_connected:
            conn.open()
        if own.set_up is not conn.transport:
            conn.transport.set_keepalive(KEEPALIVE)
            conn.transport.channel_timeout = CHANNEL_OPEN_TIMEOUT
            own.set_up = conn.transport


def ensure_open(conn: HostSession | Connection) -> None:
    """The connection open and set up as `run` uses it (for a tunnel opened before any command)."""
    c = resolve(conn)[0]
    if isinstance(c, Connection):
        _open(c)
    else:
        c.open()


_FOLLOW_MARK = "__ROSEY_READ_AFTER_{}__"


class AfterChange(Protocol):
    """A read sent at the end of every changing root script, in the same command (probe.read_after_change)."""

    def prepare(self, s: HostSession) -> tuple[str, Callable[[str], None]]:
        """Its shell text, and what to do with that text's output once the change succeeded."""
        ...


def run(conn: HostSession | Connection, script: str, *, sudo: bool = True, what: str = "",
        masker: Masker | None = None, check: bool = True, stdin: str | bytes | None = None,
        timeout: float | None = COMMAND_TIMEOUT, read_only: bool = False):
    """Run one shell script on the server (one round trip); returns Fabric's Result.

    `check=True`: non-zero exit raises RemoteError("<what> failed on <host> (exit N): <stderr tail>").
    `stdin`: fed to the command's standard input (the way to hand over a password or a curl config).
    Unless `read_only` (a probe), the script may change the server: what `read_ahead` read is dropped.
    A command still running after `timeout` seconds raises RemoteError (the remote process is signalled).
    """
    conn, s = resolve(conn)
    s.stats.count()
    if not read_only:
        s.ahead = []
    text = stdin.decode() if isinstance(stdin, bytes) else stdin
    after_change = s.follow if sudo and not read_only else None  # it never reads the run's stdin
    follow = after_change.prepare(s) if after_change is not None else None  # (its shell, its taker)
    fmark = _FOLLOW_MARK.format(_random.token_hex(6))
    if sudo and not read_only:
        after = f"echo; echo {fmark}\n( {follow[0]}\n)" if follow else ""
        script = locked(script, (timeout or COMMAND_TIMEOUT) / 2, after)
    _open(conn)
    try:
        res = _root_shell_run(conn, s, script, text, timeout) if sudo else None
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
        _take_follow(res, follow[1], fmark)
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
        end_out, end_err = re.compile(rb"\n" + mark.encode() + rb" ([0-9]+)\n"), b"\n" + mark.encode() + b"\n"
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


def _root_shell_run(conn: Connection, s: HostSession, script: str, stdin: str | None, timeout: float | None
                    ) -> ShellResult | None:
    """`script` in the connection's root shell (opened on first use); None when it cannot be used (a
    test's stand-in connection, or the shell busy with another thread's command): then `run` execs it."""
    if not isinstance(conn, Connection) or conn.transport is None:
        return None
    with session_of(conn).opening:  # one root shell per session, whichever threads ask at once
        shell = s.shell
        if shell is not None and not shell.alive:
            shell.close()
            shell = None
        if shell is None:
            try:
                shell = RootShell(conn)
            except Exception:  # noqa: BLE001 - no new channel: the exec path says why, in its own words
                return None
            s.shell = shell
    if not shell.lock.acquire(blocking=False):
        return None
    try:
        mark = f"__ROSEY_END_{_random.token_hex(8)}__"
        try:
            shell.send(script, stdin, mark)
        except Exception:  # noqa: BLE001 - nothing ran: drop the shell, the exec path tries (and reports)
            shell.close()
            s.shell = None
            return None
        res = shell.read(mark, timeout)
        if res is None:  # the script hangs: this shell is done with (its end is never waited for again)
            shell.close()
            s.shell = None
            raise CommandTimedOut(None, timeout)
        if res.exited == LOST or not shell.alive:
            shell.close()
            s.shell = None
        return res
    finally:
        shell.lock.release()

def _take_follow(res, take: Callable[[str], None], fmark: str) -> None:
    """Split the read that followed the change off the run's stdout and hand it over for the next step."""
    cut = res.stdout.find(f"\n{fmark}\n")
    if cut < 0:  # the change failed (or the connection dropped): the next step reads for itself
        return
    text = res.stdout[cut + len(fmark) + 2:]
    res.stdout = res.stdout[:cut]
    take(text)


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
