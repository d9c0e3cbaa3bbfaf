"""Clusters: inventory validation, rendered units/configs of clustered hosts, peer secrets, firewall rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.secrets import load_secrets_issuing, required_secrets
from fabfile.deploy import ufw_plan as ufw
from fabfile.deploy.steps import verify as v

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  alertmanager: {version: 0.27.0, group_interval: 30s}
hosts:
  test: {address: test.example.com, peer_address: 10.0.0.1, env: test}
  prod: {address: prod.example.com, peer_address: 10.0.0.2, env: production, web: {username: ops}}
  solo: {address: 127.0.0.1, env: test}
"""
CLUSTER = "clusters:\n  rosey: [test, prod]\n"


def inv(tmp_path: Path, text: str):
    (tmp_path / "hosts.yml").write_text(text)
    return load_inventory(tmp_path / "hosts.yml")


def rendered(tmp_path: Path, alias: str, text: str = BASE + CLUSTER, secrets: str = ""):
    (tmp_path / "secrets.yml").write_text(
        "web_password: shared-pw\nhosts:\n  prod: {web_password: prod-pw-1}\n" + secrets)
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    i = inv(tmp_path, text)
    h = i.host(alias)
    return render.render_host(i, h, load_secrets_issuing(i, h), rules_path=rules), h


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as e:
        inv(tmp_path, text)
    return str(e.value)


@pytest.mark.parametrize(("clusters", "expected"), [
    ("clusters:\n  rosey: [test, prdo]\n",
     "hosts.yml: clusters.rosey: unknown host 'prdo' (did you mean 'prod'?)"),
    ("clusters:\n  a: [test, prod]\n  b: [prod, test]\n",
     "hosts.yml: clusters.b: host 'prod' is already in cluster 'a'; a host belongs to one cluster"),
    ("clusters:\n  rosey: [test]\n", "hosts.yml: clusters.rosey: a cluster needs at least two hosts"),
    ("clusters:\n  rosey: [test, solo]\n", "hosts.yml: hosts.solo.address: host is in cluster 'rosey' but "
     "127.0.0.1 cannot be reached by its peers; set peer_address"),
    ("clusters:\n  rosey: test\n", "hosts.yml: clusters.rosey: expected a list of host aliases"),
    ("clusters:\n  rosey: {hosts: [test, prod]}\n",
     "hosts.yml: clusters.rosey.hosts: unknown key; a cluster has 'members' and 'gossip_tls'"),
    ("clusters:\n  rosey: {gossip_tls: true}\n", "hosts.yml: clusters.rosey.members: missing"),
    ("clusters:\n  rosey: {members: [test, prod], gossip_tls: yes please}\n",
     "hosts.yml: clusters.rosey.gossip_tls: expected auto, true or false, got 'yes please'"),
])
def test_bad_clusters_are_one_line_naming_the_field(tmp_path, clusters, expected):
    msg = error(tmp_path, BASE + clusters)
    assert msg.startswith(expected) and "\n" not in msg


def test_a_peer_address_must_be_an_ip_and_unique(tmp_path):
    named = BASE.replace("peer_address: 10.0.0.2", "peer_address: prod.internal")
    assert "hosts.prod.peer_address: expected an IP address" in error(tmp_path, named + CLUSTER)
    no_peer_address = BASE.replace(", peer_address: 10.0.0.2", "")  # then `address` (a name) is used
    assert "hosts.prod.address: host is in cluster 'rosey', so its peers need an IP address" in error(
        tmp_path, no_peer_address + CLUSTER)
    same = BASE.replace("peer_address: 10.0.0.2", "peer_address: 10.0.0.1")
    assert "hosts.prod.peer_address: 10.0.0.1 is also test's" in error(tmp_path, same + CLUSTER)
    assert "hosts.test.cluster: name the host in the top-level 'clusters:'" in error(
        tmp_path, BASE.replace("env: test}", "env: test, cluster: x}", 1))


