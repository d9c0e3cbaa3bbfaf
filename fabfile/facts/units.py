"""What systemd says about both services, read once for the three steps that decide from it: deploy-configs
(reload a running service or not), install-services (start, restart, enable) and verify (running and
enabled). The snippet is the same text in all three reads, so the read-ahead runs it once for all of them.

Why one `systemctl show` for everything: each process start costs 0.05-0.1 s on an emulated VM, and the
three steps used to ask systemd twenty-odd times. The start time comes as systemd's monotonic timestamp
plus the clock and uptime read by bash itself, turned into epoch seconds here.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass

from fabfile.config import layout
from fabfile.config.settings import HostSettings
from fabfile.config.validators import ascii_digits

PROPERTIES = ("Id", "ActiveState", "UnitFileState", "MainPID", "NeedDaemonReload",
              "ExecMainStartTimestampMonotonic")


@dataclass(frozen=True)
class UnitState:
    active: str = "unknown"  # ActiveState: active, inactive, failed, activating, reloading, ...
    enabled: str = "unknown"  # UnitFileState: enabled, disabled, ... ("" for a unit systemd does not know)
    main_pid: int = 0
    need_daemon_reload: bool = False
    started: float = 0.0  # epoch seconds the main process started (0: unknown or not running)
    exe: str = ""  # what /proc/<MainPID>/exe points at ("" when not running)
    binary: str = ""  # where the stable symlink of the service's binary points now
    unit_mtime: int = 0  # the unit file's mtime (0: no unit file)

    @property
    def running(self) -> bool:
        return self.active in layout.RUNNING_STATES

    @property
    def restart_pending(self) -> bool:
        """The process runs another binary than the symlink points at now (install switched it)."""
        return bool(self.exe) and self.exe != self.binary


def snippet(host: HostSettings) -> str:
    """Five process starts for both services: systemctl, one readlink per running process, realpath, stat."""
    q = shlex.quote
    units = " ".join(f"{s}.service" for s in layout.SERVICES)
    props = " ".join(f"-p {p}" for p in PROPERTIES)
    bins = " ".join(q(layout.binary_path(s)) for s in layout.SERVICES)
    files = " ".join(q(layout.remote_path(host, f"{s}.service")) for s in layout.SERVICES)
    return (f"out=$(systemctl show {props} {units}); printf '%s\\n' \"$out\"\n"
            "while IFS='=' read -r k v; do [ \"$k\" = MainPID ] && [ \"$v\" != 0 ] && "
            "echo \"@exe $v $(readlink /proc/$v/exe 2>/dev/null)\"; done <<< \"$out\"\n"
            f"for b in $(realpath -m -- {bins}); do echo \"@bin $b\"; done\n"
            f"stat -c '@mtime %n %Y' -- {files} 2>/dev/null\n"
            "read -r up _ < /proc/uptime; echo \"@clock $EPOCHREALTIME $up\"")


def parse(host: HostSettings, text: str) -> dict[str, UnitState]:
    """The snippet's answer -> {service: UnitState}; anything missing reads as unknown / not running."""
    blocks: dict[str, dict[str, str]] = {}
    exe: dict[str, str] = {}
    bins: list[str] = []
    mtimes: dict[str, int] = {}
    now = uptime = 0.0
    props: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("@exe "):
            parts = line.split(" ", 2)
            if len(parts) == 3:
                exe[parts[1]] = parts[2]  # by PID: systemctl orders a unit's properties its own way
        elif line.startswith("@bin "):
            bins.append(line[5:])
        elif line.startswith("@mtime "):
            parts = line.split(" ")
            if len(parts) == 3 and ascii_digits(parts[2]):
                mtimes[parts[1]] = int(parts[2])
        elif line.startswith("@clock "):
            parts = line.split()
            with contextlib.suppress(IndexError, ValueError):
                now, uptime = float(parts[1].replace(",", ".")), float(parts[2])
        elif "=" in line:
            k, v = line.split("=", 1)
            props[k] = v
            if k == "Id":
                blocks[v] = props
        elif not line.strip():
            props = {}
    out: dict[str, UnitState] = {}
    for i, svc in enumerate(layout.SERVICES):
        unit = f"{svc}.service"
        p = blocks.get(unit)
        if p is None:
            out[svc] = UnitState()
            continue
        pid = int(p["MainPID"]) if ascii_digits(p.get("MainPID", "")) else 0
        mono = int(p["ExecMainStartTimestampMonotonic"]) \
            if ascii_digits(p.get("ExecMainStartTimestampMonotonic", "")) else 0
        started = now - uptime + mono / 1e6 if pid and mono and now and uptime else 0.0
        out[svc] = UnitState(active=p.get("ActiveState", "unknown"), enabled=p.get("UnitFileState", ""),
                             main_pid=pid, need_daemon_reload=p.get("NeedDaemonReload") == "yes",
                             started=started, exe=exe.get(str(pid), "") if pid else "",
                             binary=bins[i] if i < len(bins) else "",
                             unit_mtime=mtimes.get(layout.remote_path(host, unit), 0))
    return out
