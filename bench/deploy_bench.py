"""Deploy benchmark on a lab host: fresh sortie6, no-op re-run, SSH commands per step, bytes uploaded.

    .venv/bin/python bench/deploy_bench.py [--host lab] [--keep]

Restores the host's golden snapshot (a clean Debian guest), runs sortie6 twice through the same runner the
CLI uses, prints the figures and stops the VM (unless --keep). No assertions: figures only.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.deploy import runner, steps  # noqa: E402
from fabfile.lab.settings import lab_settings  # noqa: E402
from fabfile.lab.vm import LabVM  # noqa: E402


def one_run(label: str, inventory, host) -> tuple[float, runner.HostReport, int]:
    out = io.StringIO()
    reports: list[runner.HostReport] = []
    t0 = time.monotonic()
    code = runner.run(inventory, [host], steps.named(steps.SORTIE6), stream=out, reports_out=reports)
    took = time.monotonic() - t0
    if code:
        print(out.getvalue())
    print(f"{label}: exit {code}, {took:.1f}s wall")
    return took, reports[0], code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="lab")
    ap.add_argument("--keep", action="store_true", help="leave the VM running afterwards")
    args = ap.parse_args()
    inventory = load_inventory()
    host = inventory.host(args.host)
    vm = LabVM(lab_settings(args.host))
    vm.down()
    print(f"restoring {args.host} from its golden snapshot...")
    vm.up(fresh=False, log=lambda m: None)
    try:
        fresh_s, fresh, _ = one_run("fresh sortie6", inventory, host)
        noop_s, noop, _ = one_run("no-op sortie6", inventory, host)
    finally:
        if not args.keep:
            vm.down()
    print()
    print(f"{'':22} {'fresh':>8} {'no-op':>8}")
    print(f"{'wall time (s)':22} {fresh_s:8.1f} {noop_s:8.1f}")
    print(f"{'bytes uploaded (SFTP)':22} {fresh.bytes_uploaded:8d} {noop.bytes_uploaded:8d}")
    print("SSH commands per step:")
    for step in [*steps.SORTIE6, "cleanup"]:
        f, n = fresh.commands.get(step, 0), noop.commands.get(step, 0)
        if f or n:
            print(f"  {step:20} {f:8d} {n:8d}")
    print(f"  {'total':20} {sum(fresh.commands.values()):8d} {sum(noop.commands.values()):8d}")
    statuses = {r.step: r.status for r in noop.results}
    print(f"no-op statuses: {statuses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
