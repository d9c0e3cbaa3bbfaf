"""Two lab VMs as one monitoring cluster (issue 11), through the real CLI, on real systemd/ufw/gossip.

Both hosts from clean guests, made one cluster as `inv lab.cluster-inventory` does it (private addresses as
`peer_address`, Prometheus 3.5.3 and Alertmanager 0.33.1 (the recommended line) from the lab's archives,
group_interval 30s, mail to the shared catcher on this machine so a duplicate would be seen) plus a heartbeat
URL pointing at a ping counter on this machine. Then, in order: both converge and see each other and a re-run
changes nothing; `inv status` shows both; the bot drill mails once per receiver; with lab's Alertmanager dead
the bot drill on lab is delivered once by lab2's (lab's Prometheus sends to every Alertmanager of the
cluster); the gossip port answers the peer and nobody else; `--scenario monitoring-down` and `--scenario
host-down` on one host are reported by the other; the heartbeat beat all along while one Alertmanager lived
and stops when both are gone.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from secrets import token_hex
from types import SimpleNamespace

import pytest

from fabfile.alerting.api import local_apis
from fabfile.config.secrets import env_var, load_secrets
from fabfile.lab.cluster_inventory import write_cluster_inventory
from tests import helpers
from tests.lab_fixtures import lab_inventory

CRITICAL = "🚨 [CRITICAL] Rosey Bot: "
# how this module causes the rules it proves, in the words of the README's coverage table
RULE_CAUSES = {
    "BotDown": "`inv test-alert` on a cluster of two, then with one Alertmanager dead (mail)",
    "MonitoringPeerDown": "`inv test-alert --scenario monitoring-down` and `host-down` (the VM powered off)",
    "Watchdog": "the heartbeat while one Alertmanager lives, and its silence when both are gone",
}
BEAT = 20.0  # the heartbeat's repeat_interval in this test (seconds): a ping at every group flush
GROUP_INTERVAL = 30.0  # the shortest a cluster of two accepts (two turns of --cluster.peer-timeout)


class HeartbeatSink:
    """A healthchecks-style ping URL on this machine's loopback (the VMs reach it at 10.0.2.2): records
    when each ping came and for which alerts."""

    def __init__(self) -> None:
        self.pings: list[tuple[float, list[str]]] = []
        self.token = token_hex(8)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                names = []
                with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                    names = [a["labels"]["alertname"] for a in json.loads(body).get("alerts", [])]
                if self.path.endswith(sink.token):
                    sink.pings.append((time.monotonic(), names))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://10.0.2.2:{self.server.server_address[1]}/ping/{self.token}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def between(self, start: float, end: float) -> list[float]:
        return [t for t, _ in self.pings if start <= t < end]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def pair(lab_host, lab_host2, tmp_path_factory):
    """The pair as `inv lab.cluster-inventory` sets it up for users, with the heartbeat on."""
    path = tmp_path_factory.mktemp("cluster") / "cluster.yml"
    written = write_cluster_inventory(lab_inventory(), [lab_host.name, lab_host2.name], path,
                                      cluster="rosey", heartbeat=f"{BEAT:g}s")
    for h in (lab_host, lab_host2):
        assert written.host(h.name).alertmanager.group_interval == f"{GROUP_INTERVAL:g}s"
    sink = HeartbeatSink()
    env = {"ROSEY_INVENTORY": str(path), env_var("heartbeat_url"): sink.url}
    both = f"{lab_host.name},{lab_host2.name}"
    lab_host.clear_shared_mails()
    first = helpers.inv("sortie6", "-H", both, env=env, timeout=1800)
    inv = lab_inventory()
    password = load_secrets(inv, inv.host(lab_host.name))["web_password"]
    auth = (inv.host(lab_host.name).web.username, password)
    apis = {h.name: local_apis(h.url(9090, ""), h.url(9093, ""), auth, timeout=15)
            for h in (lab_host, lab_host2)}
    p = SimpleNamespace(a=lab_host, b=lab_host2, env=env, both=both, first=first, apis=apis,
                        secrets=(password, sink.url), sink=sink, marks={"converged": time.monotonic()})
    yield p
    sink.close()


def _no_secret(pair, text: str) -> None:
    for value in pair.secrets:
        assert value not in text, "a secret leaked into the output"


def _subjects(pair, name: str) -> list[str]:
    return [m.subject for m in pair.a.shared_mails() if m.subject == CRITICAL + name]


def _wait_mails(pair, name: str, count: int, timeout: float = 240) -> list[str]:
    end = time.monotonic() + timeout
    while len(_subjects(pair, name)) < count and time.monotonic() < end:
        time.sleep(3)
    return _subjects(pair, name)


def _bounds_line(out: str) -> tuple[float, float]:
    m = re.search(r"detection \(stop → notified\): ([\d.]+)s; expected bound: .* = ([\d.]+)s", out)
    assert m, "no detection line in the output"
    return float(m.group(1)), float(m.group(2))


def test_the_pair_converges_as_one_cluster_and_a_rerun_changes_nothing(pair):
    out = pair.first.stdout
    assert pair.first.returncode == 0, out
    for h in (pair.a, pair.b):
        assert f"[{h.name}] verify: ok" in out, out
    assert out.count("PASS  alertmanager cluster: rosey: ready, 2/2 peers") == 2, out
    assert out.count(", gossip over TLS") >= 2, out
    assert out.count("PASS  peer targets: 2/2 up") == 2, out
    for h in (pair.a, pair.b):  # the recommended line, fresh on a clean guest
        built = pair.apis[h.name].prometheus.request("GET", "/api/v1/status/buildinfo").json()["data"]
        assert built["version"].split("+")[0] == "3.5.3", built  # Debian's build says 3.5.3+ds1
        assert pair.apis[h.name].alertmanager.status()["versionInfo"]["version"].split("+")[0] == "0.33.1"
    _no_secret(pair, out)
    again = helpers.inv("sortie6", "-H", pair.both, env=pair.env, timeout=1800)
    assert again.returncode == 0, again.stdout
    assert again.stdout.count("changed=0 failed=0") == 2 and ": changed" not in again.stdout
    _no_secret(pair, again.stdout)


def test_status_on_both_hosts(pair):
    """`inv status` on two hosts at once: each its own row with real values (moved here from the operator
    module, which would deploy the second host only for this)."""
    p = helpers.inv("status", "-H", pair.both, "--json", env=pair.env, timeout=60)
    assert p.returncode == 0, p.stdout
    statuses = json.loads(p.stdout[:len(p.stdout) - len(p.stderr)])
    assert [s["host"] for s in statuses] == [pair.a.name, pair.b.name]
    assert all(s["ok"] and s["values"]["connected"] == 1 for s in statuses), statuses
    table = helpers.inv("status", "-H", pair.both, env=pair.env, timeout=60)
    assert table.returncode == 0 and table.stdout.count("5 now") == 2 and "\x1b" not in table.stdout
    env = lab_inventory().host(pair.b.name).env
    assert f"{pair.b.name} ({env})" in table.stdout
    _no_secret(pair, p.stdout + table.stdout)


@pytest.mark.proves("BotDown")
def test_the_bot_drill_on_a_cluster_mails_once_per_receiver(pair):
    """Both Alertmanagers get BotDown from lab's Prometheus; gossip lets only one of them send."""
    pair.a.clear_shared_mails()
    r = helpers.inv("test-alert", "-H", pair.a.name, env=pair.env, timeout=1200)
    assert r.returncode == 0, r.stdout
    _no_secret(pair, r.stdout)
    time.sleep(GROUP_INTERVAL + 20)  # a second member's copy would come one peer-timeout (15 s) later
    mails = [m for m in pair.a.shared_mails() if m.subject == CRITICAL + "BotDown"]
    assert len(mails) == 2, [m.subject for m in pair.a.shared_mails()]  # one firing, one resolved
    assert "[RESOLVED]" not in mails[0].body and "[RESOLVED]" in mails[1].body
    assert all(m.recipients == ["oncall@lab.test"] for m in mails)


