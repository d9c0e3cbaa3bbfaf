"""The one stand-in for an SSH connection that the step, runner and read-ahead tests share.

`fabric.testing`'s MockRemote replays scripted channel output; these tests need the opposite (each step's
real snippets run by a real bash, or no command at all), so the fake is an `invoke.Context`: `transport.run`
sends it the same command line Fabric would send a server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import invoke

from fabfile.ssh.session import session_of


class LocalConn(invoke.Context):
    """A connection to "localhost" whose commands run on this machine and are kept in `sent`.

    `sudo -n` is dropped (the sandbox has no sudo). `ahead`: what a read-ahead already answered, put where
    `probe.read_ahead` keeps it (this connection's `session_of(conn).ahead`), for steps that only peek.
    `sftp_fails`: SFTP whose mkdir fails with this message, the way OpenSSH's sftp-server reports a full
    disk ("Failure").
    """

    host = "localhost"

    def __init__(self, *, ahead: list[Any] | None = None, sftp_fails: str | None = None) -> None:
        super().__init__()
        # invoke.Context keeps unknown attributes in its config: these are the connection's own
        object.__setattr__(self, "sent", [])
        object.__setattr__(self, "closed", False)
        object.__setattr__(self, "_sftp_fails", sftp_fails)
        if ahead is not None:
            session_of(self).ahead = ahead

    @classmethod
    def to(cls, host: Any) -> LocalConn:
        """The runner's `connector`: a connection named after the host's address (nothing is dialled)."""
        conn = cls()
        object.__setattr__(conn, "host", host.address)
        return conn

    def run(self, command: str, **kwargs: Any) -> Any:
        self.sent.append(command)
        return super().run(command.removeprefix("sudo -n "), **kwargs)

    def sftp(self) -> Any:
        if self._sftp_fails is None:
            raise AssertionError("this fake has no SFTP: pass sftp_fails to fail an upload")
        message = self._sftp_fails

        class Sftp:
            def mkdir(self, *args: Any) -> None:
                raise OSError(message)
        return Sftp()

    def close(self) -> None:
        object.__setattr__(self, "closed", True)


class Overlap:
    """How many callers were inside `busy()` at once, at most: proves a `--parallel N` bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.peak = 0

    @contextlib.contextmanager
    def busy(self, seconds: float) -> Iterator[None]:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
        try:
            time.sleep(seconds)
            yield
        finally:
            with self._lock:
                self._running -= 1
