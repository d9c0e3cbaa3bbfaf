"""The shared SMTP catcher: one on the control machine's 127.0.0.1 that every lab VM reaches at 10.0.2.2.

Each VM also has its own catcher on its localhost:2525; this one is for a cluster, whose Alertmanagers must
all deliver to ONE place to count notifications (exactly once). It lives outside the VMs, so it keeps the
mail when a VM is killed. It runs the guest's catcher script (fabfile/lab/guest/smtp_catcher.py) with its
spool under the lab cache, started by the first `lab.up`, stopped by the last `lab.down` (by its pidfile).
Go's SMTP client sends AUTH PLAIN unencrypted only to localhost; the catcher offers LOGIN first, which
Alertmanager uses without that check, so a `10.0.2.2:<port>` smarthost works without TLS.
"""

from __future__ import annotations

import sys
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


def _daemon(port: int) -> procs.LocalDaemon:
    return procs.LocalDaemon(
        "shared mail catcher", paths.cache_dir() / "run", f"mail-{port}", port,
        (sys.executable, str(paths.GUEST_DIR / "smtp_catcher.py")), marker="smtp_catcher.py",
        env={"SMTP_CATCHER_DIR": str(spool(port)), "SMTP_CATCHER_PORT": str(port)},
        hint=" (lab_vm.mail_port in hosts.yml)")


def running_pid(port: int) -> int | None:
    return _daemon(port).running_pid()


def ensure_running(port: int) -> None:
    _daemon(port).ensure_running()


def stop(port: int) -> None:
    _daemon(port).stop()


# the catcher writes `.<name>` and renames it into place: a dot file is a mail still being written
MAILS = "[!.]*.eml"


def read_all(port: int) -> list[tuple[str, bytes]]:
    """(file name, raw message) of every caught mail, oldest first (names sort by arrival)."""
    out = []
    for p in sorted(spool(port).glob(MAILS)):
        try:
            out.append((p.name, p.read_bytes()))
        except FileNotFoundError:  # cleared while this reads
            continue
    return out


def clear(port: int) -> None:
    for path in spool(port).glob(MAILS):
        path.unlink(missing_ok=True)
