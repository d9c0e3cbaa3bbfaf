"""One lab host as a QEMU/TCG virtual machine: cold boot, golden snapshot, restore, ssh, stop.

Why TCG: this machine's /dev/kvm is a paravirtual device (kvm_pvm) that cannot boot Debian's kernel,
so software emulation is the only thing that works; a saved VM state ("golden snapshot") hides its slow boot.
A run's disk is a qcow2 overlay on the golden disk (itself an overlay on the raw image),
thrown away by `down`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from fabfile.lab import debs, hooks, image, keys, mailbox, paths, privnet, procs, releases, serve
from fabfile.lab.guest_access import GuestAccess, LabError
from fabfile.lab.qmp import QMP

DEVICES_VERSION = "2"  # part of the golden key: a saved state restores only onto identical devices


def qemu_version() -> str:
    out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].split("version", 1)[1].strip().split()[0]


class LabVM(GuestAccess):
    """A lab host from the inventory (`HostSettings` whose `.lab` is set)."""

    def __init__(self, settings: Any) -> None:
        if getattr(settings, "lab", None) is None:
            raise LabError(f"host {settings.name!r} is not a lab host (no `lab:` section in hosts.yml)")
        self.settings = settings
        self.name: str = settings.name
        self.dir = paths.run_dir(self.name)
        self.timings: dict[str, float] = {}  # last `up`: seconds to SSH, to ready (for the bench)

    # ---- state -------------------------------------------------------------------------------------------
    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def overlay(self) -> Path:
        return self.dir / "overlay.qcow2"

    @property
    def qmp_socket(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def serial_log(self) -> Path:
        return self.dir / "serial.log"

    def pid(self) -> int | None:
        return procs.read_pid(self.pidfile, str(self.dir))

    def is_running(self) -> bool:
        return self.pid() is not None

    @property
    def ssh_port(self) -> int:
        return int(self.settings.ssh.port)

    def forwards(self) -> dict[int, int]:
        """guest port -> loopback port, SSH included."""
        return {22: self.ssh_port, **{int(g): int(h) for g, h in self.settings.lab.forwards.items()}}

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def up(self, fresh: bool = False, log=print) -> float:
        """Start the host (from the golden snapshot unless `fresh`); returns seconds until SSH answered."""
        with debs.locked("lab-keys"):  # two lab hosts started at once share the secrets and known_hosts
            keys.ensure_secrets(self.name, int(self.settings.lab.hooks_port))
            keys.trust_port(self.settings.address, self.ssh_port)
        img = image.ensure(self.settings.lab.release, log=log)
        if not releases.available():
            log("lab: building release archives from Debian packages...")
            releases.ensure_all()
        if self.is_running():
            self._ensure_daemons()
            log(f"lab: {self.name} is already running (pid {self.pid()})")
            return 0.0
        self._clean_run_dir()
        golden = None if fresh else self._ensure_golden(img, log)
        started = time.monotonic()
        if golden is None:
            self._create_overlay(img.disk, "raw")
            self._start_qemu(img)
            self.wait_ssh(timeout=300)
            self.timings["ssh"] = time.monotonic() - started
            self.wait_system_running()
            self.configure_private()
        else:
            self._create_overlay(golden / "disk.qcow2", "qcow2")
            self._start_qemu(img, incoming=golden / "state")
            self._resume_after_restore()
            # The first command is a coarse clock fix (a restored guest's clock is frozen at snapshot time,
            # minutes or days behind); sync_clock then takes out the seconds the SSH handshake cost.
            self.wait_ssh(timeout=60, probe=lambda: f"sudo -n date -u -s @{time.time():.3f} >/dev/null")
            self.sync_clock()
            self.timings["ssh"] = time.monotonic() - started
            self.configure_private()
        self.timings["ready"] = time.monotonic() - started
        return self.timings["ready"]

    def down(self) -> bool:
        """Stop QEMU by the PID in its pidfile and drop the run overlay; True if something was running."""
        pid = self.pid()
        if pid:
            try:
                with QMP(self.qmp_socket, timeout=2) as qmp:
                    qmp.execute("quit")
            except Exception:  # noqa: BLE001 (QMP may be gone: fall back to the PID)
                pass
            procs.stop_pid(pid)
        self._clean_run_dir()
        with debs.locked(_DAEMONS_LOCK):  # see _ensure_daemons
            if not any_running():
                serve.stop(int(self.settings.lab.releases_port))
                mailbox.stop(int(self.settings.lab.mail_port))
                hooks.daemon(int(self.settings.lab.hooks_port)).stop()
        return pid is not None

    def _ensure_daemons(self) -> None:
        """The release server and the shared mail and HTTP catchers, (re)started once this host's QEMU
        runs. The last host to go down stops them; under one lock with that check, a host starting
        meanwhile (another process: a second `lab.up`, the suite's other lab lane) either is seen running
        or starts them again after the stop."""
        with debs.locked(_DAEMONS_LOCK):
            serve.ensure_running(int(self.settings.lab.releases_port))
            mailbox.ensure_running(int(self.settings.lab.mail_port))
            hooks.daemon(int(self.settings.lab.hooks_port)).ensure_running()

    def power_off(self) -> bool:
        """Pull the plug: SIGKILL QEMU (no shutdown, no QMP), keeping the run disk, as a crashed server or
        a provider outage would. True if something was running."""
        pid = self.pid()
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        procs.stop_pid(pid, timeout=5)  # reaps it; SIGKILL again is harmless
        for name in ("qmp.sock", "qemu.pid", privnet.SOCKET_NAME):
            (self.dir / name).unlink(missing_ok=True)
        return True

    def power_on(self, timeout: float = 300) -> float:
        """Cold boot from the run disk a `power_off` left (the deployed state, not the golden snapshot);
        returns seconds until the system is running."""
        if self.is_running():
            return 0.0
        if not self.overlay.exists():
            raise LabError(f"{self.name}: no run disk to boot (use `inv lab.up -H {self.name}`)")
        started = time.monotonic()
        self._start_qemu(image.ensure(self.settings.lab.release, log=lambda _msg: None))
        self.wait_ssh(timeout=timeout)
        self.wait_system_running()
        self.sync_clock()
        return time.monotonic() - started

    def reboot(self, timeout: float = 300) -> None:
        """`systemctl reboot` in the guest, then wait for SSH to go away and come back (a cold boot: slow)."""
        self.run("sudo systemctl reboot", timeout=15)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.run("true", timeout=5).ok:
            time.sleep(0.5)
        self.wait_ssh(timeout=timeout)
        self.wait_system_running()

    def configure_private(self) -> None:
        """Give the private NIC this host's MAC and address (a file on the run disk: a reboot keeps it)."""
        address = self.settings.lab.private_address
        if address is None:
            return
        started = time.monotonic()
        self.run(privnet.apply_script(address), check=True, stdin=privnet.network_file(address), timeout=60)
        self.timings["private"] = time.monotonic() - started

    @property
    def private_peer_dir(self) -> Path | None:
        peer = self.settings.lab.private_peer
        return paths.run_dir(peer) if peer else None

    # ---- internals ---------------------------------------------------------------------------------------
    def _qemu_argv(self, img: image.Image, incoming: Path | None) -> list[str]:
        lab = self.settings.lab
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in sorted(self.forwards().items()))
        argv = [
            "qemu-system-x86_64", "-name", f"rosey-lab-{self.name}",
            "-accel", "tcg", "-cpu", "max", "-m", str(lab.memory_mb), "-smp", str(lab.cpus),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(img.kernel), "-initrd", str(img.initrd), "-append", image.KERNEL_CMDLINE,
            "-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-netdev", f"user,id=net0,{fwd}",
            "-device", f"virtio-net-pci,netdev=net0,mac={privnet.USER_NIC_MAC}",
            *privnet.qemu_args(lab, self.dir, self.private_peer_dir),
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.serial_log}",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-pidfile", str(self.pidfile), "-daemonize",
        ]  # fmt: skip
        if incoming is not None:
            argv += ["-S", "-incoming", f"exec:cat {shlex.quote(str(incoming))}"]
        return argv

    def _start_qemu(self, img: image.Image, incoming: Path | None = None) -> None:
        proc = subprocess.run(self._qemu_argv(img, incoming), capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"{self.name}: QEMU failed to start: {proc.stderr.strip()}")
        self._ensure_daemons()  # once this host counts as running (see _ensure_daemons)

    def _resume_after_restore(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with QMP(self.qmp_socket) as qmp:
            while True:
                status = qmp.status()
                if status in ("paused", "prelaunch", "postmigrate"):
                    migrate = qmp.execute("query-migrate")
                    if migrate.get("status") in (None, "completed"):
                        break
                if status == "running":
                    return
                if time.monotonic() > deadline:
                    raise LabError(f"{self.name}: snapshot restore stuck in {status!r}")
                time.sleep(0.05)
            qmp.execute("cont")

    def _ensure_golden(self, img: image.Image, log) -> Path:
        lab = self.settings.lab
        key = f"{img.key}-q{qemu_version()}-m{lab.memory_mb}-c{lab.cpus}-d{DEVICES_VERSION}"
        golden = paths.golden_dir() / key
        if (golden / ".done").exists():
            return golden
        with debs.locked("golden"):
            if (golden / ".done").exists():
                return golden
            log(f"lab: no golden snapshot yet: cold boot of {self.name} to make one (~1 min)...")
            started = time.monotonic()
            shutil.rmtree(golden, ignore_errors=True)
            golden.mkdir(parents=True)
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(img.disk), "-F", "raw",
                 str(golden / "disk.qcow2")], check=True,
            )  # fmt: skip
            self._create_overlay_link(golden / "disk.qcow2")
            try:
                self._start_qemu(img)
                self.wait_ssh(timeout=300)
                self.wait_system_running()
                self.run("sync", check=True)
                self._save_state(golden / "state")
            finally:
                self._stop_quietly()
                self._clean_run_dir()
            # a snapshot of an image that is gone goes too; another release's image keeps its own (a lab
            # host of that release may be running from it right now)
            images = tuple(d.name.rsplit("-", 1)[-1] for d in paths.image_dir().iterdir() if d.is_dir())
            for old in paths.golden_dir().iterdir():
                if old.is_dir() and old.name != key and not old.name.startswith(images):
                    shutil.rmtree(old, ignore_errors=True)
            (golden / ".done").write_text(f"{time.monotonic() - started:.1f}\n")
            log(f"lab: golden snapshot saved in {time.monotonic() - started:.0f}s")
        return golden

    def _save_state(self, state: Path) -> None:
        partial = state.with_suffix(".partial")
        with QMP(self.qmp_socket, timeout=120) as qmp:
            qmp.execute("stop")
            qmp.execute("migrate", uri=f"exec:cat > {shlex.quote(str(partial))}")
            deadline = time.monotonic() + 300
            while True:
                info = qmp.execute("query-migrate")
                status = info.get("status")
                if status == "completed":
                    break
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    raise LabError(f"saving the golden snapshot failed: {info}")
                time.sleep(0.1)
            qmp.execute("quit")
        partial.replace(state)

    def _create_overlay(self, backing: Path, fmt: str) -> None:
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", fmt, str(self.overlay)],
            check=True,
        )  # fmt: skip

    def _create_overlay_link(self, disk: Path) -> None:
        """While making the golden snapshot the VM writes the golden disk itself (later the backing file)."""
        self.overlay.unlink(missing_ok=True)
        self.overlay.symlink_to(disk)

    def _stop_quietly(self) -> None:
        pid = self.pid()
        if pid:
            procs.stop_pid(pid)

    def _clean_run_dir(self) -> None:
        for name in ("overlay.qcow2", "qmp.sock", "qemu.pid", privnet.SOCKET_NAME):
            (self.dir / name).unlink(missing_ok=True)


_DAEMONS_LOCK = "lab-daemons"


def any_running() -> bool:
    """Is any lab VM of this cache dir running (by pidfiles)?"""
    run_root = paths.cache_dir() / "run"
    return any(
        procs.read_pid(d / "qemu.pid", str(d)) for d in run_root.iterdir() if d.is_dir()
    ) if run_root.exists() else False
