"""remote_write and agent mode from the inventory: forms, one-line errors, secrets, rendering, and the proof
that a host without remote_write renders byte for byte what it rendered before remote_write existed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fabfile.config import layout, render
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.needed_secrets import required_secrets
from fabfile.config.remote_write import WRITER_LABEL, is_secret_name
from fabfile.config.secrets import SecretsError, load_secrets

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "data" / "prometheus_yml"
PASSWORD, TOKEN = "rw-Pa55-word-secret", "rw-bearer-token-secret-value"

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  web: {basic_auth: false, allow_from: [10.0.0.0/8]}
hosts:
  test:
    address: t.invalid
"""

CLOUD = """\
    remote_write:
      - name: cloud
        url: https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push
        auth: basic
        username: "123456"
        queue: {max_shards: 10, sample_age_limit: 1h}
        write_relabel_configs:
          - {action: drop, source_labels: [__name__], regex: "go_gc_.*"}
      - name: vm
        url: http://10.0.0.5:8428/api/v1/write
        auth: bearer
        headers: {X-Scope-OrgID: team-a}
        tls: {ca_file: /etc/ssl/certs/store-ca.pem}
"""


def _inv(tmp_path: Path, host_extra: str = "", version: str = "3.5.3"):
    p = tmp_path / "hosts.yml"
    own = "" if "prometheus:" in host_extra else f"    prometheus: {{version: {version}}}\n"
    p.write_text(BASE + own + host_extra)
    return load_inventory(p)


def _render(tmp_path: Path, host_extra: str, version: str = "3.5.3") -> render.Rendered:
    inv = _inv(tmp_path, host_extra, version)
    host = inv.host("test")
    values = {"remote_write_cloud_password": PASSWORD, "remote_write_vm_token": TOKEN}
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    return render.render_host(inv, host, {k: values[k] for k in required_secrets(host)}, rules_path=rules)


@pytest.mark.parametrize("path", sorted(SNAPSHOTS.glob("*.yml")) + sorted(SNAPSHOTS.glob("*.service")),
                         ids=lambda p: p.name)
def test_hosts_without_remote_write_render_exactly_as_before(path: Path) -> None:
    # snapshots taken from main before remote_write existed (commit "Snapshot today's rendered ..."): the
    # alert path (external_labels, alerting, rules) of every host in both inventories is unchanged
    inv_name, alias, kind = path.name.split(".")
    inv = load_inventory(ROOT / ("hosts.yml" if inv_name == "hosts" else "tests/data/hosts.yml"))
    host = inv.host(alias)
    assert not host.remote_write
    env = render._env()
    if kind == "yml":
        text = env.get_template("monitoring/prometheus.yml.j2").render(render._prometheus_context(host))
    else:
        unit = render._unit_context(host, "prometheus")
        text = env.get_template("systemd/prometheus.service.j2").render(unit)
    assert text == path.read_text()


def test_every_host_of_both_inventories_has_its_snapshot() -> None:
    # a host added later is compared too: render its prometheus.yml and unit into tests/data/prometheus_yml/
    # (as the snapshot commit did) from main before it gains remote_write
    for inv_name, path in (("hosts", "hosts.yml"), ("tests-data-hosts", "tests/data/hosts.yml")):
        hosts = {h.name for h in load_inventory(ROOT / path).hosts.values() if not h.remote_write}
        for kind in ("yml", "service"):
            have = {p.name.split(".")[1] for p in SNAPSHOTS.glob(f"{inv_name}.*.{kind}")}
            assert hosts <= have, f"{path}: no {kind} snapshot for {sorted(hosts - have)}"


def test_targets_render_with_secrets_as_files_and_unique_series(tmp_path: Path) -> None:
    r = _render(tmp_path, CLOUD)
    text = r.files["prometheus.yml"]
    assert PASSWORD not in text and TOKEN not in text
    doc = yaml.safe_load(text)
    assert doc["global"]["external_labels"] == {"cluster": "rosey-bot"}  # alerts keep their labels
    cloud, vm = doc["remote_write"]
    secrets_dir = "/opt/rosey-bot/monitoring/secrets"
    assert cloud["basic_auth"] == {"username": "123456",
                                   "password_file": f"{secrets_dir}/remote_write_cloud_password"}
    assert cloud["queue_config"] == {"max_shards": 10, "sample_age_limit": "1h"}
    assert vm["authorization"] == {"credentials_file": f"{secrets_dir}/remote_write_vm_token"}
    assert vm["headers"] == {"X-Scope-OrgID": "team-a"}
    assert vm["tls_config"] == {"ca_file": "/etc/ssl/certs/store-ca.pem"}
    relabels = cloud["write_relabel_configs"]
    assert relabels[:3] == [
        {"source_labels": ["env"], "regex": "", "target_label": "env", "replacement": "test"},
        {"source_labels": ["host"], "regex": "", "target_label": "host", "replacement": "test"},
        {"target_label": WRITER_LABEL, "replacement": "test"}]
    assert relabels[3] == {"source_labels": ["__name__"], "regex": "go_gc_.*", "action": "drop"}
    files = {s.name: s for s in r.secret_files}
    assert files["remote_write_cloud_password"].content == PASSWORD
    assert files["remote_write_vm_token"].group == "prometheus"
    assert layout.services_for("remote_write_vm_token") == ("prometheus",)
    assert "alerting" in doc and doc["rule_files"] == ["alert_rules.yml"]


