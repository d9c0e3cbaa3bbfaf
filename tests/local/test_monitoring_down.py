"""Two 'hosts' of one cluster, real binaries on loopback.

- `--scenario monitoring-down`: host A's Prometheus and Alertmanager are stopped (real processes killed),
  peer B's real Prometheus fires MonitoringPeerDown{peer="a"} and B's real Alertmanager (gossiping with
  A's) mails it once; A's services are always started again; interrupted runs too.
- `--scenario host-down`'s frame with A's "power" switched by killing all of A at once (SIGKILL, as a
  crash): B mails once; A is powered on again, also when the drill is interrupted. (The real VM power-off is
  tests/lab/test_lab_cluster.py.)
- the bot drill on A while A's Alertmanager is dead: A's Prometheus hands BotDown to B's, which mails it.

Intervals of a second and the deployed rules' expressions with `for: 2s`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from fabfile.alerting.api import free_port, local_apis
from fabfile.config.rules_file import rules_source
from fabfile.config.settings import (
    Alertmanager,
    Cluster,
    Email,
    HostSettings,
    Peer,
    Prometheus,
    Receivers,
    Web,
)
from fabfile.deploy.steps.base import StepContext
from fabfile.drill.runner import report, run_drill
from fabfile.drill.scenarios.bot_down import BotDown
from fabfile.drill.scenarios.host_down import HostDown
from fabfile.drill.scenarios.monitoring_down import MonitoringDown
from fabfile.drill.target import parse_notify_errors
from fabfile.masking import Masker
from tests.helpers import ALERTMANAGER_BIN, PROMETHEUS_BIN
from tests.local.localstack import Smtp, StandInBot


class Node:
    """One 'host': a real Prometheus and Alertmanager we can stop and start like systemd units."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.tmp, self.name = tmp / name, name
        self.tmp.mkdir()
        self.prom, self.am, self.gossip = free_port(), free_port(), free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.argv: dict[str, list[str]] = {}
        self.bot = StandInBot(free_port())

    def start(self, unit: str) -> None:
        if unit in self.procs and self.procs[unit].poll() is None:
            return
        log = open(self.tmp / f"{unit}.log", "a")  # noqa: SIM115 - handed to the child
        self.procs[unit] = subprocess.Popen(self.argv[unit], stdout=subprocess.DEVNULL, stderr=log)

    def stop(self, unit: str) -> None:
        p = self.procs.get(unit)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(15)

    def active(self, unit: str) -> bool:
        return unit in self.procs and self.procs[unit].poll() is None

    def apis(self):
        return local_apis(f"http://127.0.0.1:{self.prom}", f"http://127.0.0.1:{self.am}")


class NodeTarget:
    def __init__(self, node: Node) -> None:
        self.n = node
        self.stopped: list[tuple[str, ...]] = []

    def apis(self):
        return self.n.apis()

    def reconnect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def notify_errors(self, since: float) -> list[str]:
        return parse_notify_errors((self.n.tmp / "alertmanager.log").read_text(errors="replace"))

    def extra_prechecks(self) -> list[str]:
        return []

    def stop_units(self, units: tuple[str, ...]) -> None:
        self.stopped.append(units)
        for u in units:
            self.n.stop(u)

    def start_units(self, units: tuple[str, ...]) -> None:
        for u in units:
            self.n.start(u)

    def unit_active(self, unit: str) -> bool:
        return self.n.active(unit)

    def stop_bot(self) -> None:
        self.n.bot.stop()

    def start_bot(self) -> None:
        self.n.bot.start()

    def bot_active(self) -> bool:
        return self.n.bot.active


