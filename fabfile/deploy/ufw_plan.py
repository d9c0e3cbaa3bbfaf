"""ufw rule planning, pure: what to ask the server, parse its answers, compute what the inventory wants,
diff the two.

Kept apart from the step so the decisions (which rule to add, which to delete, when enabling is
safe) are unit-tested from status text without a server, and so the firewall step and verify read
the server the same way (`SNIPPETS` -> `read_state`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fabfile.config.settings import HostSettings
from fabfile.config.validators import ascii_digits, everyone_source
from fabfile.deploy import ufw_files


@dataclass(frozen=True, order=True)
class Rule:
    """One incoming ufw rule in the two shapes we write. `src` is 'any' or a normalised address."""

    port: int
    proto: str = "tcp"  # tcp, udp or "" (both)
    src: str = "any"
    action: str = "allow"

    def spec(self) -> str:
        """The rule as `ufw show added` prints it (and as `ufw` / `ufw delete` accept it)."""
        if self.src == "any":
            return f"{self.action} {self.port}" + (f"/{self.proto}" if self.proto else "")
        return f"{self.action} from {self.src} to any port {self.port}" + (
            f" proto {self.proto}" if self.proto else "")


@dataclass(frozen=True)
class Added:
    """A line of `ufw show added`: the raw spec, and the Rule when it is a simple incoming port rule."""

    spec: str
    rule: Rule | None


@dataclass(frozen=True, order=True)
class Listener:
    """A TCP socket listening on a non-loopback address (from `ss -Htlnp`)."""

    port: int
    address: str
    process: str

    def describe(self) -> str:
        where = f"{self.address}:{self.port}"
        return f"{where} ({self.process})" if self.process else where


@dataclass(frozen=True)
class UfwState:
    active: bool
    default_incoming: str  # DROP / REJECT / ACCEPT, from /etc/default/ufw
    added: tuple[Added, ...]
    listeners: tuple[Listener, ...] = ()  # public TCP listeners
    ipv6_filtered: bool = True  # IPV6=yes in /etc/default/ufw
    global_ipv6: bool = False  # the server has a global IPv6 address


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


_SHORT = re.compile(r"^(allow|deny|reject|limit) (?:in )?([0-9]+)(?:/(tcp|udp))?$")
_FULL = re.compile(r"^(allow|deny|reject|limit) (?:in )?from (\S+) to any port ([0-9]+)"
                   r"(?: proto (tcp|udp))?$")


def parse_added(text: str) -> tuple[Added, ...]:
    """Lines of `ufw show added` -> Added; anything fancier (apps, interfaces, ranges) keeps rule=None."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("ufw "):
            continue
        spec = line[4:]
        rule = None
        if m := _SHORT.match(spec):
            rule = Rule(int(m.group(2)), m.group(3) or "", "any", m.group(1))
        elif m := _FULL.match(spec):
            rule = Rule(int(m.group(3)), m.group(4) or "", m.group(2), m.group(1))
        out.append(Added(spec, rule))
    return tuple(out)


def parse_default_policy(text: str) -> str:
    m = re.search(r'^DEFAULT_INPUT_POLICY="?(\w+)"?', text, re.M)
    return m.group(1).upper() if m else "DROP"  # ufw's own default


def parse_ipv6_filtered(defaults: str) -> bool:
    m = re.search(r'^IPV6="?(\w+)"?', defaults, re.M)
    return not m or m.group(1).lower() == "yes"  # ufw's own default is yes


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address == "localhost"


def public_listeners(ss_listen: str) -> tuple[Listener, ...]:
    """`ss -Htlnp` -> the TCP listeners reachable from outside (any address but loopback)."""
    out = set()
    for line in ss_listen.splitlines():
        local = next((f for f in line.split() if re.search(r":([0-9]+)$", f)), None)
        if not local:
            continue
        address, port = local.rsplit(":", 1)
        address = address.strip("[]")
        if _loopback(address):
            continue
        process = m.group(1) if (m := re.search(r'users:\(\("([^"]+)"', line)) else ""
        out.add(Listener(int(port), address, process))
    return tuple(sorted(out))


def ssh_ports(session: str, ss_listen: str) -> tuple[int, ...]:
    """Server-side SSH ports: this session's (SSH_CONNECTION's 4th field) plus every sshd listener.

    The port we dial (hosts.yml ssh.port) may be forwarded (the lab dials 127.0.0.1:2222, sshd
    listens on 22 in the guest), so it is not used; the server's own view is.
    """
    ports = {int(session.strip())} if ascii_digits(session.strip()) else set()
    for line in ss_listen.splitlines():
        if '"sshd' not in line:  # users:(("sshd",pid=...)) -- also matches sshd-session
            continue
        # `ss -Htlnp`: State Recv-Q Send-Q Local:Port Peer:Port users:(...)
        local = next((f for f in line.split() if re.search(r":[0-9]+$", f)), None)
        if local:
            ports.add(int(local.rsplit(":", 1)[1]))
    return tuple(sorted(ports))


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


# ---------------------------------------------------------------- asking the server (firewall step, verify)

# our own session's server-side port: walk up from this shell to the sshd session, reading the
# environment each process started with (sudo's env_reset drops SSH_CONNECTION from ours); bash builtins only,
# since every process started costs time under emulation and this runs in every read
_SESSION_PORT = r"""p=$$
while [ "${p:-1}" -gt 1 ]; do
  c=
  while IFS= read -r -d '' kv; do
    case $kv in SSH_CONNECTION=*) c=${kv#SSH_CONNECTION=}; break;; esac
  done 2>/dev/null < "/proc/$p/environ"
  if [ -n "$c" ]; then set -- $c; echo "$4"; break; fi
  pp=
  while read -r k v; do [ "$k" = PPid: ] && { pp=$v; break; }; done 2>/dev/null < "/proc/$p/status"
  p=$pp
done"""

# ufw's state from its files and one iptables call, not from `ufw status` / `ufw show added` (see ufw_files)
RULE_FILES = "grep -h '^### tuple ###' /etc/ufw/user.rules; true"
RULE_FILES6 = "[ ! -e /proc/sys/net/ipv6 ] || grep -h '^### tuple ###' /etc/ufw/user6.rules; true"

SNIPPETS = {
    "have": "command -v ufw",
    "loaded": "iptables -n -L ufw-user-input >/dev/null 2>&1; echo $?",
    "rules": RULE_FILES,
    "rules6": RULE_FILES6,
    "defaults": "cat /etc/default/ufw",
    "session": _SESSION_PORT,
    "listen": "ss -Htlnp",
    "ipv6": "ip -6 addr show scope global | grep -c inet6; true",
}


def read_state(outs: Mapping[str, str]) -> tuple[UfwState, tuple[int, ...]]:
    """The answers to `SNIPPETS` -> (ufw's state, the server-side SSH ports to keep open)."""
    ipv6 = parse_ipv6_filtered(outs.get("defaults", ""))
    added = ufw_files.show_added(outs.get("rules", ""), outs.get("rules6", "") if ipv6 else "")
    state = UfwState(active=ufw_files.loaded(outs.get("loaded", "")),
                     default_incoming=parse_default_policy(outs.get("defaults", "")),
                     added=parse_added(added),
                     listeners=public_listeners(outs.get("listen", "")),
                     ipv6_filtered=ipv6,
                     global_ipv6=outs.get("ipv6", "0").strip().split("\n")[0].strip() not in ("", "0"))
    return state, ssh_ports(outs.get("session", ""), outs.get("listen", ""))
