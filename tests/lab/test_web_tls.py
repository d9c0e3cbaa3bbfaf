"""web.tls on a real server: turned on, sortie6 restarts both services onto HTTPS with the project's web
certificate, verify proves plain HTTP is refused and names the certificate's fingerprint, a browser-like
client that trusts the web CA gets in from this machine, the status task's tunnelled API clients follow,
a re-run changes nothing, and turning it off goes back to plain HTTP. Both transitions pass through the
window where the new configs are in place but the listeners still speak the old scheme."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import requests
import yaml

from fabfile.config.certs import web_pki_folder
from fabfile.config.needed_secrets import WEB_CA
from fabfile.config.pki import cert_file, fingerprint
from fabfile.config.secrets import load_secrets
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab_fixtures import lab_inventory, lab_inventory_path


def tls_inventory(d, tmp_path: Path) -> Path:
    doc = yaml.safe_load(lab_inventory_path().read_text())
    doc["hosts"][d.host].setdefault("web", {})["tls"] = True
    p = tmp_path / "inventory.yml"
    p.write_text(yaml.safe_dump(doc))
    return p


def https(d, port: int, path: str) -> str:
    return d.lab.url(port, path).replace("http://", "https://", 1)


def test_https_on_then_off(deployed_lab, tmp_path):
    d = deployed_lab
    path = tls_inventory(d, tmp_path)
    env = {"ROSEY_INVENTORY": str(path)}
    before = d.main_pids()

    on = d.inv("sortie6", "-H", d.host, env=env)
    print(on.stdout)
    d.assert_no_secret(on.stdout)
    assert on.returncode == 0, on.stdout
    assert "install-services: changed" in on.stdout  # the units name web_tls.yml: a restart, not a reload
    after = d.main_pids()
    assert all(after[s] != before[s] for s in before), (before, after)
    inv = lab_inventory()  # the same secrets file as the copy: the same web CA
    host = dataclasses.replace(d.lab.settings, web=dataclasses.replace(d.lab.settings.web, tls=True))
    cert = cert_file(web_pki_folder(inv, host), host.name).read_text()
    assert "PASS  prometheus HTTPS only: plain HTTP refused (400)" in on.stdout
    assert fingerprint(cert) in on.stdout  # to check a browser's warning against
    assert "PASS  alertmanager login required" in on.stdout
    assert "clear text" not in on.stdout  # no clear-text warning once the UIs speak HTTPS

    ca = tmp_path / "web_ca.crt"
    ca.write_text(load_secrets(inv, host)[WEB_CA])
    for port in (9090, 9093):  # from this machine, through the forwarded port, as a browser would
        assert requests.get(https(d, port, "/-/healthy"), auth=d.auth, verify=str(ca), timeout=10).ok
        assert requests.get(d.lab.url(port, "/-/healthy"), auth=d.auth, timeout=10).status_code == 400
        with pytest.raises(requests.exceptions.SSLError):  # the system's CAs do not vouch for it
            requests.get(https(d, port, "/-/healthy"), auth=d.auth, timeout=10)
    targets = requests.get(https(d, 9090, "/api/v1/targets"), auth=d.auth, verify=str(ca), timeout=10).json()
    scrape = {t["labels"]["job"]: t for t in targets["data"]["activeTargets"]}
    assert scrape["prometheus"]["scrapeUrl"].startswith("https://") and scrape["prometheus"]["health"] == "up"
    assert scrape["alertmanager"]["scrapeUrl"].startswith("https://")

    status = d.inv("status", "-H", d.host, env=env, timeout=120)  # SSH-tunnelled API clients, over HTTPS
    assert status.returncode == 0 and "connected" in status.stdout, status.stdout

    again = d.inv("sortie6", "-H", d.host, env=env)
    assert again.returncode == 0, again.stdout
    assert re.search(r"ok=\d+ changed=0 failed=0", again.stdout), again.stdout
    assert d.main_pids() == after

    off = d.inv("sortie6", "-H", d.host)
    print(off.stdout)
    assert off.returncode == 0, off.stdout
    assert "HTTPS only" not in off.stdout
    for port in (9090, 9093):
        assert requests.get(d.lab.url(port, "/-/healthy"), auth=d.auth, timeout=10).ok
