"""ufw's saved rules read from its files print exactly what `ufw show added` prints.

The samples were captured on the lab's Debian 12 guest (ufw 0.36.2): the tuples of /etc/ufw/user.rules and
user6.rules after one command of each shape, and `ufw show added` for the same rules.
`tests/lab/test_lab_firewall.py` compares the two on the guest itself, for the rules the firewall step writes.
"""

from __future__ import annotations

from fabfile.facts import firewall as fw
from fabfile.facts import ufw_files

USER_RULES = """### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### deny any 22 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow udp 9094 0.0.0.0/0 any 10.0.2.2 in
### tuple ### allow tcp 9094 0.0.0.0/0 any 10.0.2.2 in
### tuple ### allow any 443 0.0.0.0/0 any 0.0.0.0/0 in comment=7765622073697465
### tuple ### allow any 8080 0.0.0.0/0 any 0.0.0.0/0 in_eth0
### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in
### tuple ### route:allow any any 10.1.0.0/16 any 0.0.0.0/0 in_eth0!out_eth1
### tuple ### allow_log tcp 5000 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### deny any 25 0.0.0.0/0 any 0.0.0.0/0 out
### tuple ### allow any 9093 0.0.0.0/0 any 192.0.2.7 in
### tuple ### reject tcp 7000:7010 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow udp 6000 0.0.0.0/0 53 198.51.100.0/24 in
"""

USER6_RULES = """### tuple ### allow tcp 22 ::/0 any ::/0 in
### tuple ### deny any 22 ::/0 any ::/0 in
### tuple ### allow any 443 ::/0 any ::/0 in comment=7765622073697465
### tuple ### allow any 8080 ::/0 any ::/0 in_eth0
### tuple ### limit tcp 2222 ::/0 any ::/0 in
### tuple ### allow tcp 9090 ::/0 any 2001:db8::/32 in
### tuple ### allow tcp 22 ::/0 any ::/0 OpenSSH - in
### tuple ### allow_log tcp 5000 ::/0 any ::/0 in
### tuple ### deny any 25 ::/0 any ::/0 out
### tuple ### reject tcp 7000:7010 ::/0 any ::/0 in
"""

SHOW_ADDED = """ufw allow 22/tcp
ufw deny 22
ufw allow from 10.0.2.2 to any port 9094 proto udp
ufw allow from 10.0.2.2 to any port 9094 proto tcp
ufw allow 443 comment 'web site'
ufw allow in on eth0 to any port 8080
ufw limit 2222/tcp
ufw allow OpenSSH
ufw route allow in on eth0 out on eth1 to 10.1.0.0/16
ufw allow log 5000/tcp
ufw deny out 25
ufw allow from 192.0.2.7 to any port 9093
ufw reject 7000:7010/tcp
ufw allow from 198.51.100.0/24 port 53 to any port 6000 proto udp
ufw allow from 2001:db8::/32 to any port 9090 proto tcp
"""


def test_every_shape_prints_as_ufw_show_added_prints_it():
    lines = SHOW_ADDED.strip().split("\n")
    assert ufw_files.show_added(USER_RULES, USER6_RULES).split("\n") == lines


def test_without_ipv6_the_ipv6_only_rule_is_not_there():
    got = ufw_files.show_added(USER_RULES)
    assert "ufw allow from 2001:db8::/32 to any port 9090 proto tcp" not in got
    assert got.split("\n") == SHOW_ADDED.strip().split("\n")[:-1]


def test_the_plan_reads_the_same_rules_from_the_files():
    from_files = fw.parse_added(ufw_files.show_added(USER_RULES, USER6_RULES))
    from_command = fw.parse_added(SHOW_ADDED)
    assert from_files == from_command
    assert fw.Rule(9094, "udp", "10.0.2.2") in {a.rule for a in from_files}


def test_nothing_saved_is_no_rule_and_a_malformed_tuple_is_skipped_as_ufw_skips_it():
    assert ufw_files.show_added("") == ""
    assert ufw_files.show_added("### tuple ### allow tcp 22\n### tuple ### allow tcp 80 0.0.0.0/0 any "
                                "0.0.0.0/0 in") == "ufw allow 80/tcp"


def test_loaded_is_the_chain_check_exit_status():
    assert ufw_files.loaded("0\n") and not ufw_files.loaded("1") and not ufw_files.loaded("")
