"""Print the timeline figures of real drills on a (deployed) lab host; no assertions.

    .venv/bin/python bench/drill_bench.py [HOST] [--runs N] [--synthetic | --scenario NAME]

On a clustered host `--scenario monitoring-down` measures stop -> the PEER's notification (notifications are
counted over every Alertmanager of the cluster); on a clustered lab host `--scenario host-down` powers the VM
off and measures power-off -> the peer's notification. Both print the bound with and without one
`--cluster.peer-timeout` (the survivor's turn).

On a lab host whose email goes to the shared catcher (`receivers.email.smarthost: 10.0.2.2:<mail_port>`) each
run also prints the mails that arrived for its alert per recipient (the exactly-once count of a cluster), and
at the end the memory (RSS) of every running lab VM.

The host must already be deployed (`inv sortie6 -H lab`). Figures: per run, the seconds of each timeline
event after the stop (or after posting, for --synthetic), detection vs the computed bound, and wall time.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.drill import scenarios  # noqa: E402
from fabfile.drill.runner import drill_context, peer_targets, run_drill  # noqa: E402
from fabfile.drill.scenarios.common import PEER_TIMEOUT  # noqa: E402
from fabfile.drill.scenarios.monitoring_down import PEER_ALERT  # noqa: E402
from fabfile.drill.scenarios.synthetic import SYNTHETIC  # noqa: E402
from fabfile.lab import mailbox  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host", nargs="?", default="lab")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--scenario", choices=scenarios.names(), default="")
    args = ap.parse_args()
    inv = load_inventory(os.environ.get("ROSEY_INVENTORY"))
    host = inv.host(args.host)
    quiet: list[str] = []
    code = 0
    for i in range(args.runs):
        ctx = drill_context(inv, host, quiet.append)
        t0, since_ns = time.monotonic(), time.time_ns()
        spec = scenarios.chosen(args.scenario, args.synthetic)
        name = spec.name
        r = run_drill(host, ctx, scenario=spec.factory(None),
                      peers=peer_targets(inv, host, ctx))
        wall = time.monotonic() - t0
        figures = "  ".join(f"{n}={t:.1f}s" for n, t in r.timeline.events)
        print(f"run {i + 1}: {'ok' if r.ok else 'FAILED'}  wall {wall:.1f}s  {figures}")
        if r.bounds and r.detection is not None:
            print(f"         detection {r.detection:.1f}s vs bound {r.bounds.detect:g}s "
                  f"({r.bounds.detect_text()})")
            if name in ("monitoring-down", "host-down"):
                print(f"         bound + one --cluster.peer-timeout: {r.bounds.detect + PEER_TIMEOUT:g}s")
        if host.lab is not None:
            print(f"         {mails_line(host, ALERTS.get(name, 'BotDown'), since_ns)}")
        if not r.ok:
            print(f"         {r.message}")
            code = 1
    for line in memory_lines(inv):
        print(line)
    return code


ALERTS = {"bot-down": "BotDown", "synthetic": SYNTHETIC, "monitoring-down": PEER_ALERT,
          "host-down": PEER_ALERT}


def mails_line(host, alert: str, since_ns: int) -> str:
    """Mails for `alert` the shared catcher received since `since_ns`, per recipient (firing + resolved)."""
    if mailbox.smarthost(host.lab.mail_port) != (host.receivers.email.smarthost if host.receivers.email
                                                  else None):
        return "mails: not counted (this host's email does not go to the shared catcher)"
    counts: dict[str, int] = {}
    for name, raw in mailbox.read_all(host.lab.mail_port):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if int(name.split("-", 1)[0]) < since_ns or alert not in str(msg.get("Subject", "")):
            continue
        for rcpt in str(msg.get("X-Catcher-Rcpt-To", "")).split(","):
            counts[rcpt.strip()] = counts.get(rcpt.strip(), 0) + 1
    per = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
    return f"mails for {alert} (firing + resolved) per recipient: {per}"


def memory_lines(inv) -> list[str]:
    """RSS of each running lab VM's QEMU (what two VMs side by side cost this machine)."""
    from fabfile.lab.vm import LabVM

    out, total = [], 0.0
    for h in inv.hosts.values():
        if h.lab is None:
            continue
        pid = LabVM(h).pid()
        if pid:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024
            total += rss
            out.append(f"lab VM {h.name}: QEMU RSS {rss:.0f} MB (guest memory {h.lab.memory_mb} MB)")
    if len(out) > 1:
        out.append(f"lab VMs together: {total:.0f} MB")
    return out


if __name__ == "__main__":
    sys.exit(main())
