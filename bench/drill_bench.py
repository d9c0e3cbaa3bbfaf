"""Print the timeline figures of real drills on a (deployed) lab host; no assertions.

    .venv/bin/python bench/drill_bench.py [HOST] [--runs N] [--synthetic | --scenario NAME]

On a clustered host `--scenario monitoring-down` measures stop -> the PEER's notification (notifications are
counted over every Alertmanager of the cluster).

The host must already be deployed (`inv sortie6 -H lab`). Figures: per run, the seconds of each timeline
event after the stop (or after posting, for --synthetic), detection vs the computed bound, and wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.config.secrets import load_secrets  # noqa: E402
from fabfile.deploy.steps.base import StepContext  # noqa: E402
from fabfile.drill.runner import SCENARIOS, make_scenario, peer_targets, run_drill  # noqa: E402
from fabfile.ssh.connection import connect  # noqa: E402
from fabfile.ssh.masking import Masker  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host", nargs="?", default="lab")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--scenario", choices=SCENARIOS, default="")
    args = ap.parse_args()
    inv = load_inventory(os.environ.get("ROSEY_INVENTORY"))
    host = inv.host(args.host)
    secrets = load_secrets(inv, host)
    quiet: list[str] = []
    code = 0
    for i in range(args.runs):
        ctx = StepContext(inventory=inv, secrets=secrets, masker=Masker(secrets.values()), log=quiet.append)
        t0 = time.monotonic()
        name = args.scenario or ("synthetic" if args.synthetic else "bot-down")
        r = run_drill(lambda: connect(host), host, ctx, scenario=make_scenario(name),
                      peers=peer_targets(inv, host, ctx))
        wall = time.monotonic() - t0
        figures = "  ".join(f"{n}={t:.1f}s" for n, t in r.timeline.events)
        print(f"run {i + 1}: {'ok' if r.ok else 'FAILED'}  wall {wall:.1f}s  {figures}")
        if r.bounds and r.detection is not None:
            print(f"         detection {r.detection:.1f}s vs bound {r.bounds.detect:g}s "
                  f"({r.bounds.detect_text()})")
        if not r.ok:
            print(f"         {r.message}")
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
