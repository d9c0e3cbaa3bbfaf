"""ufw planning from status text: which rules to add/delete, SSH first, never lock out."""

from __future__ import annotations

import dataclasses

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.deploy import ufw_plan as ufw

SS_LISTEN = """LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=412,fd=3))
LISTEN 0 4096 *:9090 *:* users:(("prometheus",pid=900,fd=7))
LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=412,fd=4))
"""


@pytest.fixture
def host():
    return load_inventory().host("lab")


def with_web(host, *allow):
    return dataclasses.replace(host, web=dataclasses.replace(host.web, allow_from=tuple(allow)))


def state(added: str = "", active: bool = True, default: str = "DROP") -> ufw.UfwState:
    return ufw.UfwState(active, default, ufw.parse_added(added))


def test_ssh_ports_use_the_servers_view_not_the_dialled_port():
    # the lab dials 2222; inside the guest sshd listens on 22 and SSH_CONNECTION says 22
    assert ufw.ssh_ports("22", SS_LISTEN) == (22,)
    assert ufw.ssh_ports("", SS_LISTEN) == (22,)
    assert ufw.ssh_ports("2200", "") == (2200,)
    assert ufw.ssh_ports("", "") == ()


def test_parse_added_shapes():
    text = """Added user rules (see 'ufw status' for running firewall):
ufw allow 22/tcp
ufw allow from 10.0.0.0/8 to any port 9090 proto tcp
ufw allow 9093
ufw allow OpenSSH
ufw limit 2222/tcp"""
    got = ufw.parse_added(text)
    assert [a.spec for a in got] == ["allow 22/tcp", "allow from 10.0.0.0/8 to any port 9090 proto tcp",
                                     "allow 9093", "allow OpenSSH", "limit 2222/tcp"]
    assert got[0].rule == ufw.Rule(22, "tcp")
    assert got[1].rule == ufw.Rule(9090, "tcp", "10.0.0.0/8")
    assert got[2].rule == ufw.Rule(9093, "")
    assert got[3].rule is None


def test_rule_spec_round_trips_through_the_parser():
    for r in (ufw.Rule(22), ufw.Rule(9090, "tcp", "192.0.2.0/24"), ufw.Rule(9094, "udp", "198.51.100.7")):
        assert ufw.parse_added("ufw " + r.spec())[0].rule == r


def test_sources_are_normalised_like_ufw():
    assert ufw.normalise_source("203.0.113.7/32") == "203.0.113.7"
    assert ufw.normalise_source("10.1.2.3/8") == "10.0.0.0/8"
    assert ufw.normalise_source("any") == "any"


def test_fresh_server_ssh_first_then_web_then_enable(host):
    p = ufw.plan(host, state(active=False), (22,))
    cmds = p.commands()
    assert cmds[0] == "ufw allow 22/tcp"
    assert cmds[-1] == "ufw --force enable"
    assert "ufw allow 9090/tcp" in cmds and "ufw allow 9093/tcp" in cmds
    assert not any("9094" in c for c in cmds)  # no cluster peers -> cluster port stays closed


def test_converged_is_empty(host):
    added = "ufw allow 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp"
    assert ufw.plan(host, state(added), (22,)).empty


def test_existing_ssh_rule_in_other_shapes_counts(host):
    added = "ufw limit 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp"
    assert ufw.plan(host, state(added), (22,)).empty


def test_narrowing_sources_deletes_the_wide_rules(host):
    h = with_web(host, "192.0.2.0/24")
    added = "ufw allow 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp\nufw allow 8080/tcp"
    p = ufw.plan(h, state(added), (22,))
    assert [r.spec() for r in p.add] == ["allow from 192.0.2.0/24 to any port 9090 proto tcp",
                                         "allow from 192.0.2.0/24 to any port 9093 proto tcp"]
    assert [a.spec for a in p.delete] == ["allow 9090/tcp", "allow 9093/tcp"]  # 8080 is someone else's
    assert not p.enable
    # adds come before deletes: the new sources never see a gap
    cmds = p.commands()
    assert cmds.index("ufw delete allow 9090/tcp") > cmds.index(
        "ufw allow from 192.0.2.0/24 to any port 9090 proto tcp")


def test_ssh_rules_are_never_deleted(host):
    added = "ufw allow 22/tcp\nufw allow 2222/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp"
    p = ufw.plan(host, state(added), (22,))
    assert p.empty


def test_default_allow_is_turned_to_deny(host):
    added = "ufw allow 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp"
    p = ufw.plan(host, state(added, default="ACCEPT"), (22,))
    assert p.commands() == ["ufw default deny incoming"]


def test_refuses_without_a_known_ssh_port(host):
    with pytest.raises(ValueError, match="sshd"):
        ufw.plan(host, state(active=False), ())


def test_default_policy_and_status_parsing():
    assert ufw.parse_default_policy('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n') == "DROP"
    assert ufw.parse_default_policy('DEFAULT_INPUT_POLICY="ACCEPT"') == "ACCEPT"
    assert ufw.parse_status_active("Status: active\nLogging: on (low)")
    assert not ufw.parse_status_active("Status: inactive")
