"""The measured floor of a fresh deploy on a lab host, beside sortie6 on the same guest, taking turns.

    .venv/bin/python bench/deploy_floor.py [--host lab] [--pairs 3]

The floor is the work a fresh deploy cannot skip, written by hand as ONE root script with nothing of ours
around it: no reads, no decisions, no staging, no deploy lock, no version marks, no rollback, no reports.
It fetches both releases at once, checks their sha256 against the releases' sha256sums.txt, unpacks both at
once, starts all four binaries' `--version` at once, puts the releases, links, users, data dirs, configs
(this inventory's, rendered here before the clock starts) and units in place, runs the four config checks at
once, enables and starts both services, and then waits, polling every 0.1 s, for both `/-/healthy` and for
Prometheus' first sample of the bot, with ufw's rules and `enable` (ufw's own one process, as the firewall
step runs it) beside that wait. The clock covers the SSH login, the root shell and that script.

Each pair restores the guest's golden snapshot (a clean Debian guest) before each of the two runs: the floor
script first, then `sortie6` through the same runner the CLI uses. Prints each phase of the floor script as
the guest's own clock saw it, and for both runs the seconds from Prometheus' start to its first sample of
the bot: that wait (5-25 s: discovery and the scrape manager's 5 s ticks, then the target's fixed phase in
the 15 s interval) is Prometheus' schedule, so the gap between the two runs is what the tool itself costs.
Run it under the lab lock (`flock /work/lab.lock ...`). No assertions: figures only.
"""

from __future__ import annotations

import argparse
import base64
import io
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy_bench import first_scrape  # noqa: E402

from fabfile.config import checks, layout, render  # noqa: E402
from fabfile.config.inventory import load_inventory  # noqa: E402
from fabfile.config.secrets import load_secrets, load_secrets_issuing  # noqa: E402
from fabfile.config.settings import HostSettings  # noqa: E402
from fabfile.deploy import runner, steps, ufw_batch  # noqa: E402
from fabfile.deploy import ufw_plan as ufw  # noqa: E402
from fabfile.deploy.steps.configs import targets  # noqa: E402
from fabfile.deploy.steps.install import SUMS  # noqa: E402
from fabfile.facts import firewall as ufw_facts  # noqa: E402
from fabfile.lab.settings import lab_settings  # noqa: E402
from fabfile.lab.vm import LabVM  # noqa: E402
from fabfile.ssh import transport  # noqa: E402
from fabfile.ssh.connection import connect  # noqa: E402
from fabfile.ssh.webauth import curl_config, web_get_fn  # noqa: E402

PHASE = "@@phase"
SSH_PORT_IN_GUEST = 22  # the lab dials a forwarded port; ufw must keep the guest's own sshd port open


def _put(path: str, data: bytes, owner: str, group: str, mode: int) -> str:
    q = shlex.quote
    return (f"base64 -d > {q(path)} <<'ROSEY_FLOOR_FILE'\n{base64.b64encode(data).decode()}\n"
            f"ROSEY_FLOOR_FILE\nchown {q(owner)}:{q(group)} {q(path)}; chmod {mode:04o} {q(path)}")