def _cluster_of_two(pair, timeout: float = 120) -> list:
    end = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            peers = (pair.apis[pair.a.name].alertmanager.status().get("cluster") or {}).get("peers") or []
            if len(peers) == 2 or time.monotonic() > end:
                return peers
        if time.monotonic() > end:
            return []
        time.sleep(3)


@pytest.mark.proves("BotDown")
def test_the_bot_drill_with_its_alertmanager_dead_is_delivered_by_the_survivor(pair):
    """lab's Alertmanager dead: the drill on lab says so and goes on; lab's Prometheus hands BotDown to lab2's
    Alertmanager, which mails the firing and the resolve once each. lab's Alertmanager is left to us."""
    pair.a.clear_shared_mails()
    pair.a.run("sudo systemctl stop alertmanager", check=True)
    pair.marks["a-am-stopped"] = time.monotonic()
    try:
        r = helpers.inv("test-alert", "-H", pair.a.name, env=pair.env, timeout=1200)
        left_down = pair.a.run("systemctl is-active alertmanager", check=False).stdout.strip()
    finally:
        pair.a.run("sudo systemctl start alertmanager", check=True)
        pair.marks["a-am-started"] = time.monotonic()
    print(r.stdout)
    assert r.returncode == 0, r.stdout
    _no_secret(pair, r.stdout)
    assert (f"WARNING: {pair.a.name}'s Alertmanager does not answer; its Prometheus also sends to "
            f"{pair.b.name}'s") in r.stdout
    assert f"drill passed, delivered by {pair.b.name}'s Alertmanager" in r.stdout
    assert left_down != "active"  # the drill touched the bot only
    detection, bound = _bounds_line(r.stdout)
    print(f"survivor: {pair.b.name} notified {detection:.1f}s after the stop; bound {bound:g}s")
    assert detection <= bound + 15 + 30  # + one peer-timeout turn, + 30 s as every drill test
    assert len(_cluster_of_two(pair)) == 2
    time.sleep(GROUP_INTERVAL)  # lab's Alertmanager is back: a stale copy from it would come by now
    mails = [m for m in pair.a.shared_mails() if m.subject == CRITICAL + "BotDown"]
    assert ["resolved" if "[RESOLVED]" in m.body else "firing" for m in mails] == ["firing", "resolved"]


