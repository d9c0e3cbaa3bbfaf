"""Deploy benchmark on lab hosts: fresh and no-op sortie6, time and SSH commands per step, control-side cost.

    .venv/bin/python bench/deploy_bench.py [--hosts lab[,lab2]] [--parallel N] [--clones N] [--keep]

Restores each host's golden snapshot (a clean Debian guest), runs sortie6 twice through the same runner the
CLI uses (all hosts at once), then once more when the stack has settled, prints the figures and stops the VMs
(unless --keep). Run it under the lab lock (`flock /work/lab.lock ...` or nothing else using the lab).
No assertions: figures only.

The control side's share is measured on this process alone: CPU seconds (user+system, all threads) and the
growth of its peak RSS during each run, divided by the number of hosts. The guests' CPU is not in it: on a
2-core machine two TCG guests compete with each other, which is the machine's limit, not the tool's.
`--clones N` adds a `--dry-run` (read and decide, nothing applied) on N inventory aliases of the first host
(same VM, N connections at once): what N hosts cost this machine, without N VMs (their wall time is the one
guest's, shared N ways).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.config.secrets import load_secrets  # noqa: E402
from fabfile.deploy import runner, steps  # noqa: E402
from fabfile.deploy.steps.base import StepContext  # noqa: E402
from fabfile.lab.settings import lab_settings  # noqa: E402
from fabfile.lab.vm import LabVM  # noqa: E402
from fabfile.ssh import probe  # noqa: E402
from fabfile.ssh.connection import connect  # noqa: E402
from fabfile.ssh.webauth import curl_config, web_get_fn  # noqa: E402


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_run(label: str, inventory, hosts, parallel: int,
            dry_run: bool = False) -> tuple[float, list[runner.HostReport], float, float]:
    out = io.StringIO()
    reports: list[runner.HostReport] = []
    cpu0, rss0, t0 = _cpu(), _peak_mb(), time.monotonic()
    code = runner.run(inventory, hosts, steps.named(steps.SORTIE6), stream=out, reports_out=reports,
                      parallel=parallel, dry_run=dry_run)
    took, cpu, rss = time.monotonic() - t0, _cpu() - cpu0, _peak_mb() - rss0
    if code:
        print(out.getvalue())
    print(f"{label}: exit {code}, {took:.1f}s wall, control side {cpu:.2f} CPU-s, peak RSS +{rss:.1f} MB")
    return took, reports, cpu, rss


# what one read of a host's state is made of, timed one by one in the guest: the floor of a no-op
FLOOR = {
    "SSH round trip (true)": "true",
    "sudo + bash": "sudo -n bash -c true",
    # what the read no longer runs, and what it runs instead
    "ufw status verbose (python, not run)": "sudo -n ufw status verbose >/dev/null",
    "ufw show added (python, not run)": "sudo -n ufw show added >/dev/null",
    "ufw state from its files (read)": "sudo -n bash -c 'iptables -n -L ufw-user-input >/dev/null 2>&1; "
                                       "grep -h \"^### tuple\" /etc/ufw/user.rules /etc/ufw/user6.rules'",
    "prometheus --version (Go, not run)": "/usr/local/bin/prometheus --version >/dev/null 2>&1",
    "promtool --version (Go, not run)": "/usr/local/bin/promtool --version >/dev/null 2>&1",
    "a version from install's mark (read)": "stat -L -c %d:%i:%s:%.9Y:%.9Z /usr/local/bin/prometheus",
    "curl /-/healthy": "curl -s -o /dev/null http://127.0.0.1:9090/-/healthy",
}


def guest_cpu(vm: LabVM) -> tuple[float, float, int]:
    """The guest's CPU seconds so far, busy and all (every vCPU), and its vCPU count, from one read of its
    /proc/stat: how much of a run the guest's CPUs had nothing else to do, i.e. whether the run waits on them
    or on something else."""
    lines = vm.run("grep '^cpu' /proc/stat", timeout=60).stdout.splitlines()
    ticks = [int(x) for x in lines[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (guest time is in user)
    return (total - idle) / 100, total / 100, len(lines) - 1  # USER_HZ; one cpuN line per vCPU


def floor_costs(vm: LabVM) -> dict[str, float]:
    out = {}
    for label, command in FLOOR.items():
        t0 = time.monotonic()
        vm.run(command, timeout=120)
        out[label] = time.monotonic() - t0
    return out


def first_scrape(inventory, host) -> float:
    """Seconds from Prometheus' start to its first sample of the bot (a fresh data dir: the oldest sample is
    the first scrape): a wait no deploy that proves a real scrape can skip. Prometheus applies discovered
    targets 5-10 s after its start (its discovery and its scrape manager each on a 5 s tick), then scrapes
    each target at that target's fixed phase in the interval (0-15 s later)."""
    port = host.prometheus.port
    get = f'{web_get_fn(host)}\nweb_get {port} '
    conn = connect(host)
    try:
        outs = probe.probe(conn, {
            "start": get + '/metrics -sS -K "$PROBE_STDIN" | grep "^process_start_time_seconds "',
            "up": get + '/api/v1/query -sS -K "$PROBE_STDIN" -G --data-urlencode '
                        '\'query=up{job="rosey-bot"}[30m]\'',
        }, stdin=curl_config(host, load_secrets(inventory, host)), what="first scrape")
    finally:
        conn.close()
    started = float(outs["start"].split()[1])
    samples = json.loads(outs["up"])["data"]["result"][0]["values"]
    return float(samples[0][0]) - started


