"""Two real Alertmanagers gossiping on loopback: what the cluster design relies on, with the real binary.

- verify's cluster check reads the real /api/v2/status (`cluster.peers` lists every member, itself included);
- both Alertmanagers get the same alert (as every Prometheus of a cluster sends to every Alertmanager) and the
  SMTP catcher receives ONE mail; the drill's cluster-wide counters say one notification, not two;
- with one Alertmanager killed, the other still delivers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import time

import pytest
import requests

from fabfile.alerting.api import free_port, local_apis
from fabfile.config.settings import Cluster, Peer
from fabfile.deploy.steps import verify
from fabfile.drill.notifications import NotificationWatch
from tests.helpers import ALERTMANAGER_BIN, fixture_inventory
from tests.local.localstack import Smtp

PEER_TIMEOUT = "3s"  # Alertmanager's default is 15s: the second member waits that long before it would send


class _Target:
    def __init__(self, url: str) -> None:
        self.url = url

    def apis(self):
        return local_apis("http://127.0.0.1:1", self.url)

    def reconnect(self) -> None:
        pass

    def notify_errors(self, since: float) -> list[str]:
        return []


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("amcluster")
    smtp = Smtp(free_port())
    smtp.start()
    (tmp / "am.yml").write_text(f"""
global: {{smtp_smarthost: "127.0.0.1:{smtp.port}", smtp_from: am@lab.test, smtp_require_tls: false}}
route: {{receiver: mail, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: mail
    email_configs: [{{to: ops@lab.test, send_resolved: true}}]
""")
    web, gossip = [free_port(), free_port()], [free_port(), free_port()]
    procs = []
    for i in (0, 1):
        (tmp / f"d{i}").mkdir()
        procs.append(subprocess.Popen(
            [ALERTMANAGER_BIN, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / f'd{i}'}",
             f"--web.listen-address=127.0.0.1:{web[i]}",
             f"--cluster.listen-address=127.0.0.1:{gossip[i]}",
             f"--cluster.advertise-address=127.0.0.1:{gossip[i]}",
             f"--cluster.peer=127.0.0.1:{gossip[1 - i]}", f"--cluster.peer-timeout={PEER_TIMEOUT}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp / f"am{i}.log", "w")))  # noqa: SIM115
    urls = [f"http://127.0.0.1:{p}" for p in web]
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                st = [requests.get(f"{u}/api/v2/status", timeout=2).json()["cluster"] for u in urls]
                if all(s["status"] == "ready" and len(s["peers"]) == 2 for s in st):
                    break
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.5)
        yield {"urls": urls, "gossip": gossip, "procs": procs, "smtp": smtp}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
        smtp.stop()


def _host(gossip: list[int]):
    """A clustered host as the inventory would build it, on loopback (the inventory refuses loopback)."""
    h = fixture_inventory().host("lab")
    peer = Peer("lab2", "127.0.0.1", "test", 9090, 9093, gossip[1], "admin")
    return dataclasses.replace(h, alertmanager=dataclasses.replace(h.alertmanager, cluster_port=gossip[0]),
                               cluster=Cluster("rosey", (peer,)))


def _status(url: str) -> str:
    return requests.get(f"{url}/api/v2/status", timeout=5).text + "\n200"


def _post(urls: list[str], name: str) -> None:
    alert = [{"labels": {"alertname": name, "severity": "critical"}}]
    for u in urls:
        with contextlib.suppress(requests.RequestException):  # a dead member: Prometheus fails that send too
            requests.post(f"{u}/api/v2/alerts", json=alert, timeout=5).raise_for_status()


def _mails(smtp: Smtp, name: str) -> int:
    return sum(1 for s in smtp.subjects() if name in s)


def test_verify_sees_the_real_two_member_cluster(pair) -> None:
    check = verify.check_cluster(_host(pair["gossip"]), {"am_status": _status(pair["urls"][0])})
    assert check.passed, check.line()
    assert check.detail.startswith("rosey: ready, 2/2 peers")


def test_both_members_get_the_alert_one_mail_goes_out_and_the_survivor_still_sends(pair) -> None:
    urls, smtp = pair["urls"], pair["smtp"]
    first, others = _Target(urls[0]), (_Target(urls[1]),)
    watch = NotificationWatch(first, str, 10.0, others)
    base = watch.snapshot(first.apis())
    _post(urls, "ClusterOnce")
    time.sleep(12)  # group_wait 1s + the second member's turn (peer-timeout 3s) + slack: a duplicate is in
    assert _mails(smtp, "ClusterOnce") == 1, smtp.subjects()
    now = watch.snapshot(first.apis())
    assert watch.delta(now, base, "email").succeeded_requests == 1  # the cluster-wide count the drill uses

    pair["procs"][0].send_signal(signal.SIGKILL)  # the first member dies without leaving the cluster
    pair["procs"][0].wait(10)
    _post(urls, "ClusterSurvivor")
    end = time.monotonic() + 30
    while time.monotonic() < end and _mails(smtp, "ClusterSurvivor") < 1:
        time.sleep(0.5)
    assert _mails(smtp, "ClusterSurvivor") == 1, smtp.subjects()
    check = verify.check_cluster(_host(pair["gossip"]), {"am_status": _status(urls[1])})
    assert "ready" in check.detail  # the survivor still reports; the dead member drops out after a while
