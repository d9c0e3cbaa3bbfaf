"""ufw planning from status text: which rules to add/delete, SSH first, never lock out."""

from __future__ import annotations

import dataclasses

import pytest

from fabfile.deploy import ufw_plan as ufw
from fabfile.facts import firewall as fw

SS_LISTEN = """LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=412,fd=3))
LISTEN 0 4096 *:9090 *:* users:(("prometheus",pid=900,fd=7))
LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=412,fd=4))
"""


def with_web(host, *allow):
    return dataclasses.replace(host, web=dataclasses.replace(host.web, allow_from=tuple(allow)))


def state(added: str = "", active: bool = True, default: str = "DROP") -> fw.UfwState:
    return fw.UfwState(active, default, fw.parse_added(added))


def test_ssh_ports_use_the_servers_view_not_the_dialled_port():
    # the lab dials 2222; inside the guest sshd listens on 22 and SSH_CONNECTION says 22
    assert fw.ssh_ports("22", SS_LISTEN) == (22,)
    assert fw.ssh_ports("", SS_LISTEN) == (22,)
    assert fw.ssh_ports("2200", "") == (2200,)
    assert fw.ssh_ports("", "") == ()


def test_ssh_ports_include_an_active_ssh_socket():
    """Ubuntu 24.04: systemd listens for sshd (ssh.socket), so `ss` shows systemd; a second port there is
    kept open too. An inactive or missing socket unit adds nothing."""
    ss = 'LISTEN 0 4096 0.0.0.0:2200 0.0.0.0:* users:(("systemd",pid=1,fd=55))\n'
    active = "Listen=0.0.0.0:2200 (Stream)\nListen=[::]:2200 (Stream)\nListen=[::]:22 (Stream)\n" \
             "Listen=/run/ssh-unix-local/socket (Stream)\nActiveState=active\n"
    assert fw.ssh_ports("22", ss, active) == (22, 2200)
    assert fw.ssh_ports("22", ss, active.replace("=active", "=inactive")) == (22,)
    assert fw.ssh_ports("22", ss, "ActiveState=inactive\n") == (22,)  # no such unit (Debian)
    state, ports = fw.read_state({"session": "22", "listen": ss, "sshsocket": active})
    assert ports == (22, 2200)


def test_parse_added_shapes():
    text = """Added user rules (see 'ufw status' for running firewall):
ufw allow 22/tcp
ufw allow from 10.0.0.0/8 to any port 9090 proto tcp
ufw allow 9093
ufw allow OpenSSH
ufw limit 2222/tcp"""
    got = fw.parse_added(text)
    assert [a.spec for a in got] == ["allow 22/tcp", "allow from 10.0.0.0/8 to any port 9090 proto tcp",
                                     "allow 9093", "allow OpenSSH", "limit 2222/tcp"]
    assert got[0].rule == fw.Rule(22, "tcp")
    assert got[1].rule == fw.Rule(9090, "tcp", "10.0.0.0/8")
    assert got[2].rule == fw.Rule(9093, "")
    assert got[3].rule is None


def test_rule_spec_round_trips_through_the_parser():
    for r in (fw.Rule(22), fw.Rule(9090, "tcp", "192.0.2.0/24"), fw.Rule(9094, "udp", "198.51.100.7")):
        assert fw.parse_added("ufw " + r.spec())[0].rule == r


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
    assert fw.parse_default_policy('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n') == "DROP"
    assert fw.parse_default_policy('DEFAULT_INPUT_POLICY="ACCEPT"') == "ACCEPT"


SS_PUBLIC = """LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=412,fd=3))
LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:(("nginx",pid=700,fd=6))
LISTEN 0 5 0.0.0.0:8001 0.0.0.0:* users:(("python3",pid=265,fd=3))
LISTEN 0 100 127.0.0.1:2525 0.0.0.0:* users:(("python3",pid=267,fd=6))
LISTEN 0 4096 *:9090 *:* users:(("prometheus",pid=900,fd=7))
LISTEN 0 128 [::1]:25 [::]:* users:(("exim4",pid=500,fd=4))
LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=412,fd=4))
"""


def with_firewall(host, open_ports=(), close_ports=()):
    return dataclasses.replace(host, firewall=dataclasses.replace(
        host.firewall, open_ports=tuple(open_ports), close_ports=tuple(close_ports)))