def _connects(host, address: str, port: int) -> bool:
    code = ("import socket,sys\n"
            "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); print('connected')\n")
    return host.run(f"python3 -c {shlex.quote(code)} {address} {port}", check=False,
                    timeout=30).stdout.strip() == "connected"


def _blocked_from_control_machine(host) -> int:
    log = host.run("sudo journalctl -k --no-pager -o cat | grep -F '[UFW BLOCK]' | grep -F 'SRC=10.0.2.2 ' "
                   "| grep -cF 'DPT=9094 '; true", check=False).stdout.strip()
    return int(log or 0)


def test_the_gossip_is_tls_and_answers_the_peer_and_nobody_else(pair):
    assert _connects(pair.b, pair.a.private_address, 9094)
    assert _connects(pair.a, pair.b.private_address, 9094)
    for h in (pair.a, pair.b):  # 0.33.1 on both: gossip_tls auto is on, and the cluster formed over it
        log = h.run("sudo journalctl -u alertmanager -b --no-pager -o cat "
                    "| grep -c 'using TLS for gossip'; true", check=False).stdout.strip()
        assert int(log or 0) >= 1, f"{h.name}: Alertmanager did not start its gossip with TLS"
        assert h.run("sudo ss -Hlun 'sport = :9094'", check=True).stdout.strip() == ""  # no UDP socket
    status = pair.a.run("sudo ufw status", check=True).stdout
    peer = re.escape(pair.b.private_address)
    assert re.search(rf"^9094/tcp\s+ALLOW(?: IN)?\s+{peer}\s*$", status, re.M), status
    assert not re.search(r"^9094/udp", status, re.M), status  # over TLS the gossip is TCP only
    assert not re.search(r"^9094\S*\s+ALLOW(?: IN)?\s+Anywhere", status, re.M), status
    # the gossip only takes a member of this cluster's CA: a TLS client without its certificate is refused
    code = ("import socket,ssl,sys\n"
            "c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE\n"
            "s=socket.create_connection((sys.argv[1],9094),timeout=5)\n"
            "try:\n  t=c.wrap_socket(s); t.send(b'x'); print('accepted' if t.recv(1) else 'closed')\n"
            "except (ssl.SSLError, OSError) as e: print('refused', type(e).__name__)\n")
    out = pair.b.run(f"python3 -c {shlex.quote(code)} {pair.a.private_address}", check=False,
                     timeout=30).stdout.strip()
    assert out.startswith(("refused", "closed")), out
    # this machine reaches the guest from 10.0.2.2, not a peer's address: the guest's ufw drops (and logs) it
    before = _blocked_from_control_machine(pair.a)
    try:
        with socket.create_connection(("127.0.0.1", pair.a.settings.lab.forwards[9094]), timeout=5) as s:
            s.settimeout(10)
            s.recv(16)  # slirp accepted for the guest; the guest never answers
    except OSError:
        pass
    end = time.monotonic() + 30
    while _blocked_from_control_machine(pair.a) <= before and time.monotonic() < end:
        time.sleep(2)
    assert _blocked_from_control_machine(pair.a) > before, "no [UFW BLOCK] for 10.0.2.2 -> 9094 in the guest"


