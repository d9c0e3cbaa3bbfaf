"""Fleet benchmark: what fifty hosts cost the control machine, with no VM (issue 33 §4).

    .venv/bin/python bench/fleet_bench.py [--hosts 50] [--parallel 10]

Figures only, no pass/fail. Every host is an alias of ONE loopback SSH server (bench/loopback_sshd.py, its
own process, so its CPU is not counted) that accepts the key and answers every command with nothing: there is
no sshd on this machine to reach fifty times, and no Debian behind it. Measured on this process alone (CPU:
user+system of all its threads; memory: its resident set) for each phase a deploy goes through:
1. load hosts.yml (N hosts, a group) and resolve `-H 'bot-*'` and `-H group:fleet`;
2. the pre-flight: each host's secrets and its full render (every file deploy-configs would send); then the
   render with the web password's bcrypt hash, as deploy-configs does when the server's hash does not match;
3. SSH: connect, host-key check, log in, one command, N hosts, `--parallel` at once;
4. `sortie6 --dry-run` through the real runner: connect, the one read of every step's state, each step's
   plan for a host with nothing installed (what it would install, the files it would send, with their diffs),
   and the recap. The firewall step fails there (no ufw on the empty host) and verify's checks all fail
   quickly; deploy-configs' plan includes the bcrypt hash of phase 2 (no hash on the host to keep).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.config.render import render_host  # noqa: E402
from fabfile.config.secrets import load_secrets  # noqa: E402
from fabfile.config.selection import select  # noqa: E402
from fabfile.deploy import runner, steps  # noqa: E402
from fabfile.ssh.connection import connect  # noqa: E402

HOSTS_YML = """\
defaults:
  ssh: {{port: {port}, key: {key}, host_key: "{pin}", user: bench}}
  receivers:
    email: {{to: [oncall@example.test], from: am@example.test, smarthost: "smtp.example.test:587",
             auth_username: am@example.test}}
groups:
  fleet: [{names}]
hosts:
{hosts}
"""


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(label: str, n: int, fn: Callable[[], object]) -> object:
    """Run fn once; print wall seconds, CPU ms per host and the resident set before and after."""
    rss0, cpu0, t0 = _rss_mb(), _cpu(), time.monotonic()
    result = fn()
    wall, cpu, rss1 = time.monotonic() - t0, _cpu() - cpu0, _rss_mb()
    print(f"  {label:46} wall {wall:6.2f}s  CPU {cpu * 1000 / n:7.1f} ms/host  "
          f"RSS {rss0:5.0f} -> {rss1:5.0f} MB ({(rss1 - rss0) * 1024 / n:+6.0f} KB/host)")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=runner.DEFAULT_PARALLEL)
    args = ap.parse_args()
    n = args.hosts
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    server_key, client_key = tmp / "server_key", tmp / "client_key"
    paramiko.ECDSAKey.generate().write_private_key_file(str(server_key))
    paramiko.ECDSAKey.generate().write_private_key_file(str(client_key))
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loopback_sshd.py")),
                               str(server_key)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port, pin = server.stdout.readline().split()
        names = [f"bot-{i:02}" for i in range(1, n + 1)]
        (tmp / "hosts.yml").write_text(HOSTS_YML.format(
            port=port, key=client_key, pin=pin, names=", ".join(names),
            hosts="".join(f"  {a}: {{address: 127.0.0.1}}\n" for a in names)))
        os.environ.update(ROSEY_SMTP_PASSWORD="bench-pw-1", ROSEY_WEB_PASSWORD="bench-pw-2")
        print(f"{n} hosts (aliases of one loopback SSH server, port {port}), --parallel {args.parallel}, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; process RSS at start "
              f"{_rss_mb():.0f} MB")
        inv = measure("1. load hosts.yml", n, lambda: load_inventory(tmp / "hosts.yml"))
        measure("1. resolve -H 'bot-*' and -H group:fleet", n,
                lambda: (select(inv, "bot-*"), select(inv, "group:fleet")))
        hosts = select(inv, "bot-*").hosts
        _, problems = measure("2. pre-flight: secrets, render every file", n,
                              lambda: runner.preflight(inv, hosts))
        if problems:
            print(f"  pre-flight problems: {problems[0]}")
            return 1
        secrets = {h.name: load_secrets(inv, h) for h in hosts}
        measure("2. render with the bcrypt hash (a fresh host)", n,
                lambda: [render_host(inv, h, secrets[h.name]) for h in hosts])

        def login(h) -> int:  # noqa: ANN001
            conn = connect(h)
            try:
                return conn.run("true", hide=True, warn=True).exited
            finally:
                conn.close()

        def logins() -> list[int]:
            with ThreadPoolExecutor(args.parallel) as pool:
                return list(pool.map(login, hosts))

        codes = measure("3. SSH connect, host key, login, 1 command", n, logins)
        print(f"     {sum(c == 0 for c in codes)} of {n} logged in and ran it")
        out, reports = io.StringIO(), []
        measure("4. sortie6 --dry-run (read, plan each step)", n,
                lambda: runner.run(inv, hosts, steps.named(steps.SORTIE6), dry_run=True, stream=out,
                                   reports_out=reports, parallel=args.parallel))
        cmds = sorted(sum(r.commands.values()) for r in reports)
        print(f"     SSH commands per host: {cmds[0]}-{cmds[-1]}; what {hosts[0].name} was told "
              "(each host alike):")
        for ln in out.getvalue().splitlines():
            if ln.startswith(f"[{hosts[0].name}] ") and not ln.startswith(f"[{hosts[0].name}]     "):
                print(f"       {ln[:100]}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of this process: {peak:.0f} MB")
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
