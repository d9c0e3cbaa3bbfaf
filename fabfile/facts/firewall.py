"""What ufw and the sockets say on the server: the snippets that ask (`SNIPPETS`), their parsers, and the
state they make (`read_state` -> `UfwState`), read the same way by the firewall step and verify.

Pure: the decisions built on this state (which rule to add, delete, when enabling is safe) are in
fabfile/deploy/ufw_plan.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fabfile.config.validators import ascii_digits
from fabfile.facts import ufw_files


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


def ssh_ports(session: str, ss_listen: str, ssh_socket: str = "") -> tuple[int, ...]:
    """Server-side SSH ports: this session's (SSH_CONNECTION's 4th field), every sshd listener, and the
    ports of an active `ssh.socket` (Ubuntu 24.04 starts sshd per connection: systemd holds the listening
    socket, so `ss` names systemd, not sshd).

    The port we dial (hosts.yml ssh.port) may be forwarded (the lab dials 127.0.0.1:2222, sshd
    listens on 22 in the guest), so it is not used; the server's own view is.
    """
    ports = {int(session.strip())} if ascii_digits(session.strip()) else set()
    ports.update(socket_ports(ssh_socket))
    for line in ss_listen.splitlines():
        if '"sshd' not in line:  # users:(("sshd",pid=...)) -- also matches sshd-session
            continue
        # `ss -Htlnp`: State Recv-Q Send-Q Local:Port Peer:Port users:(...)
        local = next((f for f in line.split() if re.search(r":[0-9]+$", f)), None)
        if local:
            ports.add(int(local.rsplit(":", 1)[1]))
    return tuple(sorted(ports))




def socket_ports(show: str) -> set[int]:
    """`systemctl show -p ActiveState -p Listen <unit>.socket` -> its TCP ports, if it is active
    (`Listen=[::]:22 (Stream)`, one line per ListenStream; a unix path has no port)."""
    lines = [ln.strip() for ln in show.splitlines()]
    if "ActiveState=active" not in lines:
        return set()
    return {int(m.group(1)) for ln in lines if (m := re.fullmatch(r"Listen=(?:.*:)?(\d+) \(Stream\)", ln))}


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
    "sshsocket": "systemctl show -p ActiveState -p Listen ssh.socket 2>/dev/null; true",
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
    return state, ssh_ports(outs.get("session", ""), outs.get("listen", ""), outs.get("sshsocket", ""))