def _peer_down_mails(pair, host: str) -> list:
    return [m for m in pair.a.shared_mails() if "MonitoringPeerDown" in m.subject and host in m.body]


def _ends_resolved(mails: list) -> bool:
    return bool(mails) and "[RESOLVED]" in mails[-1].body


def _settled_peer_down_mails(pair, host: str, timeout: float = 150) -> list:
    """The peer-down mails once the resolve is in the catcher, plus one group_interval for a late copy.
    Waited for, not assumed: the drill judges delivery by Alertmanager's per-integration counters, and
    another group's mail in the same second (e.g. an alert of the dead host expiring) can end its wait
    before ours is out (seen once in host-down: the resolve came after the drill had returned).

    A late firing copy from a rebooted member (see `_firing_then_resolved`) is waited out the same way: its
    resolve comes when the survivor's Prometheus sends the resolved alert again (every minute) and the
    member's next flush, so a second round waits for it within the same bound. The second round runs only
    after a resolve was seen: a missing resolve fails after the first."""
    mails: list = []
    for _ in range(2):  # the resolve; then, if a late firing copy came after it, that copy's resolve
        end = time.monotonic() + timeout
        while not _ends_resolved(_peer_down_mails(pair, host)) and time.monotonic() < end:
            time.sleep(3)
        time.sleep(GROUP_INTERVAL)
        mails = _peer_down_mails(pair, host)
        if _ends_resolved(mails) or not any("[RESOLVED]" in m.body for m in mails):
            break  # settled; or no resolve at all, which a second round would only report later
    return mails


def _firing_then_resolved(mails: list, after_reboot_ok: bool = False) -> None:
    """One firing mail, then its resolve, nothing else: the peer's Prometheus and Alertmanager stop and come
    back in different scrape rounds, and one alert per peer keeps that from splitting into partial updates
    (with one alert per component, a power-off mailed firing, firing:2, a partial resolve and the resolve).

    `after_reboot_ok`: after a power-off the rebooted member's notification log is the one it last wrote to
    disk, and it learns the survivor's only by gossip once it has joined again. If its turn comes first, the
    resolve goes out from both; and if the firing alert (resent by the peer's Prometheus) reaches it in the
    seconds before the rule resolves and the resolved one does not reach it in time, it mails that firing
    and then, once the survivor's Prometheus sends the resolved alert again, its resolve (seen with the
    machine loaded by three VMs: the boot took 164-172 s). Alertmanager's cluster promises at-least-once
    delivery, so those copies are allowed there, and only after the first resolve, which cannot go out
    before the host is back; a firing without its resolve or a partial update never is."""
    states = ["resolved" if "[RESOLVED]" in m.body else "firing" for m in mails]
    if after_reboot_ok and states in (["firing", "resolved", "resolved"],
                                      ["firing", "resolved", "firing", "resolved"]):
        print(f"note: the rebooted Alertmanager sent its own copy too ({states[2:]}): it had not learnt from "
              "the survivor's notification log that the first was sent")
        states = states[:2]
    assert states == ["firing", "resolved"], (states, [m.subject for m in mails])


