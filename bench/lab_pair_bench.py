"""Two lab VMs side by side: restore times, QEMU memory (RSS), CPU while idle, the private link. Prints only.

    python bench/lab_pair_bench.py [--hosts lab,lab2] [--idle 20] [--reboot]

Stops the two hosts first if they run and always at the end (by pidfile). Run it under the lab lock.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabfile.lab.settings import lab_settings  # noqa: E402
from fabfile.lab.vm import LabVM  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="lab,lab2")
    parser.add_argument("--idle", type=float, default=20, help="seconds of idle CPU measurement")
    parser.add_argument("--reboot", action="store_true", help="also time a reboot of the second host")
    args = parser.parse_args()
    inventory = os.environ.get("ROSEY_INVENTORY")
    vms = [LabVM(lab_settings(n.strip(), inventory)) for n in args.hosts.split(",")]
    quiet = lambda msg: None  # noqa: E731
    row = "{:55s} {:>9s}"
    try:
        for vm in vms:
            vm.down()
        vms[0].up(log=quiet)  # makes the golden snapshot if missing, so the figures below are restores
        vms[0].down()
        started = time.monotonic()
        for vm in vms:
            vm.up(log=quiet)
            t = vm.timings
            print(row.format(f"{vm.name}: restore to SSH + clock", f"{t['ssh']:.1f} s"))
            extra = t.get("private", 0)
            print(row.format(f"{vm.name}: private address configured (extra)", f"{extra:.1f} s"))
        print(row.format("both up, from nothing", f"{time.monotonic() - started:.1f} s"))
        pids = {vm.name: vm.pid() for vm in vms}
        for name, pid in pids.items():
            print(row.format(f"{name}: QEMU RSS right after up", f"{_rss_mb(pid):.0f} MB"))
        a, b = vms
        ping = a.run(f"ping -q -c 20 -i 0.2 {b.settings.lab.private_address}").stdout
        rtt = re.search(r"= [\d.]+/([\d.]+)/", ping)
        loss = re.search(r"(\d+)% packet loss", ping)
        avg = f"{rtt.group(1)} ms" if rtt else "-"
        print(row.format(f"private link {a.name} -> {b.name}: ping avg (20)", avg))
        print(row.format("private link: packet loss", f"{loss.group(1)} %" if loss else "-"))
        before = {n: _cpu_seconds(p) for n, p in pids.items()}
        time.sleep(args.idle)
        for name, pid in pids.items():
            busy = (_cpu_seconds(pid) - before[name]) / args.idle
            label = f"{name}: QEMU CPU while idle ({args.idle:.0f} s)"
            print(row.format(label, f"{busy * 100:.0f} % of a core"))
            print(row.format(f"{name}: QEMU RSS after idle", f"{_rss_mb(pid):.0f} MB"))
        print(row.format("load average (1 min), 2 cores", f"{os.getloadavg()[0]:.2f}"))
        if args.reboot:
            started = time.monotonic()
            b.reboot()
            print(row.format(f"{b.name}: reboot to system running", f"{time.monotonic() - started:.1f} s"))
            print(row.format(f"{b.name}: QEMU RSS after reboot", f"{_rss_mb(b.pid()):.0f} MB"))
        mem = Path("/proc/meminfo").read_text()
        avail = int(re.search(r"^MemAvailable:\s+(\d+)", mem, re.M).group(1)) / 1024 / 1024
        print(row.format("machine: memory available with both up", f"{avail:.1f} GB"))
    finally:
        for vm in vms:
            vm.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