def floor_script(inventory, host: HostSettings) -> str:
    """The essential work of a fresh deploy of `host`, as one root script (its phases marked on stdout)."""
    q = shlex.quote
    secrets = load_secrets_issuing(inventory, host)  # it places the files itself: make the certificates
    rendered = render.render_host(inventory, host, secrets)
    lines = ["set -eu", "umask 022", f'T() {{ echo "{PHASE} $1 $EPOCHREALTIME"; }}', "T begin",
             'cfg=$(mktemp); cat > "$cfg"', 'w=$(mktemp -d /tmp/rosey-floor.XXXXXX); cd "$w"',
             web_get_fn(host),
             'until_ok() { for _ in $(seq 600); do "$@" && return 0; sleep 0.1; done; return 1; }']
    rel, names = {}, {}
    for s in layout.SERVICES:
        comp = getattr(host, s)
        names[s], rel[s] = comp.archive_name(s), layout.release_dir(host, s)
        url = comp.url().rstrip("/")
        lines += [f"curl -fsS -o {s}.tgz {q(f'{url}/{names[s]}.tar.gz')} & f{s}=$!",
                  f"curl -fsS -o {s}.sums {q(f'{url}/{SUMS}')} & s{s}=$!"]
    lines += [f"wait $f{s}; wait $s{s}" for s in layout.SERVICES] + ["T fetched"]
    lines.append('unpack() { [ "$(sha256sum "$1.tgz" | cut -d" " -f1)" = '
                 '"$(awk -v a="$2.tar.gz" \'$2==a || $2=="*"a {print $1}\' "$1.sums")" ] && mkdir "x$1" && '
                 'tar -xzf "$1.tgz" -C "x$1" --no-same-owner; }')
    lines += [f"unpack {s} {q(names[s])} & u{s}=$!" for s in layout.SERVICES]
    lines += [f"wait $u{s}" for s in layout.SERVICES] + ["T unpacked"]
    bins = [(s, b) for s in layout.SERVICES for b in layout.BINARIES[s]]
    lines += [f"( x{s}/{q(names[s])}/{b} --version 2>&1 | head -n1 > {b}.v ) & v{i}=$!"
              for i, (s, b) in enumerate(bins)]
    lines += [f"wait $v{i}; grep -Eq {q('version ' + getattr(host, s).version.replace('.', '[.]'))} {b}.v"
              for i, (s, b) in enumerate(bins)] + ["T versions"]
    for s in layout.SERVICES:
        user = layout.service_user(s)
        lines += [f"mkdir -p {q(rel[s].rsplit('/', 1)[0])}",
                  f"mv x{s}/{q(names[s])} {q(rel[s])} && chown -R root:root {q(rel[s])}",
                  *(f"ln -sfn {q(rel[s] + '/' + b)} {q(layout.binary_path(b))}" for b in layout.BINARIES[s]),
                  f"groupadd --system {q(user)}",
                  f"useradd --system --gid {q(user)} --no-create-home --home-dir /nonexistent "
                  f"--shell /usr/sbin/nologin {q(user)}",
                  f"install -d -o {q(user)} -g {q(user)} -m 0750 {q(layout.data_dir(host, s))}"]
    files = targets(host, rendered)
    lines += [f"mkdir -p {' '.join(sorted({q(t.path.rsplit('/', 1)[0]) for t in files}))}"]
    lines += [_put(t.path, t.data, t.owner, t.group, t.mode) for t in files] + ["T installed"]
    p = {n: layout.remote_path(host, n) for n in layout.CONFIG_FILES}
    chks = checks.check_commands(p["prometheus.yml"], p["alert_rules.yml"], p["web.yml"],
                                 p["alertmanager.yml"], promtool=layout.binary_path("promtool"),
                                 amtool=layout.binary_path("amtool"))
    lines += [f"{c.shell()} >/dev/null & c{i}=$!" for i, c in enumerate(chks)]
    lines += [f"wait $c{i}" for i in range(len(chks))] + ["T checked"]
    units = [f"{s}.service" for s in layout.SERVICES]
    lines += [_put(layout.remote_path(host, u), rendered.files[u].encode(), "root", "root", 0o644)
              for u in units]
    lines += [f"systemctl enable --quiet --no-reload {' '.join(units)}", f"systemctl start {' '.join(units)}",
              "T started"]
    fresh = ufw_facts.UfwState(active=False, default_incoming="DROP", added=())
    fw = ufw.plan(host, fresh, (SSH_PORT_IN_GUEST,))
    lines += ["( set -e", ufw_batch.script(fw.commands()), ') & fw=$!']
    lines += [f'until_ok web_get {getattr(host, s).port} /-/healthy -fsS -o /dev/null -K "$cfg"'
              for s in layout.SERVICES] + ["T healthy"]
    # the bot's target with a successful scrape: `up` has no sample before the first one
    query = q('query=count(up{job="rosey-bot"} == 1)')
    lines += ["scraped() { web_get " + str(host.prometheus.port) + ' /api/v1/query -fsS -K "$cfg" -G '
              f"--data-urlencode {query} | grep -q '\"value\"'; }}",
              "until_ok scraped", "T scraped", "wait $fw", "T firewall", 'cd /; rm -rf "$w" "$cfg"']
    return "\n".join(lines) + "\n"


def run_floor(inventory, host: HostSettings, script: str) -> tuple[float, list[tuple[str, float]]]:
    """(wall seconds from before the SSH login to the script's end, [(phase, guest seconds since begin)])."""
    conn = connect(host)
    t0 = time.monotonic()
    try:
        res = transport.run(conn, script, what="floor script", timeout=600,
                         stdin=curl_config(host, load_secrets(inventory, host)))
    finally:
        took = time.monotonic() - t0
        conn.close()
    marks = [ln.split()[1:] for ln in res.stdout.splitlines() if ln.startswith(PHASE)]
    begin = float(marks[0][1])
    return took, [(name, float(at) - begin) for name, at in marks]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="lab")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    inventory = load_inventory()
    host = inventory.host(args.host)
    script = floor_script(inventory, host)  # rendered (bcrypt included) before any clock starts
    vm = LabVM(lab_settings(args.host))
    rows = []
    try:
        for n in range(1, args.pairs + 1):
            vm.down()
            vm.up(fresh=False, log=lambda m: None)
            took, phases = run_floor(inventory, host, script)
            floor_scrape = first_scrape(inventory, host)
            vm.down()
            vm.up(fresh=False, log=lambda m: None)
            reports: list[runner.HostReport] = []
            t0 = time.monotonic()
            code = runner.run(inventory, [host], steps.named(steps.SORTIE6), stream=io.StringIO(),
                              reports_out=reports)
            deploy = time.monotonic() - t0
            deploy_scrape = first_scrape(inventory, host)
            print(f"pair {n}: floor {took:5.1f} s (first scrape {floor_scrape:4.1f} s after the start); "
                  "sortie6 "
                  f"{deploy:5.1f} s, exit {code} (first scrape {deploy_scrape:4.1f} s after the start)")
            print("  floor phases, guest seconds since the script began: "
                  + ", ".join(f"{name} {at:.1f}" for name, at in phases[1:]), flush=True)
            rows.append((took, floor_scrape, deploy, deploy_scrape))
    finally:
        vm.down()
    if rows:
        mean = [sum(r[i] for r in rows) / len(rows) for i in range(4)]
        print(f"\nmean of {len(rows)}: floor {mean[0]:.1f} s (first scrape +{mean[1]:.1f} s), "
              f"sortie6 {mean[2]:.1f} s (first scrape +{mean[3]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