def test_agent_mode_drops_rules_and_alerting_and_uses_agent_flags(tmp_path: Path) -> None:
    agent = "    prometheus: {version: VERSION, mode: agent}\n" + CLOUD
    for version, flag in (("2.53.3", "--enable-feature=agent"), ("3.5.3", "--agent")):
        r = _render(tmp_path, agent.replace("VERSION", version), version)
        doc = yaml.safe_load(r.files["prometheus.yml"])
        assert "alerting" not in doc and "rule_files" not in doc
        assert "# Agent mode (prometheus.mode: agent)" in r.files["prometheus.yml"]
        unit = r.files["prometheus.service"]
        assert flag in unit and "--storage.agent.path=/opt/rosey-bot/monitoring/data/agent" in unit
        assert "--storage.tsdb" not in unit


@pytest.mark.parametrize(("extra", "field", "words"), [
    ("    prometheus: {version: 3.5.3, mode: agent}\n", "hosts.test.prometheus.mode",
     "at least one remote_write"),
    ("    prometheus: {version: 3.5.3, mode: edge}\n", "hosts.test.prometheus.mode", "'server' or 'agent'"),
    ("    remote_write: [{name: a, url: 'http://store.example.com/push'}]\n",
     "hosts.test.remote_write[0].url", "plain http://"),
    ("    remote_write: [{name: a, url: 'https://s.example/push', auth: basic}]\n",
     "hosts.test.remote_write[0].username", "needs a username"),
    ("    remote_write: [{name: a, url: 'https://s.example/push', auth: bearer, username: u}]\n",
     "hosts.test.remote_write[0].username", "only auth: basic"),
    ("    remote_write: [{name: a, url: 'https://s/p'}, {name: a, url: 'https://t/p'}]\n",
     "hosts.test.remote_write[1].name", "used twice"),
    ("    remote_write: [{name: Cloud-1, url: 'https://s/p'}]\n", "hosts.test.remote_write[0].name",
     "lowercase"),
    ("    remote_write: [{name: a, url: 'https://s/p', headers: {Authorization: x}}]\n",
     "hosts.test.remote_write[0].headers", "set by Prometheus itself"),
    ("    remote_write: [{name: a, url: 'https://s/p', password: x}]\n",
     "hosts.test.remote_write[0].password", "unknown setting"),
    ("    remote_write: [{name: a, url: 'https://s/p', queue: {max_shards: 0}}]\n",
     "hosts.test.remote_write[0].queue.max_shards", "expected 1 to 1000 shards"),
    ("    remote_write: [{name: a, url: 'https://s/p', queue: {capacity: 99999999999}}]\n",
     "hosts.test.remote_write[0].queue.capacity", "expected 1 to 1000000 samples per shard"),
    ("    remote_write: [{name: a, url: 'https://s/p', queue: {max_samples_per_send: %s}}]\n" % ("9" * 5000),
     "hosts.test.remote_write[0].queue.max_samples_per_send", "5000 digits is more than any setting takes"),
    ("    remote_write: [{name: a, url: 'https://s/p', queue: {batch_send_deadline: 300000y}}]\n",
     "hosts.test.remote_write[0].queue.batch_send_deadline", "expected 0.001s to 1h"),
    ("    remote_write: [{name: a, url: 'https://s/p', remote_timeout: 0s}]\n",
     "hosts.test.remote_write[0].remote_timeout", "expected 1s to 1h"),
    ("    remote_write: [{name: a, url: 'https://u:pw@s.example/p'}]\n",
     "hosts.test.remote_write[0].url", "has a user name or password in it"),
    ("    remote_write: [{name: a, url: 'https://s.example:99999/p'}]\n",
     "hosts.test.remote_write[0].url", "its host or port cannot be read"),
    ("    remote_write: [{name: a, url: 'https://s/p', username: 12345}]\n",
     "hosts.test.remote_write[0].username", "in quotes"),
    ("    remote_write: [{name: a, url: 'https://s/p', write_relabel_configs: [{action: drop}]}]\n",
     "hosts.test.remote_write[0].write_relabel_configs[0].source_labels", "needs the labels"),
    ("    remote_write: [{name: a, url: 'https://s/p', write_relabel_configs: [{replacement: x}]}]\n",
     "hosts.test.remote_write[0].write_relabel_configs[0].target_label", "action replace needs one"),
    ("    remote_write: [{name: a, url: 'https://s/p', write_relabel_configs: [{action: explode}]}]\n",
     "hosts.test.remote_write[0].write_relabel_configs[0].action", "expected one of"),
])
def test_bad_targets_are_one_line_naming_the_field(tmp_path: Path, extra: str, field: str,
                                                   words: str) -> None:
    with pytest.raises(InventoryError) as e:
        _inv(tmp_path, extra)
    line = str(e.value)
    assert "\n" not in line and f"hosts.yml: {field}:" in line and words in line