def _peer_drill(pair, scenario: str) -> str:
    """`inv test-alert -H <b> --scenario <scenario>`: passed, no secret shown, the peer's notification within
    the bound plus one peer-timeout turn (+30 s, as every drill test), one firing and its resolve mailed."""
    pair.a.clear_shared_mails()
    pair.marks[f"b-{scenario}"] = time.monotonic()
    r = helpers.inv("test-alert", "-H", pair.b.name, "--scenario", scenario, env=pair.env, timeout=1500)
    pair.marks[f"b-{scenario}-back"] = time.monotonic()
    print(r.stdout)
    assert r.returncode == 0, r.stdout
    _no_secret(pair, r.stdout)
    assert f"pre-checks passed: {pair.a.name} watches {pair.b.name}" in r.stdout
    detection, bound = _bounds_line(r.stdout)
    print(f"{scenario}: {pair.a.name} notified {detection:.1f}s after the stop; bound {bound:g}s "
          f"(+15s peer-timeout: {bound + 15:g}s)")
    assert detection <= bound + 15 + 30
    mails = _settled_peer_down_mails(pair, pair.b.name)
    _firing_then_resolved(mails, after_reboot_ok=scenario == "host-down")
    for svc in ("prometheus", "alertmanager", "rosey-bot"):  # running again; the bot never stopped by us
        assert pair.b.run(f"systemctl is-active {svc}", check=False).stdout.strip() == "active"
    return r.stdout


@pytest.mark.proves("MonitoringPeerDown")
def test_monitoring_down_on_one_host_is_reported_by_the_other(pair):
    _peer_drill(pair, "monitoring-down")


@pytest.mark.proves("MonitoringPeerDown")
def test_host_down_the_vm_powered_off_is_reported_by_the_other(pair):
    before_boot = pair.b.run("cat /proc/sys/kernel/random/boot_id").stdout
    out = _peer_drill(pair, "host-down")
    assert f"powered off the VM of {pair.b.name}" in out
    assert "BotRestarting will fire there" in out  # the boot restarted the bot: said, not a surprise
    assert pair.b.run("cat /proc/sys/kernel/random/boot_id").stdout != before_boot  # really booted again
    enabled = pair.b.run("systemctl is-enabled prometheus alertmanager", check=False).stdout.split()
    assert enabled == ["enabled", "enabled"]
    # lab2's own Prometheus scrapes its bot again by itself, its TSDB recovered from the crash
    prom = pair.apis[pair.b.name].prometheus
    assert prom.ready()  # the drill waited for /-/ready, not only /-/healthy
    end = time.monotonic() + 120
    while not prom.query('up{job="rosey-bot"} == 1') and time.monotonic() < end:
        time.sleep(5)
    assert prom.query('up{job="rosey-bot"} == 1')
    # ~12 samples since the boot at most; more means the minutes before the power-off survived it
    assert prom.query('count_over_time(up{job="rosey-bot"}[1h]) > 20'), "history lost in the crash"
    # the cluster formed again after the boot
    assert len(_cluster_of_two(pair)) == 2


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 1) for a, b in zip(times, times[1:], strict=False)]


@pytest.mark.proves("Watchdog")
def test_the_heartbeat_beats_while_one_alertmanager_lives_and_stops_with_both(pair):
    sink, m = pair.sink, pair.marks
    assert all(names == ["Watchdog"] for _, names in sink.pings), sink.pings  # nothing else goes there
    limit = BEAT + GROUP_INTERVAL + 15  # one repeat_interval, the next group flush, the send
    # both up (from the converge to the survivor test): one ping per interval — the cluster deduplicates
    both = sink.between(m["converged"], m["a-am-stopped"])
    assert len(both) >= 3, both
    assert all(BEAT - 5 <= g <= limit for g in _gaps(both)), _gaps(both)
    # one Alertmanager up: lab's stopped for the survivor drill, lab2's monitoring stopped, lab2 powered off
    windows = [(m["a-am-stopped"], m["a-am-started"]),
               *((m[f"b-{x}"], m[f"b-{x}-back"]) for x in ("monitoring-down", "host-down"))]
    for start, end in windows:
        one = [start, *sink.between(start, end), end]
        assert len(one) >= 4 and max(_gaps(one)) <= limit, _gaps(one)
    # both Alertmanagers down: the pings stop, so the external service would raise the alarm
    for h in (pair.a, pair.b):
        h.run("sudo systemctl stop alertmanager", check=True)
    stop = time.monotonic()  # both down from here (stopping the first took seconds; the second still sent)
    try:
        time.sleep(limit + 10)  # pings came every ~GROUP_INTERVAL while one lived
        late = [round(t - stop, 1) for t in sink.between(stop + 5, time.monotonic())]
        assert late == [], f"pings after both Alertmanagers stopped: {late}"
    finally:
        for h in (pair.a, pair.b):
            h.run("sudo systemctl start alertmanager", check=True)
    print(f"heartbeat: both up {_gaps(both)}; none in {limit + 10:.0f}s with both down")
