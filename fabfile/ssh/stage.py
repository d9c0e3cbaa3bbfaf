"""Uploads: bytes over SFTP into a private staging dir, then installed into place atomically by a root script.

- `stage(conn, data)`           SFTP bytes into a private staging dir (mode 0600), returns the staged path
- `stage_file(conn, path, name)` the same, streamed from a local file
- `forget_stage(conn)`          a remote script removed the staging dir; the next `stage` makes a new one
- `install_snippet(src, dest, owner, group, mode)`  shell text: atomic install of a staged file
- `cleanup(conn)`               remove the staging dir at the end of a run
"""

from __future__ import annotations

import contextlib
import errno
import re
import secrets as _random
import shlex
import time
from collections.abc import Iterator

from fabric import Connection

from fabfile.ssh.session import HostSession, resolve
from fabfile.ssh.transport import RemoteError, run

STAGE_ROOT = "/tmp"  # the staging dir is /tmp/rosey-stage.<random>, mode 0700, owned by the SSH user
# Every upload is bounded: overall (a crawling link) and per SFTP request (a link that stopped answering,
# which paramiko would otherwise wait on forever). Past either, one line says so; nothing was installed.
UPLOAD_SECONDS = 900
REQUEST_SECONDS = 60
CHUNK = 1 << 20
_now = time.monotonic  # the clock of the limit (tests step it)


class _Deadline:
    """Raises TimeoutError (an OSError, so `_upload_errors` makes it the one line) once `seconds` passed;
    `check` fits paramiko's put() callback (bytes so far, total)."""

    def __init__(self, seconds: float = UPLOAD_SECONDS) -> None:
        self.seconds, self.end = seconds, _now() + seconds

    def check(self, *_progress: int) -> None:
        if _now() > self.end:
            raise TimeoutError(errno.ETIMEDOUT, f"it took longer than {self.seconds:.0f} s, the limit for "
                               "one upload; check the network to the server and run again; nothing was "
                               "installed")


def _bounded(sftp):  # noqa: ANN001, ANN202
    """The SFTP client with a per-request timeout on its channel (a real paramiko client has one)."""
    with contextlib.suppress(AttributeError):
        sftp.get_channel().settimeout(REQUEST_SECONDS)
    return sftp


def _stage_dir(session: HostSession, sftp) -> str:
    d = session.stage_dir
    if d is None:
        d = f"{STAGE_ROOT}/rosey-stage.{_random.token_hex(8)}"
        sftp.mkdir(d, 0o700)
        sftp.chmod(d, 0o700)  # mkdir's mode is subject to the umask
        session.stage_dir = d
    return d


def stage(conn: HostSession | Connection, data: bytes, name: str = "file") -> str:
    """Upload bytes over SFTP to a fresh path in this connection's private staging dir (mode 0600).

    The staged file belongs to the SSH user; `install_snippet` moves it into place as root.
    """
    bare, session = resolve(conn)
    st = session.stats
    with _upload_errors(conn, name):
        deadline = _Deadline()
        sftp = _bounded(bare.sftp())
        d = _stage_dir(session, sftp)
        path = f"{d}/{_random.token_hex(4)}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        with sftp.open(path, "wb") as f:
            f.chmod(0o600)  # before any byte is written: secret files are never world-readable
            f.set_pipelined(True)
            for at in range(0, len(data), CHUNK):
                f.write(data[at:at + CHUNK])
                deadline.check()
    st.sftp += 1
    st.bytes_uploaded += len(data)
    return path


def stage_file(conn: HostSession | Connection, local_path: str, name: str) -> str:
    """Like `stage` but streams a local file (archives are too big to hold twice in memory)."""
    import os

    bare, session = resolve(conn)
    st = session.stats
    with _upload_errors(conn, name):
        deadline = _Deadline()
        sftp = _bounded(bare.sftp())
        d = _stage_dir(session, sftp)
        path = f"{d}/{_random.token_hex(4)}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        sftp.put(local_path, path, callback=deadline.check)
        sftp.chmod(path, 0o600)
    st.sftp += 1
    st.bytes_uploaded += os.path.getsize(local_path)
    return path


LOW_SPACE_KB = 1024  # below this much free in the staging dir, a failed upload is put down to the disk


@contextlib.contextmanager
def _upload_errors(conn: HostSession | Connection, name: str) -> Iterator[None]:
    """An SFTP failure as one line that says why. SFTP reports a full disk only as "Failure", so the free
    space of the staging dir is asked for then (one more command, only on this path)."""
    try:
        yield
    except OSError as e:
        where = f"{resolve(conn)[0].host}:{STAGE_ROOT}"
        if isinstance(e, TimeoutError) and not e.strerror:  # the channel's per-request timeout
            e = TimeoutError(errno.ETIMEDOUT, f"the server did not answer for {REQUEST_SECONDS} s; check the "
                             "network to it and run again")
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


def forget_stage(conn: HostSession | Connection) -> None:
    """A remote script removed this connection's staging dir: the next `stage` makes a new one."""
    resolve(conn)[1].stage_dir = None


def cleanup(conn: HostSession | Connection) -> None:
    """Remove this connection's staging dir (if any). Costs one command; call once per host at the end."""
    session = resolve(conn)[1]
    d = session.stage_dir
    if d:
        run(conn, f"rm -rf {shlex.quote(d)}", sudo=True, what="clean staging dir", check=False)
        session.stage_dir = None
