"""A lab VM's guest over SSH, as `rosey`: commands, the waits for SSH and for systemd, the clock (the part of
LabVM that needs a running guest, not QEMU)."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fabfile.lab import keys


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class LabError(RuntimeError):
    pass


class GuestAccess:
    """Mixed into LabVM, which provides `name`, `settings`, `ssh_port`, `serial_log` and `is_running()`."""

    name: str
    settings: Any

    def ssh_argv(self, command: str | None = None, tty: bool = False, connect_timeout: int = 5) -> list[str]:
        ssh = self.settings.ssh
        argv = [
            "ssh", "-p", str(ssh.port), "-i", str(ssh.key),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", f"UserKnownHostsFile={keys.known_hosts()}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
        ]  # fmt: skip
        argv += ["-t"] if tty else ["-T"]
        argv.append(f"{ssh.user}@{self.settings.address}")
        if command is not None:
            argv.append(command)
        return argv

    def run(
        self, command: str, check: bool = False, timeout: float = 120, stdin: str | None = None
    ) -> Result:
        """Run `command` in the guest as `rosey` over SSH."""
        try:
            proc = subprocess.run(
                self.ssh_argv(command), input=stdin, capture_output=True, text=True, timeout=timeout,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )  # fmt: skip
            result = Result(proc.returncode, proc.stdout, proc.stderr)
        except subprocess.TimeoutExpired as exc:
            result = Result(124, _text(exc.stdout), _text(exc.stderr) + f"\n(timed out after {timeout}s)")
        if check and not result.ok:
            raise LabError(f"{self.name}: `{command}` exited {result.code}: {result.stderr.strip()}")
        return result

    def wait_ssh(self, timeout: float, probe: Callable[[], str] = lambda: "true") -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.run(probe(), timeout=10).ok:
                return
            if not self.is_running():
                raise LabError(f"{self.name}: QEMU exited while waiting for SSH (see {self.serial_log})")
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: no SSH on port {self.ssh_port} after {timeout:.0f}s")
            time.sleep(0.2)

    def wait_system_running(self, timeout: float = 180) -> str:
        out = self.run(f"timeout {int(timeout)} systemctl is-system-running --wait", timeout=timeout + 10)
        state = out.stdout.strip()
        if state != "running":
            failed = self.run("systemctl --failed --no-legend --plain").stdout.strip()
            raise LabError(f"{self.name}: system is {state!r}, failed units: {failed or 'none'}")
        return state

    def sync_clock(self, rounds: int = 5) -> float:
        """Set the guest clock from the host to within half an SSH round trip; returns the offset fixed.

        A timestamp sent with a new SSH command is stale by the whole handshake (seconds under
        emulation), so measure over one open session instead: the guest answers each line with its
        time, the best round trip gives the offset, and the guest corrects itself by that offset.
        """
        proc = subprocess.Popen(self.ssh_argv(f"sudo -n python3 -u -c {shlex.quote(_CLOCK_AGENT)}"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin and proc.stdout
        try:
            if proc.stdout.readline().strip() != "ready":
                raise LabError(f"{self.name}: clock agent did not start (passwordless sudo and python3?)")
            best: tuple[float, float] | None = None  # (round trip, offset)
            for _ in range(rounds):
                t0 = time.time()
                proc.stdin.write("?\n")
                proc.stdin.flush()
                guest = float(proc.stdout.readline())
                t1 = time.time()
                sample = (t1 - t0, guest - (t0 + t1) / 2)
                best = sample if best is None or sample[0] < best[0] else best
            assert best is not None
            proc.stdin.write(f"{best[1]:.6f}\n")
            proc.stdin.flush()
            proc.stdout.readline()
            return best[1]
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# Runs in the guest as root: answers "?" with its time, then applies the offset it is sent (guest - host).
_CLOCK_AGENT = """
import sys, time
print("ready")
for line in sys.stdin:
    if line.strip() == "?":
        print(repr(time.time()))
        continue
    time.clock_settime(time.CLOCK_REALTIME, time.time() - float(line))
    print("set")
    break
"""