def _rules(tmp: Path) -> Path:
    """The deployed MonitoringPeerDown, BotDown and BotRestarting rules, `for: 2s` where they wait."""
    doc = yaml.safe_load(rules_source().read_text())
    wanted = ("MonitoringPeerDown", "BotDown", "BotRestarting")
    rules = [{**r, "for": "2s"} if "for" in r else r
             for g in doc["groups"] for r in g["rules"] if r.get("alert") in wanted]
    assert len(rules) == len(wanted)
    path = tmp / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "peers", "interval": "1s", "rules": rules}]}))
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("mondown")
    smtp = Smtp(free_port())
    smtp.start()
    a, b = Node(tmp, "a"), Node(tmp, "b")
    rules = _rules(tmp)
    am_yml = tmp / "am.yml"
    am_yml.write_text(f"""
global: {{smtp_smarthost: "127.0.0.1:{smtp.port}", smtp_from: am@lab.test, smtp_require_tls: false}}
route: {{receiver: mail, group_by: [alertname, cluster, env], group_wait: 1s, group_interval: 1s,
         repeat_interval: 1h}}
receivers:
  - name: mail
    email_configs: [{{to: ops@lab.test, send_resolved: true}}]
""")
    for me, other in ((a, b), (b, a)):
        scrape = [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{me.prom}"]}]},
                  {"job_name": "rosey-bot", "metrics_path": "/api/metrics",
                   "static_configs": [{"targets": [f"127.0.0.1:{me.bot.port}"], "labels": {"env": "test"}}]}]
        if me is b:  # B watches A (one direction is enough for the drill on A)
            scrape += [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                                             "labels": {"env": "test", "peer": "a"}}]}
                       for job, port in (("peer-prometheus", a.prom), ("peer-alertmanager", a.am))]
        cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                          "external_labels": {"cluster": "rosey-bot"}},
               "rule_files": [str(rules)],
               "alerting": {"alertmanagers": [{"static_configs": [
                   {"targets": [f"127.0.0.1:{me.am}", f"127.0.0.1:{other.am}"]}]}]},
               "scrape_configs": scrape}
        (me.tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        me.argv["prometheus"] = [PROMETHEUS_BIN, f"--config.file={me.tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={me.tmp / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{me.prom}"]
        me.argv["alertmanager"] = [
            ALERTMANAGER_BIN, f"--config.file={am_yml}", f"--storage.path={me.tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{me.am}", f"--cluster.listen-address=127.0.0.1:{me.gossip}",
            f"--cluster.advertise-address=127.0.0.1:{me.gossip}", f"--cluster.peer=127.0.0.1:{other.gossip}",
            "--cluster.peer-timeout=3s"]
        me.bot.start()
        me.start("prometheus")
        me.start("alertmanager")
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                ts = b.apis().prometheus.targets() + a.apis().prometheus.targets()
                if len([t for t in ts if t["health"] == "up"]) == 6:
                    break
            time.sleep(0.5)
        yield a, b, smtp, rules
    finally:
        for n in (a, b):
            for u in ("prometheus", "alertmanager"):
                n.stop(u)
            n.bot.stop()
        smtp.stop()


def _host(name: str, node: Node, peer: Node | None) -> HostSettings:
    h = HostSettings(
        name=name, address="127.0.0.1", env="test", web=Web(basic_auth=False),
        receivers=Receivers(email=Email(to=("ops@lab.test",), sender="am@lab.test",
                                        smarthost="127.0.0.1:25", require_tls=False)),
        prometheus=Prometheus(port=node.prom, scrape_interval="1s", evaluation_interval="1s"),
        alertmanager=Alertmanager(port=node.am, group_wait="1s", group_interval="1s"))
    if peer is not None:
        h = dataclasses.replace(h, cluster=Cluster("rosey", (
            Peer("b", "127.0.0.1", "test", peer.prom, peer.am, peer.gossip, None),)))
    return h


class _Inventory:
    def __init__(self, hosts: dict[str, HostSettings]) -> None:
        self.hosts = hosts
        self.path = Path("hosts.yml")

    def host(self, name: str) -> HostSettings:
        return self.hosts[name]


def _drill(pair, scenario=MonitoringDown, **kw):
    a, b, smtp, rules = pair
    ha, hb = _host("a", a, b), _host("b", b, None)
    lines: list[str] = []
    ctx = StepContext(inventory=_Inventory({"a": ha, "b": hb}), secrets={}, masker=Masker([]),
                      log=lines.append)
    ta, tb = NodeTarget(a), NodeTarget(b)
    r = run_drill(ha, ctx, target=ta, peers={"b": tb}, scenario=scenario(rules),
                  stream=io.StringIO(), tty=False, **kw)
    report(r, lines.append)
    return r, ta, lines


def _mails(smtp: Smtp, word: str) -> list[str]:
    return [s for s in smtp.subjects() if "MonitoringPeerDown" in s and word in s]


def test_the_peer_notifies_once_and_the_monitoring_comes_back(pair) -> None:
    a, b, smtp, _ = pair
    before = len(smtp.mails)
    r, ta, lines = _drill(pair)
    assert r.ok, "\n".join(lines)
    assert ta.stopped == [("prometheus", "alertmanager")]  # never the bot
    assert a.active("prometheus") and a.active("alertmanager")
    assert requests.get(f"http://127.0.0.1:{a.am}/-/healthy", timeout=5).ok
    assert any("detection (stop → notified)" in x for x in lines)
    # one alert for the peer, whichever of its two components failed first or came back first: one
    # firing mail and one resolved, never a partial update between them and never a second member's copy
    assert _states(smtp, before, "MonitoringPeerDown") == ["[FIRING:1]", "[RESOLVED]"]
    print("\n".join(lines))


def _states(smtp: Smtp, before: int, name: str, settle: float = 8.0) -> list[str]:
    """Subject prefixes of `name`'s mails since `before`, after a quiet spell: a late copy would show."""
    time.sleep(settle)
    return [s.split()[0] for s in smtp.subjects()[before:] if name in s]


def _settle(pair, timeout: float = 60) -> None:
    """Both Alertmanagers ready and B seeing A's monitoring up: the state each drill starts from."""
    a, b, _, _ = pair
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(Exception):
            peers = [t for t in b.apis().prometheus.targets() if t["labels"]["job"].startswith("peer-")]
            if (a.apis().alertmanager.ready() and b.apis().alertmanager.ready() and len(peers) == 2
                    and all(t["health"] == "up" for t in peers)
                    and not b.apis().prometheus.alerts("MonitoringPeerDown")):
                return
        time.sleep(0.5)
    raise AssertionError("the pair did not settle")


def test_the_bot_drill_with_its_own_alertmanager_dead_is_delivered_by_the_peer(pair) -> None:
    a, b, smtp, _ = pair
    before = len(smtp.mails)
    a.stop("alertmanager")
    try:
        r, ta, lines = _drill(pair, BotDown)
        text = "\n".join(lines)
        print(text)
        assert r.ok, text
        assert "WARNING: a's Alertmanager does not answer; its Prometheus also sends to b's" in text
        assert "drill passed, delivered by b's Alertmanager" in r.message
        assert any("a's Alertmanager did not answer during this drill" in x for x in r.details)
        assert a.bot.active and not a.active("alertmanager")  # the bot back; the monitoring left as found
        assert _states(smtp, before, "BotDown") == ["[FIRING:1]", "[RESOLVED]"]
    finally:
        a.start("alertmanager")
        _settle(pair)


def _ctrl_c_while_waiting(monkeypatch) -> None:
    """Ctrl-C once the thing is broken, while the drill waits for the notification."""
    from fabfile.drill import runner

    def ctrl_c(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.Drill, "deliver", ctrl_c)


def test_an_interrupted_drill_still_starts_the_monitoring(pair, monkeypatch) -> None:
    a, b, smtp, _ = pair
    _ctrl_c_while_waiting(monkeypatch)
    r, ta, lines = _drill(pair)
    assert not r.ok and "interrupted" in r.message
    assert ta.stopped == [("prometheus", "alertmanager")]
    assert a.active("prometheus") and a.active("alertmanager"), "\n".join(lines)
    assert any("active and healthy again" in x for x in r.details), r.details


def test_the_bot_drill_refuses_when_no_alertmanager_answers(pair) -> None:
    a, b, _, _ = pair
    a.stop("alertmanager")
    b.stop("alertmanager")
    try:
        r, ta, lines = _drill(pair, BotDown)
        assert not r.ok
        assert "Alertmanager /-/healthy does not answer (nor does any peer's)" in r.message
        assert a.bot.active and r.bot_active is None  # refused before anything was touched
    finally:
        a.start("alertmanager")
        b.start("alertmanager")
        _settle(pair)


class PowerSwitch:
    """A's plug: off SIGKILLs A's Prometheus and Alertmanager and stops its bot, as a crash takes them all at
    once; on starts them again (a boot brings up enabled units)."""

    def __init__(self, node: Node) -> None:
        self.n, self.offs, self.ons = node, 0, 0

    def power_off(self) -> bool:
        self.offs += 1
        for p in self.n.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(15)
        self.n.bot.stop()
        return True

    def power_on(self) -> float:
        self.ons += 1
        started = time.monotonic()
        self.n.bot.start()
        for unit in ("prometheus", "alertmanager"):
            self.n.start(unit)
        return time.monotonic() - started


def test_host_down_the_peer_mails_once_and_the_host_is_powered_on(pair) -> None:
    a, b, smtp, _ = pair
    switch = PowerSwitch(a)
    before = len(smtp.mails)
    r, ta, lines = _drill(pair, lambda rules: HostDown(rules, switch_for=lambda h: switch))
    assert r.ok, "\n".join(lines)
    assert switch.offs == 1 and switch.ons >= 1
    assert a.active("prometheus") and a.active("alertmanager") and a.bot.active
    assert "after the power-off" in r.message
    assert _states(smtp, before, "MonitoringPeerDown") == ["[FIRING:1]", "[RESOLVED]"]
    _settle(pair)


def test_an_interrupted_host_down_still_powers_the_host_on(pair, monkeypatch) -> None:
    a, b, smtp, _ = pair
    _ctrl_c_while_waiting(monkeypatch)
    switch = PowerSwitch(a)
    r, ta, lines = _drill(pair, lambda rules: HostDown(rules, switch_for=lambda h: switch))
    assert not r.ok and "interrupted" in r.message
    assert switch.offs == 1 and switch.ons == 1  # powered on by make_whole, the restore never came
    assert a.active("prometheus") and a.active("alertmanager") and a.bot.active, "\n".join(lines)
    assert any("active and healthy again" in x for x in r.details), r.details
    monkeypatch.undo()
    _settle(pair)
