"""One host's session: its connection and everything a run keeps about that host, in one visible place.

Why not attributes on Fabric's Connection: state hidden there (counters, the root shell, read-ahead answers,
the staging dir) was invisible to readers and to type checkers, and one step could peek at another's
answers through it. A `HostSession` holds it all:

- the connection, the host's settings, its secrets and the masker made from them;
- `stats` (round trips per step), the long-lived root shell, the transport set up (keepalive, timeouts);
- `ahead` (reads answered before their step asked), `follow` (the read sent after each change);
- `stage_dir` (this run's private upload dir on the server).

`open_session(inventory, host, ...)` is the one way a command opens a host (see there).

`transport`, `probe` and `stage` take a session, or a bare connection (a test's stand-in, the drill, the
bench): then `session_of` finds that connection's session by identity (Fabric's Connection compares equal
for the same user@host:port, so two connections to one server must not share a root shell or counters),
and forgets it when the connection is collected.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fabfile.alerting.api import Apis, open_apis
from fabfile.config.inventory import Inventory
from fabfile.config.secrets import load_secrets
from fabfile.config.settings import HostSettings
from fabfile.masking import Masker
from fabfile.ssh.connection import KeyFileError, connect

if TYPE_CHECKING:
    from fabfile.ssh.probe import Out, Read
    from fabfile.ssh.transport import AfterChange, RootShell


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


@dataclass(eq=False)
class HostSession:
    """One host's connection and the run's state for it (see the module docstring).

    `conn` is None only for a session `session_of` keeps for a bare connection: it must not hold that
    connection alive, and its callers pass the connection themselves.
    """

    conn: Any  # a fabric Connection, or a test's stand-in with the same `run`
    host: HostSettings | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    masker: Masker = field(default_factory=Masker)
    stats: Stats = field(default_factory=Stats)
    shell: RootShell | None = None  # the one `sudo -n bash` root scripts go to (transport.RootShell)
    set_up: object = None  # (a bare connection's session) its transport, once set up (transport._open)
    ahead: list[tuple[Read, dict[str, Out]]] = field(default_factory=list)  # answered before asked
    follow: AfterChange | None = None  # the next step's read, sent at the end of each change
    stage_dir: str | None = None  # /tmp/rosey-stage.<random> once something was staged
    apis: Apis | None = None  # the Prometheus and Alertmanager clients, when opened with `apis=True`
    # (a bare connection's session) held while the connection opens and its root shells are made: two
    # threads (the drill watches while it acts) must not both open one lazy connection (the second handshake
    # replaces the first transport, and a channel asked for on the half-made one is never answered)
    opening: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def close(self) -> None:
        """Close the connection (its root shell and tunnels go with it)."""
        if self.conn is not None:
            self.conn.close()


_by_id: dict[int, tuple[weakref.ref, HostSession]] = {}
_lock = threading.RLock()  # a connection collected while the lock is held calls `forget` on this thread


def session_of(conn: Any) -> HostSession:
    """The session kept for a bare connection, made on first use; by identity, dropped with `conn`."""
    key = id(conn)
    with _lock:
        entry = _by_id.get(key)
        if entry is not None and entry[0]() is conn:
            return entry[1]
        session = HostSession(None)

        def forget(ref: weakref.ref, key: int = key) -> None:
            with _lock:
                if key in _by_id and _by_id[key][0] is ref:
                    del _by_id[key]

        _by_id[key] = (weakref.ref(conn, forget), session)
        return session


def resolve(target: Any) -> tuple[Any, HostSession]:
    """(the connection to send on, the session keeping its state) for a session or a bare connection."""
    if isinstance(target, HostSession):
        return target.conn, target
    return target, session_of(target)


def host_secrets(inventory: Inventory, host: HostSettings, *, also_mask: Iterable[str] = ()
                 ) -> tuple[dict[str, str], Masker]:
    """A host's secrets (a missing one raises here, before anything is contacted) and the masker hiding them,
    plus `also_mask` (another host's secrets, when one message may name both: a cluster peer)."""
    secrets = load_secrets(inventory, host)
    return secrets, Masker([*secrets.values(), *also_mask])


def new_session(host: HostSettings, secrets: dict[str, str], masker: Masker,
                connector: Callable[[HostSettings], Any] | None = None) -> HostSession:
    """A session its caller closes: for a holder that drops and reopens its connection (the drill's target,
    which reconnects after a lost connection). The connection is lazy: nothing is contacted yet."""
    return HostSession((connector or connect)(host), host, secrets, masker)


class HostUnreachable(RuntimeError):
    """`open_session` could not reach the host (SSH, host key, tunnels); the message is one masked line."""


@contextlib.contextmanager
def open_session(inventory: Inventory, host: HostSettings, *, secrets: dict[str, str] | None = None,
                 masker: Masker | None = None, apis: bool = False, api_timeout: float | None = None,
                 connector: Callable[[HostSettings], Any] | None = None) -> Iterator[HostSession]:
    """One host, opened the one way every command does it; everything opened is closed when the block ends.

    1. its secrets (unless given): a missing one raises here, before anything is contacted (bad input);
    2. the masker made from them (unless given), so every message about this host hides them;
    3. the SSH connection (`connector`, by default `connection.connect`, looked up when called: the host
       key is checked before anything is sent); it is lazy, so without `apis` the first command connects
       and reports its own failure;
    4. with `apis`: the Prometheus and Alertmanager clients through SSH tunnels (`session.apis`). Failing
       to reach the host here raises HostUnreachable with one masked line.
    """
    if secrets is None:
        secrets, own = host_secrets(inventory, host)
    else:
        own = Masker(secrets.values())
    m = masker or own
    with contextlib.ExitStack() as stack:
        try:
            session = new_session(host, secrets, m, connector)
            stack.callback(_close_quietly, session)
            if apis:
                kw = {} if api_timeout is None else {"timeout": api_timeout}
                session.apis = stack.enter_context(open_apis(session.conn, host, secrets, m, **kw))
        except KeyFileError:
            raise  # bad input, found before anything was contacted: one line, exit 2
        except Exception as e:
            if not apis:
                raise  # nothing was contacted: the caller reports it its own way
            raise HostUnreachable(m(f"cannot reach {host.address}:{host.ssh.port} over SSH: "
                                    f"{type(e).__name__}: {e}")) from e
        yield session


def _close_quietly(session: HostSession) -> None:
    """Best effort: a connection that fails to close has nothing more to tell."""
    with contextlib.suppress(Exception):
        session.close()
