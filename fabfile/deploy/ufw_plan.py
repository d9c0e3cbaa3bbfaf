"""ufw rule planning, pure: compute what the inventory wants and diff it with what the server has.

Kept apart from the step so the decisions (which rule to add, which to delete, when enabling is
safe) are unit-tested from status text without a server; what the server says (`SNIPPETS` ->
`read_state`) is read in fabfile/facts/firewall.py, the same way for the firewall step and verify.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from fabfile.config.settings import HostSettings
from fabfile.config.validators import everyone_source
from fabfile.facts.firewall import Added, Listener, Rule, UfwState


@dataclass(frozen=True)
class Plan:
    ssh_ports: tuple[int, ...]
    add: tuple[Rule, ...]  # SSH rules come first
    delete: tuple[Added, ...]
    set_default_deny: bool
    enable: bool
    insert_first: tuple[Rule, ...] = ()  # SSH allows that must go before a deny rule for the same port
    clear_first: tuple[Added, ...] = ()  # rules of an inserted allow's own tuple (ufw skips such an insert)
    would_cut: tuple[Listener, ...] = ()  # public listeners that starting to filter would cut unasked
    ipv6_open: bool = False  # ufw leaves IPv6 unfiltered on a server that has IPv6

    @property
    def empty(self) -> bool:
        return not (self.insert_first or self.clear_first or self.add or self.delete or self.set_default_deny
                    or self.enable)

    def refusal(self, host: HostSettings) -> str | None:
        """Why applying this plan (or calling the ports limited) would mislead or surprise; None if not."""
        if self.ipv6_open:
            return ("ufw filters only IPv4 here (IPV6=no in /etc/default/ufw) but the server has a global "
                    f"IPv6 address, so {host.prometheus.port}/{host.alertmanager.port} would stay open over "
                    "IPv6; set IPV6=yes in /etc/default/ufw and run again")
        if self.would_cut:
            ports = sorted({str(x.port) for x in self.would_cut}, key=int)
            cut = ", ".join(x.describe() for x in self.would_cut)
            return (f"enabling ufw would cut public listener(s) {cut}; "
                    f"list port(s) {', '.join(ports)} in hosts.{host.name}.firewall.open_ports (keep them "
                    f"reachable) or firewall.close_ports (cut them on purpose), then run again")
        return None

    def commands(self) -> list[str]:
        """ufw commands in a safe order: SSH allowed before anything can start filtering."""
        cmds = [f"ufw delete {a.spec}" for a in self.clear_first]
        cmds += [f"ufw insert 1 {r.spec()}" for r in self.insert_first]
        cmds += [f"ufw {r.spec()}" for r in self.add]
        cmds += [f"ufw delete {a.spec}" for a in self.delete]
        if self.set_default_deny:
            cmds.append("ufw default deny incoming")
        if self.enable:
            cmds.append("ufw --force enable")
        return cmds


def normalise_source(src: str) -> str:
    """'any' stays; CIDRs the way ufw stores them (host routes without /32 or /128)."""
    if src == "any":
        return src
    net = ipaddress.ip_network(src, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else net.with_prefixlen


def _allowed(allow_from: tuple[str, ...], address: str) -> bool:
    """`web.allow_from` already lets `address` in: `any`, or a network holding it (0.0.0.0/0 holds every
    IPv4 address but no IPv6 one, so an IPv6 peer still gets its own rule)."""
    if everyone_source(allow_from) == "any":
        return True
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(s, strict=False) for s in allow_from
               if ipaddress.ip_network(s, strict=False).version == ip.version)


def wanted(host: HostSettings, ssh: tuple[int, ...]) -> tuple[list[Rule], list[Rule]]:
    """(SSH rules, service rules) the inventory asks for."""
    ssh_rules = [Rule(p, "tcp") for p in ssh]
    svc = [Rule(int(p), "tcp") for p in host.firewall.open_ports]
    for port in (host.prometheus.port, host.alertmanager.port):
        svc += [Rule(port, "tcp", normalise_source(s)) for s in host.web.allow_from]
    if host.cluster:
        # the peers, and only they, reach gossip and the web ports they scrape and alert on; peer addresses
        # are IPs (the inventory checks), so a rule never widens to `any`. Gossip is TCP and UDP, but over
        # TLS it is TCP only (Alertmanager then opens no UDP socket), so UDP stays shut.
        protos = ("tcp",) if host.cluster.gossip_tls else ("tcp", "udp")
        for peer in host.cluster.peers:
            src = normalise_source(peer.address)
            svc += [Rule(host.alertmanager.cluster_port, proto, src) for proto in protos]
            if not _allowed(host.web.allow_from, src):  # else already open to it, by the user's choice
                svc += [Rule(port, "tcp", src) for port in (host.prometheus.port, host.alertmanager.port)]
    return ssh_rules, list(dict.fromkeys(svc))


def _first_for_everyone(port: int, added: tuple[Added, ...]) -> Rule | None:
    """The first rule for `port` (TCP) from any source: the one ufw applies to a new connection."""
    return next((a.rule for a in added if a.rule and a.rule.port == port and a.rule.src == "any"
                 and a.rule.proto in ("tcp", "")), None)


def _would_cut(host: HostSettings, state: UfwState, ssh: tuple[int, ...],
               svc: list[Rule]) -> tuple[Listener, ...]:
    """Public listeners nobody said anything about: not SSH, not ours, not allowed by a rule, not listed."""
    kept = set(ssh) | {host.prometheus.port, host.alertmanager.port, host.alertmanager.cluster_port}
    kept |= {int(p) for p in host.firewall.open_ports + host.firewall.close_ports}
    kept |= {r.port for r in svc if r.src == "any"}
    kept |= {a.rule.port for a in state.added
             if a.rule and a.rule.src == "any" and a.rule.action in ("allow", "limit")}
    return tuple(x for x in state.listeners if x.port not in kept)


def plan(host: HostSettings, state: UfwState, ssh: tuple[int, ...]) -> Plan:
    """What to run so the server matches the inventory; empty when it already does.

    Rules for the ports we manage (Prometheus, Alertmanager, cluster) that the inventory no longer
    wants are deleted; everyone else's rules are left alone. SSH rules are only ever added.
    """
    if not ssh:
        raise ValueError("could not tell which port sshd listens on; refusing to touch the firewall")
    ssh_rules, svc_rules = wanted(host, ssh)
    have = {a.rule for a in state.added if a.rule}
    # An SSH allow appended after a deny for the same port would never match. ufw keeps one rule per
    # tuple: a deny of the allow's own tuple (`deny 22/tcp`) is turned into the allow in place by `ufw allow`;
    # before a deny of another shape (`deny 22`) the allow is inserted first, after deleting any rule of its
    # own tuple further down (ufw skips inserting a tuple it already has).
    add, insert, clear = [], [], []
    for r in ssh_rules:
        first = _first_for_everyone(r.port, state.added)
        if first is None or first == dataclasses.replace(r, action=first.action):
            if first is None or first.action in ("deny", "reject"):
                add.append(r)
        elif first.action in ("deny", "reject"):
            insert.append(r)
            clear += [a for a in state.added if a.rule and dataclasses.replace(a.rule, action=r.action) == r]
    add += [r for r in svc_rules if r not in have]
    managed = {host.prometheus.port, host.alertmanager.port, host.alertmanager.cluster_port}
    want = set(svc_rules)
    delete = [a for a in state.added if a.rule and a.rule.port in managed and a.rule not in want]
    set_default_deny, enable = state.default_incoming == "ACCEPT", not state.active
    cut = _would_cut(host, state, ssh, svc_rules) if (set_default_deny or enable) else ()
    return Plan(ssh_ports=ssh, add=tuple(add), delete=tuple(delete), set_default_deny=set_default_deny,
                enable=enable, insert_first=tuple(insert), clear_first=tuple(clear), would_cut=cut,
                ipv6_open=not state.ipv6_filtered and state.global_ipv6)
