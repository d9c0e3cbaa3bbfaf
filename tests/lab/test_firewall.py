"""firewall on a real server: SSH survives ufw, 9090/9093 answer only as the inventory allows."""

from __future__ import annotations

from pathlib import Path

import requests
import yaml

from tests import helpers
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab_fixtures import lab_inventory_path


def inventory_with(d, tmp_path: Path, allow_from: list[str]) -> dict[str, str]:
    """A copy of the inventory whose lab host admits only `allow_from` to the web ports."""
    doc = yaml.safe_load(lab_inventory_path().read_text())
    doc["hosts"][d.host]["web"] = {"allow_from": allow_from}
    p = tmp_path / "inventory.yml"
    p.write_text(yaml.safe_dump(doc))
    return {"ROSEY_INVENTORY": str(p)}


def answers(d, port: int) -> bool:
    try:
        return d.get(port, "/-/healthy", timeout=4).status_code == 200
    except requests.RequestException:
        return False


def test_after_sortie6_ssh_works_and_web_ports_answer(deployed_lab):
    d = deployed_lab
    assert d.lab.run("sudo ufw status", check=True).stdout.startswith("Status: active")
    assert d.lab.run("id -un", check=True).stdout.strip() == "rosey"  # a NEW SSH connection gets in
    assert answers(d, 9090) and answers(d, 9093)
    p = d.inv("firewall", "-H", d.host)
    assert p.returncode == 0 and "firewall: ok" in p.stdout
    assert "9094" not in d.lab.run("sudo ufw show added", check=True).stdout  # no clustering configured


def test_restricted_sources_time_out_and_widening_restores(deployed_lab, tmp_path):
    d = deployed_lab
    env = inventory_with(d, tmp_path, ["192.0.2.0/24"])
    dry = d.inv("firewall", "-H", d.host, "--dry-run", env=env)
    assert dry.returncode == 0 and "would run: ufw delete allow 9090/tcp" in dry.stdout
    assert answers(d, 9090)  # the dry run changed nothing

    p = d.inv("firewall", "-H", d.host, env=env)
    assert p.returncode == 0 and "firewall: changed" in p.stdout
    added = d.lab.run("sudo ufw show added", check=True).stdout
    assert "ufw allow from 192.0.2.0/24 to any port 9090 proto tcp" in added
    assert "ufw allow 9090/tcp" not in added
    helpers.assert_ufw_files_read_as_ufw_shows(d.lab)  # what the no-op re-run below decides from
    # QEMU's forwarded connections come from 10.0.2.2, not from 192.0.2.0/24: dropped -> timeout
    assert not answers(d, 9090) and not answers(d, 9093)
    assert d.lab.run("id -un", check=True).stdout.strip() == "rosey"
    assert "firewall: ok" in d.inv("firewall", "-H", d.host, env=env).stdout  # re-run is a no-op

    back = d.inv("firewall", "-H", d.host)
    assert back.returncode == 0 and "firewall: changed" in back.stdout
    assert answers(d, 9090) and answers(d, 9093)
    assert "192.0.2.0" not in d.lab.run("sudo ufw show added", check=True).stdout
