"""The shared SMTP catcher: one on the control machine's 127.0.0.1 that every lab VM reaches at 10.0.2.2.

Each VM also has its own catcher on its localhost:2525; this one is for a cluster, whose Alertmanagers must
all deliver to ONE place to count notifications (exactly once). It lives outside the VMs, so it keeps the
mail when a VM is killed. It runs the guest's catcher script (fabfile/lab/guest/smtp_catcher.py) with its
spool under the lab cache, started by the first `lab.up`, stopped by the last `lab.down` (by its pidfile).
Go's SMTP client sends AUTH PLAIN unencrypted only to localhost; the catcher offers LOGIN first, which
Alertmanager uses without that check, so a `10.0.2.2:<port>` smarthost works without TLS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from fabfile.lab import paths, procs

GUEST_ADDRESS = "10.0.2.2"  # how a VM reaches this machine's loopback (QEMU user-mode networking)


def spool(port: int) -> Path:
    path = paths.cache_dir() / "mail" / str(port)
    path.mkdir(parents=True, exist_ok=True)
    return path


def smarthost(port: int) -> str:
    """What a lab host's `receivers.email.smarthost` says to deliver here."""
    return f"{GUEST_ADDRESS}:{port}"


def _pidfile(port: int) -> Path:
    return paths.cache_dir() / "run" / f"mail-{port}.pid"


def _marker() -> str:
    return "smtp_catcher.py"


def running_pid(port: int) -> int | None:
    return procs.read_pid(_pidfile(port), _marker())


def ensure_running(port: int) -> None:
    if running_pid(port):
        return
    if _port_open(port):
        raise RuntimeError(f"127.0.0.1:{port} is taken by another program: the lab's shared mail catcher "
                           "needs it (lab_vm.mail_port in hosts.yml)")
    log = open(paths.cache_dir() / "run" / f"mail-{port}.log", "ab")  # noqa: SIM115 (handed to the child)
    env = {**os.environ, "SMTP_CATCHER_DIR": str(spool(port)), "SMTP_CATCHER_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, str(paths.GUEST_DIR / "smtp_catcher.py")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
    )  # fmt: skip
    log.close()
    _pidfile(port).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"shared mail catcher on 127.0.0.1:{port} did not start (see {log.name})")
        time.sleep(0.05)


def stop(port: int) -> None:
    pid = running_pid(port)
    if pid:
        procs.stop_pid(pid)
    _pidfile(port).unlink(missing_ok=True)


def read_all(port: int) -> list[tuple[str, bytes]]:
    """(file name, raw message) of every caught mail, oldest first (names sort by arrival)."""
    return [(p.name, p.read_bytes()) for p in sorted(spool(port).glob("*.eml"))]


def clear(port: int) -> None:
    for path in spool(port).glob("*.eml"):
        path.unlink(missing_ok=True)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
