"""A local port forward over an SSH transport whose listening socket we bind ourselves.

Why not Fabric's `forward_local`: it binds in a thread after the caller picked a port, so a free port can be
taken in between, and a port already taken is only seen as a traceback at Ctrl-C while the squatting
listener gets the browser (and its basic-auth header). Here the socket is bound before anything else
(port 0: the kernel picks one, no free-then-rebind window), a taken port is a `LocalPortInUse` at once,
and a channel the server refuses (nothing listens there) is kept as `last_error` to be said in one line.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading
from typing import Any, Protocol

from fabfile.errors import UserError


class Transport(Protocol):
    """What a forward needs of paramiko's Transport (tests hand in an in-process stand-in)."""

    def open_channel(self, kind: str, dest_addr: tuple[str, int] | None = None,
                     src_addr: tuple[str, int] | None = None, window_size: int | None = None,
                     max_packet_size: int | None = None, timeout: float | None = None) -> Any: ...


class LocalPortInUse(UserError):
    """The local port asked for is taken by another program (the user picks another)."""


def bind_local(port: int, flag: str = "") -> socket.socket:
    """A listening socket on 127.0.0.1:`port` (0: any free one). A taken port: `LocalPortInUse` naming
    `flag`, the option that picks another."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # reuse a port left in TIME_WAIT by our own last run; Linux still refuses one that is listening
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
    except OSError as e:
        sock.close()
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            hint = f"; pick another with {flag}" if flag else ""
            raise LocalPortInUse(f"local port {port} is in use{hint}") from None
        raise
    return sock


class LocalForward:
    """127.0.0.1:<port> here -> `remote_host`:`remote_port` as seen by the server, over `transport`,
    serving on `listener` (from `bind_local`) until `close()`. Relay failures never raise: the last one is
    in `last_error`."""

    def __init__(self, transport: Transport, remote_port: int, listener: socket.socket,
                 remote_host: str = "127.0.0.1", channel_timeout: float = 10.0) -> None:
        self.transport, self.remote = transport, (remote_host, remote_port)
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self.channel_timeout = channel_timeout
        self.last_error = ""
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start(self._serve)

    def _start(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"forward-{self.port}")
        self._threads = [x for x in self._threads if x.is_alive()] + [t]  # a browser opens many
        t.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.2)
                if ready:
                    client, addr = self.listener.accept()
                    self._start(self._relay, client, addr)
            except (OSError, ValueError):  # closed under us
                return

    def _relay(self, client: socket.socket, addr: tuple[str, int]) -> None:
        try:
            chan = self.transport.open_channel("direct-tcpip", self.remote, addr,
                                               timeout=self.channel_timeout)
        except Exception as e:  # noqa: BLE001  (ChannelException "Connect failed", SSHException, EOFError)
            self.last_error = " ".join(str(e).split()) or type(e).__name__
            client.close()
            return
        try:
            pump(client, chan, self._closed)
        except (OSError, EOFError) as e:  # a browser that hung up, a connection that dropped
            self.last_error = f"{type(e).__name__}: {e}"
        finally:
            with contextlib.suppress(Exception):
                chan.close()
            client.close()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> LocalForward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pump(a: Any, b: Any, closed: threading.Event) -> None:
    """Copy bytes both ways between two socket-likes (a socket, a paramiko Channel) until one side ends."""
    while not closed.is_set():
        ready, _, _ = select.select([a, b], [], [], 0.2)
        for src in ready:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)
