"""Web UIs over HTTPS (web.tls): the certificate and CA beside the secrets file, the files render places and
who may read them, the units' web config, Prometheus' clients, and the scheme-following waits on the server.
Real Prometheus/Alertmanager serving these files: tests/local/test_web_tls.py; the lab: tests/lab/."""

from __future__ import annotations

from pathlib import Path

import yaml
from cryptography import x509

from fabfile.config import layout, render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import WEB_CA, WEB_CERT, WEB_KEY, WEB_TLS_CONFIG
from fabfile.config.pki import fingerprint
from fabfile.config.secrets import load_secrets_issuing
from fabfile.ssh.webauth import clear_text_warning

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  web: {tls: true}
  alertmanager: {version: 0.27.0, group_interval: 30s}
hosts:
  test: {address: test.example.com, peer_address: 10.0.0.1, env: test}
  prod: {address: 203.0.113.5, peer_address: 10.0.0.2, env: production, secrets_file: prod/secrets.yml}
  plain: {address: plain.example.com, env: test, web: {tls: false}}
"""
CLUSTER = "clusters:\n  rosey: [test, prod]\n"


def setup(tmp_path: Path, text: str = BASE):
    (tmp_path / "hosts.yml").write_text(text)
    (tmp_path / "secrets.yml").write_text("web_password: test-pw-1\n")
    (tmp_path / "prod").mkdir(exist_ok=True)
    (tmp_path / "prod" / "secrets.yml").write_text("web_password: prod-pw-1\n")
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    inv = load_inventory(tmp_path / "hosts.yml")

    def rendered(alias: str) -> render.Rendered:
        h = inv.host(alias)
        return render.render_host(inv, h, load_secrets_issuing(inv, h), rules_path=rules)
    return inv, rendered


def sans(pem: str) -> set[str]:
    ext = x509.load_pem_x509_certificate(pem.encode()).extensions
    names = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName))


def test_the_certificate_names_every_way_the_ui_is_reached_and_stays_the_same(tmp_path):
    inv, _ = setup(tmp_path)
    first = load_secrets_issuing(inv, inv.host("test"))
    assert sans(first[WEB_CERT]) == {"127.0.0.1", "localhost", "test.example.com", "10.0.0.1"}
    assert load_secrets_issuing(inv, inv.host("test"))[WEB_CERT] == first[WEB_CERT]  # re-runs: byte-stable
    pki = tmp_path / "web-pki"
    assert (pki / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (pki / "test.key").stat().st_mode & 0o777 == 0o600
    assert first[WEB_CA] == (pki / "ca.crt").read_text()
    # an address change makes a new certificate from the same CA
    moved = load_inventory_text(tmp_path, BASE.replace("test.example.com", "test2.example.com"))
    again = load_secrets_issuing(moved, moved.host("test"))
    assert again[WEB_CERT] != first[WEB_CERT] and again[WEB_CA] == first[WEB_CA]
    assert "test2.example.com" in sans(again[WEB_CERT])


def load_inventory_text(tmp_path: Path, text: str):
    (tmp_path / "hosts.yml").write_text(text)
    return load_inventory(tmp_path / "hosts.yml")


def test_a_cluster_member_trusts_its_own_ca_and_its_peers(tmp_path):
    inv, _ = setup(tmp_path, BASE + CLUSTER)
    test, prod = (load_secrets_issuing(inv, inv.host(a)) for a in ("test", "prod"))
    own_test, own_prod = ((tmp_path / d / "web-pki" / "ca.crt").read_text() for d in (".", "prod"))
    assert own_test != own_prod  # two secrets folders, two CAs
    assert test[WEB_CA] == own_test + own_prod
    assert prod[WEB_CA] == own_prod + own_test


def test_a_plain_member_still_checks_its_tls_peer(tmp_path):
    text = BASE + "clusters:\n  rosey: [plain, prod]\n"
    text = text.replace("plain: {address: plain.example.com,", "plain: {address: plain.example.com, "
                        "peer_address: 10.0.0.3,")
    inv, rendered = setup(tmp_path, text)
    r = rendered("plain")
    names = {s.name for s in r.secret_files}
    assert WEB_CA in names and WEB_CERT not in names and WEB_TLS_CONFIG not in names
    prom = yaml.safe_load(r.files["prometheus.yml"])
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert "scheme" not in jobs["prometheus"]  # its own UIs: plain HTTP
    assert jobs["peer-prometheus"]["scheme"] == "https"
    assert jobs["peer-prometheus"]["tls_config"] == {"ca_file": layout.secret_path(inv.host("plain"), WEB_CA)}


def test_render_places_the_https_web_config_and_the_units_name_it(tmp_path):
    inv, rendered = setup(tmp_path)
    host = inv.host("test")
    r = rendered("test")
    files = {s.name: s for s in r.secret_files}
    web_tls = yaml.safe_load(files[WEB_TLS_CONFIG].content)
    assert web_tls["tls_server_config"] == {"cert_file": layout.secret_path(host, WEB_CERT),
                                            "key_file": layout.secret_path(host, WEB_KEY)}
    # the same users and the same hash as web.yml: one hash per render, so a re-run changes neither
    assert web_tls["basic_auth_users"] == yaml.safe_load(r.files["web.yml"])["basic_auth_users"]
    assert "tls_server_config" not in yaml.safe_load(r.files["web.yml"])
    flag = f"--web.config.file={layout.secret_path(host, WEB_TLS_CONFIG)}"
    for unit in ("prometheus.service", "alertmanager.service"):
        assert flag in r.files[unit]
    # the key: readable by both services and nobody else; the certificates are public
    key = files[WEB_KEY]
    assert (key.owner, key.group, key.mode) == ("prometheus", "alertmanager", 0o440)
    assert (files[WEB_CERT].owner, files[WEB_CERT].mode) == ("root", 0o644)
    # none of them needs a reload: both services re-read them per connection
    assert all(layout.services_for(n) == () for n in (WEB_CA, WEB_CERT, WEB_KEY, WEB_TLS_CONFIG))


def test_prometheus_reaches_its_own_uis_over_https_trusting_only_the_web_ca(tmp_path):
    inv, rendered = setup(tmp_path, BASE + CLUSTER)
    host = inv.host("test")
    prom = yaml.safe_load(rendered("test").files["prometheus.yml"])
    ca = {"ca_file": layout.secret_path(host, WEB_CA)}
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for job in ("prometheus", "alertmanager", "peer-prometheus", "peer-alertmanager"):
        assert (jobs[job]["scheme"], jobs[job]["tls_config"]) == ("https", ca), job
    assert "scheme" not in jobs["rosey-bot"]  # the bot's endpoint is not ours to change
    for am in prom["alerting"]["alertmanagers"]:
        assert (am["scheme"], am["tls_config"]) == ("https", ca)


def test_turning_tls_off_points_the_units_back_at_web_yml(tmp_path):
    inv, rendered = setup(tmp_path)
    r = rendered("plain")
    assert f"--web.config.file={inv.host('plain').base_dir}/web.yml" in r.files["prometheus.service"]
    assert not {WEB_CERT, WEB_KEY, WEB_TLS_CONFIG, WEB_CA} & {s.name for s in r.secret_files}


def test_no_clear_text_warning_once_tls_is_on(tmp_path):
    inv, _ = setup(tmp_path)
    assert clear_text_warning(inv.host("test")) is None
    assert "set web.tls: true" in (clear_text_warning(inv.host("plain")) or "")


def test_ui_names_the_ca_to_import_and_the_fingerprint(tmp_path):
    from fabfile.status.ui import tls_line

    inv, _ = setup(tmp_path)
    assert tls_line(inv.host("plain"), inv) is None
    ca = tmp_path / "web-pki" / "ca.crt"
    assert tls_line(inv.host("test"), inv) == (
        f"HTTPS: no certificate made yet (inv deploy-configs makes it); import {ca} into the browser "
        "to trust it")
    pem = load_secrets_issuing(inv, inv.host("test"))[WEB_CERT]
    assert f"certificate SHA-256 {fingerprint(pem)};" in (tls_line(inv.host("test"), inv) or "")