def test_members_see_each_other_as_peers(tmp_path):
    i = inv(tmp_path, BASE + CLUSTER)
    test, prod, solo = i.host("test"), i.host("prod"), i.host("solo")
    assert solo.cluster is None
    assert test.cluster.name == "rosey" and [p.name for p in test.cluster.peers] == ["prod"]
    assert (test.cluster.peers[0].address, test.cluster.peers[0].web_username) == ("10.0.0.2", "ops")
    assert [p.address for p in prod.cluster.peers] == ["10.0.0.1"]


def test_gossip_tls_is_on_where_every_member_can_and_refused_where_one_cannot(tmp_path):
    assert inv(tmp_path, BASE + CLUSTER).host("test").cluster.gossip_tls  # 0.27.0 on both: auto is on
    mapping = "clusters:\n  rosey: {members: [test, prod], gossip_tls: false}\n"
    assert not inv(tmp_path, BASE + mapping).host("prod").cluster.gossip_tls
    old = BASE.replace("env: production,", "env: production, alertmanager: {version: 0.23.0},")
    assert not inv(tmp_path, old + CLUSTER).host("test").cluster.gossip_tls  # auto: off for all members
    msg = error(tmp_path, old + CLUSTER.replace("[test, prod]", "{members: [test, prod], gossip_tls: true}"))
    assert msg.startswith("hosts.yml: hosts.prod.alertmanager.version: 0.23.0 has no gossip TLS (0.24.0 or "
                          "newer), which cluster 'rosey' asks for with gossip_tls: true")