def test_public_listeners_skip_loopback():
    got = fw.public_listeners(SS_PUBLIC)
    assert [(x.port, x.address, x.process) for x in got] == [
        (22, "0.0.0.0", "sshd"), (22, "::", "sshd"), (443, "0.0.0.0", "nginx"), (8001, "0.0.0.0", "python3"),
        (9090, "*", "prometheus")]


def test_enabling_refuses_while_it_would_cut_a_listener_nobody_listed(host):
    h = with_firewall(host)
    st = fw.UfwState(False, "DROP", (), fw.public_listeners(SS_PUBLIC))
    p = ufw.plan(h, st, (22,))
    assert [x.port for x in p.would_cut] == [443, 8001]  # not SSH, not Prometheus, not loopback
    assert p.refusal(h) == (
        "enabling ufw would cut public listener(s) 0.0.0.0:443 (nginx), 0.0.0.0:8001 (python3); list "
        "port(s) 443, 8001 in hosts.lab.firewall.open_ports (keep them reachable) or "
        "firewall.close_ports (cut them on purpose), then run again")
    # listed: 443 stays reachable (a rule before enabling), 8001 is cut on purpose
    listed = with_firewall(host, open_ports=["443"], close_ports=["8001"])
    p = ufw.plan(listed, st, (22,))
    assert p.refusal(listed) is None and "ufw allow 443/tcp" in p.commands()
    assert p.commands().index("ufw allow 443/tcp") < p.commands().index("ufw --force enable")


def test_an_already_filtering_firewall_is_not_second_guessed(host):
    added = "ufw allow 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp"
    st = fw.UfwState(True, "DROP", fw.parse_added(added), fw.public_listeners(SS_PUBLIC))
    p = ufw.plan(with_firewall(host), st, (22,))
    assert p.empty and p.would_cut == () and p.refusal(host) is None


def test_an_existing_allow_rule_keeps_its_listener(host):
    st = fw.UfwState(False, "DROP", fw.parse_added("ufw allow 443\nufw allow 8001/tcp"),
                      fw.public_listeners(SS_PUBLIC))
    assert ufw.plan(with_firewall(host), st, (22,)).would_cut == ()


def test_ssh_allow_goes_before_a_deny_for_the_same_port(host):
    """ufw keeps one rule per tuple (seen on the lab: `insert 1 allow 22/tcp` over `deny 22/tcp` skips)"""
    web = "\nufw allow 9090/tcp\nufw allow 9093/tcp"
    cases = {
        "ufw deny 22/tcp": ["ufw allow 22/tcp"],  # the same tuple: ufw turns the deny into the allow in place
        "ufw deny 22": ["ufw insert 1 allow 22/tcp"],  # another shape: the allow goes first
        "ufw reject 22\nufw allow 22/tcp": ["ufw delete allow 22/tcp", "ufw insert 1 allow 22/tcp"],
        "ufw limit 22/tcp": [],  # rate-limited is allowed
    }
    for added, want in cases.items():
        got = ufw.plan(host, state(added + web, active=False), (22,)).commands()
        assert got == [*want, "ufw --force enable"], added
    # a deny from one source is the user's choice: SSH from everyone else is still allowed
    st = state("ufw deny from 198.51.100.9 to any port 22 proto tcp" + web)
    assert ufw.plan(host, st, (22,)).commands() == ["ufw allow 22/tcp"]


def test_ipv6_left_unfiltered_on_an_ipv6_server_is_refused(host):
    outs = {"loaded": "0", "defaults": 'IPV6=no\nDEFAULT_INPUT_POLICY="DROP"',
            "rules": "\n".join(f"### tuple ### allow tcp {p} 0.0.0.0/0 any 0.0.0.0/0 in"
                               for p in (22, 9090, 9093)),
            "listen": SS_LISTEN,
            "session": "22", "ipv6": "2"}
    st, ports = fw.read_state(outs)
    p = ufw.plan(host, st, ports)
    assert p.empty and p.ipv6_open
    assert p.refusal(host).startswith("ufw filters only IPv4 here (IPV6=no in /etc/default/ufw) but the "
                                      "server has a global IPv6 address, so 9090/9093 would stay open")
    for ipv6, defaults in (("0", "IPV6=no"), ("2", "IPV6=yes"), ("2", "")):
        st, ports = fw.read_state({**outs, "ipv6": ipv6, "defaults": defaults})
        assert not ufw.plan(host, st, ports).ipv6_open