def read_parts(inventory, host) -> list[tuple[str, float]]:
    """The no-op read once more, each part timed by the server's own shell: (snippet, seconds), slowest first.
    The same snippets the runner reads ahead (each once), through the same connection code."""
    ctx = StepContext(inventory, load_secrets(inventory, host))
    conn = connect(host)
    try:
        snippets: dict[str, str] = {}
        stdin = None
        for read in (r(host, ctx) for r in steps.reads_of(list(steps.SORTIE6))):
            stdin = read.stdin if read.stdin is not None else stdin
            for key, snippet in read.snippets.items():
                if snippet not in snippets.values():
                    snippets[f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', read.what)}.{key}"] = snippet
        t0 = time.monotonic()
        conn.open()  # what every run pays once: TCP, key exchange, host key check, public-key login
        opened = time.monotonic() - t0
        t0 = time.monotonic()
        conn.run("true", hide=True)  # one command on the open connection: a session channel and a shell
        one = time.monotonic() - t0
        t0 = time.monotonic()
        outs = probe.probe(conn, snippets, stdin=stdin, what="profiled read")
        total = time.monotonic() - t0
    finally:
        conn.close()
    parts = sorted(((k, o.seconds or 0.0) for k, o in outs.items()), key=lambda kv: -kv[1])
    return [("(SSH connect and login)", opened), ("(then one command: true)", one),
            ("(the whole read, wall)", total), ("(its parts, summed)", sum(x for _, x in parts)), *parts]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="lab", help="lab hosts, comma-separated (e.g. lab,lab2)")
    ap.add_argument("--host", help=argparse.SUPPRESS)  # the old spelling
    ap.add_argument("--parallel", type=int, default=runner.DEFAULT_PARALLEL)
    ap.add_argument("--clones", type=int, default=0, help="also a no-op run on N aliases of the first host")
    ap.add_argument("--keep", action="store_true", help="leave the VMs running afterwards")
    args = ap.parse_args()
    names = (args.host or args.hosts).split(",")
    inventory = load_inventory()
    hosts = [inventory.host(n) for n in names]
    vms = [LabVM(lab_settings(n)) for n in names]
    for vm in vms:
        vm.down()
    for vm in vms:
        print(f"restoring {vm.name} from its golden snapshot...")
        vm.up(fresh=False, log=lambda m: None)
    base_mb = _peak_mb()
    try:
        busy0, all0, _ = guest_cpu(vms[0])
        fresh_s, fresh, fresh_cpu, fresh_rss = one_run("fresh sortie6", inventory, hosts, args.parallel)
        busy1, all1, vcpus = guest_cpu(vms[0])
        scrape_after = first_scrape(inventory, hosts[0])
        noop_s, noop, noop_cpu, noop_rss = one_run("no-op sortie6", inventory, hosts, args.parallel)
        floor = floor_costs(vms[0])
        parts = read_parts(inventory, hosts[0])
        # the first no-op runs while Prometheus is still busy with its own start (the guest's CPU is shared);
        # this one runs when the stack has settled, as a user's re-run later would
        settled_s, settled, _, _ = one_run("no-op sortie6, settled", inventory, hosts, args.parallel)
        if args.clones:
            clones = [dataclasses.replace(hosts[0], name=f"{hosts[0].name}-c{i}") for i in range(args.clones)]
            # --dry-run: each alias renders its own name into the files, so a real run would change them
            label = f"sortie6 --dry-run on {args.clones} aliases of {hosts[0].name}"
            clone_run = one_run(label, inventory, clones, max(args.parallel, args.clones), dry_run=True)
    finally:
        if not args.keep:
            for vm in vms:
                vm.down()
    n = len(hosts)
    busy, avail = busy1 - busy0, all1 - all0
    print(f"\n{vms[0].name}'s CPUs during the fresh run: busy {busy:.1f} of {avail:.1f} CPU-s "
          f"({busy / avail:.0%}); that work alone, spread over its {vcpus} vCPUs, takes {busy / vcpus:.1f}s")
    order = list(steps.SORTIE6)
    first = [runner.READ_AHEAD, *order[:order.index("firewall")]]
    before = sum(fresh[0].step_seconds.get(s, 0.0) for s in first)
    print(f"the fresh run until both services were healthy (the read and every step before the firewall): "
          f"{before:.1f}s; Prometheus' first scrape of the bot came {scrape_after:.1f}s after its start "
          "(discovery 5-10 s, then the target's phase in the interval): the firewall step runs in that wait")
    print(f"\nwhat a read costs on {vms[0].name} (each its own SSH command, wall seconds):")
    for label, secs in floor.items():
        print(f"  {label:30} {secs:6.2f}")
    print(f"\nthe no-op read on {hosts[0].name}, one SSH command, its parts timed by the server's shell:")
    for label, secs in parts[:16]:
        print(f"  {label:40} {secs:6.2f}")
    print()
    print(f"{'':30} {'fresh':>8} {'no-op':>8}")
    print(f"{'wall time (s)':30} {fresh_s:8.1f} {noop_s:8.1f}")
    print(f"{'wall time, no-op settled (s)':30} {'':8} {settled_s:8.1f}"
          f"   (SSH commands: {sum(sum(r.commands.values()) for r in settled)})")
    print(f"{'control CPU-s per host':30} {fresh_cpu / n:8.2f} {noop_cpu / n:8.2f}")
    print(f"{'control peak RSS growth (MB)':30} {fresh_rss:8.1f} {noop_rss:8.1f}"
          f"   (process base {base_mb:.0f} MB)")
    if args.clones:
        took, _, cpu, rss = clone_run
        print(f"{args.clones} aliases at once (dry run): {took:.1f}s wall, control side "
              f"{cpu / args.clones:.2f} CPU-s and {rss / args.clones:.1f} MB peak RSS growth per host")
    for f, o in zip(fresh, noop, strict=True):
        print(f"\n{f.host}: seconds and SSH commands per step")
        print(f"  {'step':20} {'fresh s':>8} {'cmds':>5} {'no-op s':>8} {'cmds':>5}  no-op status")
        status = {r.step: r.status for r in o.results}
        for step in [runner.READ_AHEAD, *steps.SORTIE6, "cleanup"]:
            fs, os_ = f.step_seconds.get(step), o.step_seconds.get(step)
            fc, oc = f.commands.get(step, 0), o.commands.get(step, 0)
            if fs is None and os_ is None and not (fc or oc):
                continue
            print(f"  {step:20} {fs or 0:8.1f} {fc:5d} {os_ or 0:8.1f} {oc:5d}  {status.get(step, '')}")
        print(f"  {'total':20} {sum(f.step_seconds.values()):8.1f} {sum(f.commands.values()):5d} "
              f"{sum(o.step_seconds.values()):8.1f} {sum(o.commands.values()):5d}")
        print(f"  bytes uploaded (SFTP): fresh {f.bytes_uploaded}, no-op {o.bytes_uploaded}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