def test_version_gates_refuse_before_rendering(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"remote_write\[0\]\.queue\.sample_age_limit: .* 2\.50\.0"):
        _render(tmp_path, CLOUD, "2.48.0")
    with pytest.raises(InventoryError, match=r"prometheus\.mode: .* 2\.32\.0"):
        _render(tmp_path, "    prometheus: {version: 2.31.0, mode: agent}\n" + CLOUD.replace(
            "        queue: {max_shards: 10, sample_age_limit: 1h}\n", ""), "2.31.0")


def test_secret_names_and_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_secret_name("remote_write_cloud_password") and is_secret_name("remote_write_vm_token")
    assert not is_secret_name("remote_write_cloud_passwd") and not is_secret_name("remote_write_X_token")
    inv = _inv(tmp_path, CLOUD)
    host = inv.host("test")
    assert required_secrets(host) == ["remote_write_cloud_password", "remote_write_vm_token"]
    (tmp_path / "secrets.yml").write_text(f"remote_write_cloud_password: {PASSWORD}\n")
    with pytest.raises(SecretsError) as e:
        load_secrets(inv, host)
    assert "remote_write_vm_token" in str(e.value) and PASSWORD not in str(e.value)
    monkeypatch.setenv("ROSEY_TEST_REMOTE_WRITE_VM_TOKEN", TOKEN)
    want = {"remote_write_cloud_password": PASSWORD, "remote_write_vm_token": TOKEN}
    assert load_secrets(inv, host) == want
    (tmp_path / "secrets.yml").write_text("remote_write_cloud_secret: nope-nope-nope\n")
    with pytest.raises(SecretsError, match="unknown secret"):
        load_secrets(inv, host)


def test_defaults_give_every_host_the_targets_and_a_host_list_replaces_them(tmp_path: Path) -> None:
    p = tmp_path / "hosts.yml"
    rw = "  remote_write: [{name: vm, url: 'http://127.0.0.1:8428/api/v1/write'}]\n"
    p.write_text(BASE.replace("hosts:\n", rw + "hosts:\n")
                 + "  prod:\n    address: p.invalid\n    remote_write: []\n")
    inv = load_inventory(p)
    assert [t.name for t in inv.host("test").remote_write] == ["vm"]
    assert inv.host("prod").remote_write == ()


def test_remote_write_only_appends_the_alert_path_stays_as_it_was(tmp_path: Path) -> None:
    # global (external_labels), alerting, rule_files and scrape_configs are the same bytes with targets on
    without = _render(tmp_path, "").files["prometheus.yml"]
    with_targets = _render(tmp_path, CLOUD).files["prometheus.yml"]
    assert with_targets.startswith(without) and with_targets != without
    assert yaml.safe_load(with_targets[len(without):]).keys() == {"remote_write"}
    am = [_render(tmp_path, extra).files["alertmanager.yml"] for extra in ("", CLOUD)]
    assert am[0] == am[1]


def test_an_agent_host_cannot_watch_cluster_peers(tmp_path: Path) -> None:
    p = tmp_path / "hosts.yml"
    rw = "    remote_write: [{name: vm, url: 'http://10.0.0.5:8428/api/v1/write'}]\n"
    p.write_text(BASE + "    peer_address: 10.0.0.1\n    prometheus: {mode: agent}\n" + rw
                 + "  prod:\n    address: p.invalid\n    peer_address: 10.0.0.2\n"
                 "clusters: {rosey: [test, prod]}\n")
    p.write_text(p.read_text().replace("hosts:\n", "  alertmanager: {group_interval: 30s}\nhosts:\n", 1))
    with pytest.raises(InventoryError, match=r"hosts\.test\.prometheus\.mode: agent mode evaluates no rules"):
        load_inventory(p)
