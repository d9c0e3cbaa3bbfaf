"""Pidfile helpers: every process the lab starts is found again by its pidfile, never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def read_pid(pidfile: Path, must_contain: str) -> int | None:
    """The live PID in `pidfile`, if its command line still contains `must_contain` (guards PID reuse)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    if must_contain not in cmdline:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return pid


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: used only on PIDs read from our own pidfiles."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass(frozen=True)
class LocalDaemon:
    """A helper process on this machine's 127.0.0.1 that lab VMs reach at 10.0.2.2 (release server, mail).

    Shared by all lab hosts: the first `lab.up` starts it, the last `lab.down` stops it, by its pidfile.
    """

    what: str  # in messages: "release server"
    run_dir: Path  # <name>.pid and <name>.log live here
    name: str
    port: int
    argv: Sequence[str]
    marker: str  # a piece of its command line: a reused PID is not taken for it
    env: Mapping[str, str] = field(default_factory=dict)
    hint: str = ""  # appended when the port is taken: where to change it

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def running_pid(self) -> int | None:
        return read_pid(self.pidfile, self.marker)

    def ensure_running(self) -> None:
        if self.running_pid():
            return
        if port_open(self.port):
            raise RuntimeError(f"127.0.0.1:{self.port} is taken by another program: the lab's {self.what} "
                               f"needs it{self.hint}")
        log = open(self.run_dir / f"{self.name}.log", "ab")  # noqa: SIM115 (handed to the child)
        proc = subprocess.Popen(
            list(self.argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, **self.env},
        )  # fmt: skip
        log.close()
        self.pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.what} on 127.0.0.1:{self.port} did not start (see {log.name})")
            time.sleep(0.05)

    def stop(self) -> None:
        pid = self.running_pid()
        if pid:
            stop_pid(pid)
        self.pidfile.unlink(missing_ok=True)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
