"""The release server: `python3 -m http.server` on the control machine's 127.0.0.1, serving the archives.

The guest reaches it at 10.0.2.2 (QEMU user-mode networking maps that to the host's loopback). It is shared by
all lab hosts, started by the first `lab.up` and stopped by the last `lab.down` (by its pidfile).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from fabfile.lab import paths, procs


def _pidfile(port: int) -> Path:
    return paths.cache_dir() / "run" / f"releases-{port}.pid"


def _marker(port: int) -> str:
    return f"http.server {port} --bind 127.0.0.1"


def running_pid(port: int) -> int | None:
    return procs.read_pid(_pidfile(port), _marker(port))


def ensure_running(port: int) -> None:
    if running_pid(port):
        return
    if _port_open(port):
        raise RuntimeError(f"127.0.0.1:{port} is taken by another program: the lab's release server needs it")
    log = open(paths.cache_dir() / "run" / f"releases-{port}.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(paths.releases_dir())],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    log.close()
    _pidfile(port).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"release server on 127.0.0.1:{port} did not start (see {log.name})")
        time.sleep(0.05)


def stop(port: int) -> None:
    pid = running_pid(port)
    if pid:
        procs.stop_pid(pid)
    _pidfile(port).unlink(missing_ok=True)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
