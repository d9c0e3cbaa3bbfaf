"""ufw in the guest filters the forwarded ports for real, allowing SSH first keeps SSH working, and the
firewall step refuses what would surprise its user."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import yaml

from tests import helpers
from tests.lab_fixtures import lab_inventory_path


def test_ufw_keeps_ssh_and_blocks_a_port_it_does_not_allow(lab_host):
    bot = lab_host.url(8001, "/api/health")
    with urllib.request.urlopen(bot, timeout=10) as resp:
        assert resp.status == 200
    lab_host.run("sudo ufw allow 22/tcp && sudo ufw --force enable")
    assert lab_host.run("sudo ufw status").stdout.startswith("Status: active")
    helpers.assert_ufw_files_read_as_ufw_shows(lab_host)
    assert lab_host.run("id -un").stdout.strip() == "rosey"  # a new SSH connection still gets in
    with pytest.raises(OSError):  # blocked ports time out (slirp accepts, the guest drops): short timeout
        urllib.request.urlopen(bot, timeout=3).read()
    assert lab_host.run("curl -sf localhost:8001/api/health", check=False).ok  # the bot itself still runs


def _inventory_without_firewall_lists(lab_host, tmp_path: Path) -> Path:
    doc = yaml.safe_load(lab_inventory_path().read_text())
    doc["hosts"][lab_host.name].pop("firewall", None)
    path = tmp_path / "no-firewall-lists.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_firewall_surprises_are_refused_or_handled(lab_host, tmp_path):
    """On a clean guest (ufw inactive, the stand-in bot on 0.0.0.0:8001): enabling would cut the bot's port,
    so the firewall step refuses until the inventory lists it; an SSH deny rule gets the allow inserted before
    it; ufw leaving IPv6 unfiltered on a server with IPv6 is refused. Nothing is changed by a refusal."""
    lab_host.run("sudo ufw --force reset >/dev/null", check=True)
    r = helpers.inv("firewall", "-H", lab_host.name,
                    env={"ROSEY_INVENTORY": str(_inventory_without_firewall_lists(lab_host, tmp_path))})
    assert r.returncode == 1, r.stdout
    assert "enabling ufw would cut public listener(s) 0.0.0.0:8001 (python3)" in r.stdout
    assert f"hosts.{lab_host.name}.firewall.open_ports" in r.stdout
    assert lab_host.run("sudo ufw status").stdout.startswith("Status: inactive")
    helpers.assert_ufw_files_read_as_ufw_shows(lab_host)  # nothing saved, inactive

    # inactive: only rules, no effect yet. `deny 22` (TCP and UDP) is another tuple than `allow 22/tcp`, and
    # `allow 22/tcp` sits behind it: ufw would skip inserting its own tuple again, so it is deleted first
    lab_host.run("sudo ufw deny 22 >/dev/null && sudo ufw allow 22/tcp >/dev/null", check=True)
    r = helpers.inv("firewall", "-H", lab_host.name, env={"ROSEY_INVENTORY": str(lab_inventory_path())})
    assert r.returncode == 0, r.stdout
    assert "ran: ufw delete allow 22/tcp" in r.stdout and "ran: ufw insert 1 allow 22/tcp" in r.stdout
    assert lab_host.run("sudo ufw show added").stdout.split("\n")[1:3] == ["ufw allow 22/tcp", "ufw deny 22"]
    assert lab_host.run("sudo ufw status").stdout.startswith("Status: active")
    helpers.assert_ufw_files_read_as_ufw_shows(lab_host)  # rules of several shapes and sources, active
    assert lab_host.run("id -un").stdout.strip() == "rosey"  # a new SSH connection still gets in

    # a global IPv6 address (documentation prefix, on lo: no kernel module needed) and ufw told to skip IPv6
    lab_host.run("sudo ip -6 addr add 2001:db8::77/128 dev lo && "
                 "sudo sed -i 's/^IPV6=yes/IPV6=no/' /etc/default/ufw", check=True)
    try:
        before = lab_host.run("sudo ufw show added").stdout
        r = helpers.inv("firewall", "-H", lab_host.name, env={"ROSEY_INVENTORY": str(lab_inventory_path())})
        assert r.returncode == 1, r.stdout
        assert "ufw filters only IPv4 here (IPV6=no in /etc/default/ufw)" in r.stdout
        assert lab_host.run("sudo ufw show added").stdout == before
    finally:
        lab_host.run("sudo sed -i 's/^IPV6=no/IPV6=yes/' /etc/default/ufw; "
                     "sudo ip -6 addr del 2001:db8::77/128 dev lo")