def test_gossip_tls_files_unit_flag_and_restart_on_a_new_certificate(tmp_path):
    r, h = rendered(tmp_path, "test")
    files = {f.name: f for f in r.secret_files}
    base = "/opt/rosey-bot/monitoring/secrets"
    for name in ("gossip_ca.crt", "gossip.crt", "gossip.key", "gossip_tls.yml"):
        assert files[name].path == f"{base}/{name}" and files[name].group == "alertmanager"
        assert files[name].mode == 0o640
    tls = yaml.safe_load(files["gossip_tls.yml"].content)
    assert tls["tls_server_config"] == {
        "cert_file": f"{base}/gossip.crt", "key_file": f"{base}/gossip.key",
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": f"{base}/gossip_ca.crt"}
    assert tls["tls_client_config"] == {"cert_file": f"{base}/gossip.crt", "key_file": f"{base}/gossip.key",
                                        "ca_file": f"{base}/gossip_ca.crt"}
    unit = r.files["alertmanager.service"]
    assert f"    --cluster.tls-config={base}/gossip_tls.yml" in unit
    assert "PRIVATE KEY" not in unit and "PRIVATE KEY" in files["gossip.key"].content
    again, _ = rendered(tmp_path, "test")
    assert again.files["alertmanager.service"] == unit  # same certificate: same unit, no restart
    (tmp_path / "gossip-pki" / "rosey" / "test.crt").unlink()  # reissued at the next run
    moved, _ = rendered(tmp_path, "test")
    assert moved.files["alertmanager.service"] != unit
    plain = "clusters:\n  rosey: {members: [test, prod], gossip_tls: false}\n"
    off, _ = rendered(tmp_path, "test", BASE + plain)
    assert "--cluster.tls-config" not in off.files["alertmanager.service"]
    assert not [f for f in off.secret_files if f.name.startswith("gossip")]


def test_clustered_alertmanager_unit(tmp_path):
    r, _ = rendered(tmp_path, "test")
    unit = r.files["alertmanager.service"]
    for flag in ("--cluster.listen-address=10.0.0.1:9094", "--cluster.advertise-address=10.0.0.1:9094",
                 "--cluster.peer=10.0.0.2:9094", "--cluster.label=rosey"):
        assert f"    {flag}" in unit
    old, _ = rendered(tmp_path, "test", BASE.replace("0.27.0", "0.25.0") + CLUSTER)
    assert "--cluster.label" not in old.files["alertmanager.service"]  # 0.26.0 added it
    assert "--cluster.peer=10.0.0.2:9094" in old.files["alertmanager.service"]


def test_prometheus_alerts_every_alertmanager_and_scrapes_the_peer(tmp_path):
    r, _ = rendered(tmp_path, "test")
    doc = yaml.safe_load(r.files["prometheus.yml"])
    ams = doc["alerting"]["alertmanagers"]
    assert [a["static_configs"][0]["targets"] for a in ams] == [["localhost:9093"], ["10.0.0.2:9093"]]
    secret = "/opt/rosey-bot/monitoring/secrets/peer_web_password_prod"
    assert ams[1]["basic_auth"] == {"username": "ops", "password_file": secret}
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["peer-prometheus"]["static_configs"] == [
        {"targets": ["10.0.0.2:9090"], "labels": {"env": "production", "host": "prod", "peer": "prod"}}]
    assert jobs["peer-alertmanager"]["static_configs"][0]["targets"] == ["10.0.0.2:9093"]
    assert jobs["peer-alertmanager"]["basic_auth"] == ams[1]["basic_auth"]
    assert jobs["prometheus"]["static_configs"][0]["labels"] == {"env": "test", "host": "test"}
    # the peer's password is the peer's own secret, deployed to this host for Prometheus only
    peer = next(s for s in r.secret_files if s.name == "peer_web_password_prod")
    assert (peer.content, peer.owner, peer.group) == ("prod-pw-1", "root", "prometheus")
    assert "prod-pw-1" not in "".join(r.files.values())


def test_rendering_is_byte_stable(tmp_path):
    """(web.yml apart: its hash gets a new random salt unless the server's is handed in, see test_render)"""
    a, _ = rendered(tmp_path, "prod")
    b, _ = rendered(tmp_path, "prod")
    a.files.pop("web.yml"), b.files.pop("web.yml")
    assert a.files == b.files


def test_single_host_keeps_clustering_off(tmp_path):
    r, _ = rendered(tmp_path, "solo", BASE + CLUSTER)
    assert "--cluster.listen-address=\n" in r.files["alertmanager.service"]
    assert "--cluster.peer" not in r.files["alertmanager.service"]
    doc = yaml.safe_load(r.files["prometheus.yml"])
    assert len(doc["alerting"]["alertmanagers"]) == 1
    assert not any(j["job_name"].startswith("peer-") for j in doc["scrape_configs"])


def test_heartbeat_receiver_only_with_its_secret(tmp_path):
    text = BASE.replace("smarthost: smtp.example.com:587}", "smarthost: smtp.example.com:587}\n    "
                        "heartbeat: {repeat_interval: 2m}") + CLUSTER
    i = inv(tmp_path, text)
    assert "heartbeat_url" in required_secrets(i.host("test"))
    r, _ = rendered(tmp_path, "test", text, secrets="heartbeat_url: https://hc.example/ping/abc\n")
    am = yaml.safe_load(r.files["alertmanager.yml"])
    assert am["route"]["routes"][0] == {"matchers": ['alertname="Watchdog"'], "receiver": "heartbeat",
                                        "repeat_interval": "2m"}
    hb = next(x for x in am["receivers"] if x["name"] == "heartbeat")
    assert hb["webhook_configs"] == [{"url_file": "/opt/rosey-bot/monitoring/secrets/heartbeat_url",
                                      "send_resolved": False}]
    assert "hc.example" not in r.files["alertmanager.yml"]
    with pytest.raises(InventoryError, match="receivers.heartbeat: needs webhook url_file"):
        rendered(tmp_path, "test", text.replace("0.27.0", "0.25.0"), secrets="heartbeat_url: https://x/\n")


def test_firewall_opens_gossip_and_web_only_to_the_peers(tmp_path):
    text = BASE.replace("env: test}", "env: test, web: {allow_from: [192.0.2.0/24]}}", 1) + CLUSTER
    host = inv(tmp_path, text).host("test")
    _, svc = ufw.wanted(host, (22,))
    peer_rules = {(r.port, r.proto) for r in svc if r.src == "10.0.0.2"}
    assert peer_rules == {(9094, "tcp"), (9090, "tcp"), (9093, "tcp")}  # gossip over TLS: TCP only
    assert not [r for r in svc if r.port == 9094 and r.src != "10.0.0.2"]
    plain = text.replace("[test, prod]", "{members: [test, prod], gossip_tls: false}")
    _, svc = ufw.wanted(inv(tmp_path, plain).host("test"), (22,))
    assert {(r.port, r.proto) for r in svc if r.src == "10.0.0.2" and r.port == 9094} == {
        (9094, "tcp"), (9094, "udp")}
    solo = inv(tmp_path, BASE + CLUSTER).host("solo")
    assert not [r for r in ufw.wanted(solo, (22,))[1] if r.port == 9094]


# ---------------------------------------------------------------- verify's judgement of a clustered host


def _cluster_outputs(**over: str) -> dict[str, str]:
    def http(doc: object) -> str:
        return json.dumps(doc) + "\n200"
    outs = {
        "am_status": http({"config": {"original": "x"}, "cluster": {"status": "ready", "peers": [
            {"address": "10.0.0.1:9094", "name": "A"}, {"address": "10.0.0.2:9094", "name": "B"}]}}),
        "alertmanagers": http({"data": {"activeAlertmanagers": [
            {"url": "http://localhost:9093/api/v2/alerts"}, {"url": "http://10.0.0.2:9093/api/v2/alerts"}]}}),
        "targets": http({"data": {"activeTargets": [
            {"labels": {"job": "rosey-bot"}, "health": "up"},
            {"labels": {"job": "peer-prometheus", "peer": "prod"}, "health": "up"},
            {"labels": {"job": "peer-alertmanager", "peer": "prod"}, "health": "up"}]}}),
    }
    outs.update(over)
    return outs


def test_verify_reports_a_ready_two_peer_cluster(tmp_path):
    h = inv(tmp_path, BASE + CLUSTER).host("test")
    outs = _cluster_outputs()
    checks = {c.name: c for c in [v.check_cluster(h, outs), v.check_peer_targets(h, outs),
                                  v.check_alertmanagers(h, outs)]}
    assert all(c.passed for c in checks.values()), [c.line() for c in checks.values()]
    assert checks["alertmanager cluster"].detail.startswith("rosey: ready, 2/2 peers")
    assert checks["alertmanager cluster"].detail.endswith(", gossip over TLS")
    assert checks["peer targets"].detail == "2/2 up (prod)"


@pytest.mark.parametrize(("key", "doc", "failing", "detail"), [
    ("am_status", {"config": {}, "cluster": {"status": "ready", "peers": [{"address": "10.0.0.1:9094"}]}},
     "alertmanager cluster", "not seen: prod (10.0.0.2:9094)"),
    ("am_status", {"config": {}, "cluster": {"status": "settling", "peers": [
        {"address": "10.0.0.1:9094"}, {"address": "10.0.0.2:9094"}]}}, "alertmanager cluster", "settling"),
    ("alertmanagers", {"data": {"activeAlertmanagers": [{"url": "http://localhost:9093/api/v2/alerts"}]}},
     "prometheus -> alertmanagers", "not active: 10.0.0.2:9093"),
    ("targets", {"data": {"activeTargets": [
        {"labels": {"job": "peer-prometheus", "peer": "prod"}, "health": "down", "lastError": "refused"}]}},
     "peer targets", "peer-prometheus{peer=prod} down: refused; peer-alertmanager{peer=prod} missing"),
])
def test_verify_names_what_is_wrong_with_the_cluster(tmp_path, key, doc, failing, detail):
    h = inv(tmp_path, BASE + CLUSTER).host("test")
    outs = _cluster_outputs(**{key: json.dumps(doc) + "\n200"})
    checks = {c.name: c for c in [v.check_cluster(h, outs), v.check_peer_targets(h, outs),
                                  v.check_alertmanagers(h, outs)]}
    assert [n for n, c in checks.items() if not c.passed] == [failing]
    assert detail in checks[failing].detail


def test_verify_of_a_single_host_is_unchanged(tmp_path):
    h = inv(tmp_path, BASE + CLUSTER).host("solo")
    names = [c.name for c in v.evaluate(h, {}, [])]
    assert "alertmanager cluster" not in names and "peer targets" not in names
    assert "prometheus -> alertmanager" in names


# ---------------------------------------------------------------- the drill on a cluster


def test_cluster_wide_notification_count_survives_a_restarted_member() -> None:
    from fabfile.alerting.api import NotifyCounts as N
    from fabfile.drill.notifications import NotificationWatch as W
    base = ({"email": N(5, 0, 5, 0)}, {"email": N(7, 0, 7, 0)})
    # the peer sent one; the drilled host's Alertmanager was restarted (its counters start again at 0)
    ok = W.delta(({"email": N(6, 0, 6, 0)}, {"email": N(0, 0, 0, 0)}), base, "email").succeeded_requests
    assert ok == 1
    # ... and after the restart it sent the resolved one itself
    ok = W.delta(({"email": N(6, 0, 6, 0)}, {"email": N(1, 0, 1, 0)}), base, "email").succeeded_requests
    assert ok == 2
    # a member that does not answer (stopped, host down) adds nothing; one that did not answer before counts
    assert W.delta(({"email": N(6, 0, 6, 0)}, None), base, "email").succeeded_requests == 1
    assert W.delta(({"email": N(5, 0, 5, 0)}, {"email": N(2, 0, 2, 0)}), (base[0], None),
                   "email").succeeded_requests == 2


def test_monitoring_down_needs_a_cluster_and_a_known_scenario(tmp_path) -> None:
    from fabfile.drill.runner import cli_test_alert
    from fabfile.errors import UserError
    i = inv(tmp_path, BASE + CLUSTER)
    with pytest.raises(UserError, match="--scenario monitoring-down: solo not in a `clusters:` entry"):
        cli_test_alert(i, [i.host("solo")], scenario="monitoring-down")
    with pytest.raises(UserError, match="--scenario power-cut: unknown; one of bot-down, synthetic"):
        cli_test_alert(i, [i.host("test")], scenario="power-cut")


def test_host_down_needs_a_cluster_and_a_lab_host(tmp_path) -> None:
    """Refused before anything is touched: a real server is never powered off by the drill."""
    from fabfile.drill.runner import cli_test_alert
    from fabfile.errors import UserError
    i = inv(tmp_path, BASE + CLUSTER)
    with pytest.raises(UserError, match="--scenario host-down: solo not in a `clusters:` entry"):
        cli_test_alert(i, [i.host("solo")], scenario="host-down")
    with pytest.raises(UserError, match="--scenario host-down: test not a lab host .* use --scenario "
                                        "monitoring-down"):
        cli_test_alert(i, [i.host("test")], scenario="host-down")


def test_a_cluster_needs_a_group_interval_longer_than_the_members_turns(tmp_path) -> None:
    """10s (the single-host default) would have the second member re-send every resolve as firing."""
    text = (BASE + CLUSTER).replace("group_interval: 30s", "group_interval: 10s")
    assert error(tmp_path, text) == (
        "hosts.yml: hosts.test.alertmanager.group_interval: 10s is too short for cluster 'rosey' of 2: its "
        "last member sends 15s (--cluster.peer-timeout) after the first and would re-send a resolved alert "
        "as firing; set at least 30s for the cluster's hosts")
    three = BASE.replace("  solo: {address: 127.0.0.1, env: test}",
                         "  solo: {address: solo.example.com, peer_address: 10.0.0.3, env: test}")
    three += "clusters:\n  rosey: [test, prod, solo]\n"
    assert "is too short for cluster 'rosey' of 3" in error(tmp_path, three)
    assert inv(tmp_path, BASE + CLUSTER).host("test").cluster is not None  # 30s is enough for two
