"""The typed, immutable settings of one host, with their defaults and each field's validator.

The dataclass defaults here are the one home of every default; `inventory.load_inventory` builds these from
hosts.yml (its `defaults:` merged under each host's own settings).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from fabfile.config import validators as v
from fabfile.config.durations import duration_between
from fabfile.config.receivers import RECEIVER_TYPES
from fabfile.config.remote_write import Target as RemoteWriteTarget

DAY, YEAR = 86400, 365 * 86400
# Every numeric setting has bounds (a port 1-65535, seconds, a duration's range): a 5000-digit or
# 99999999999 value is one line naming the field, never a traceback or a service that will not start.
OFFICIAL_RELEASES = {
    "prometheus": "https://github.com/prometheus/prometheus/releases/download/v{version}",
    "alertmanager": "https://github.com/prometheus/alertmanager/releases/download/v{version}",
}


def check(fn: typing.Callable[[Any], str | None], **kw: Any) -> Any:
    """A field whose value `fn` validates (an error text or None) once hosts.yml is read."""
    return field(metadata={"check": fn}, **kw)


@dataclass(frozen=True)
class SSH:
    user: str = check(v.name, default="rosey")
    port: int = check(v.port, default=22)
    key: str | None = None  # path to a private key; None: the SSH agent / ~/.ssh defaults
    # the server's host key: a public key line (`ssh-ed25519 AAAA...`) or its `SHA256:...` fingerprint;
    # None: a pin registered with fabfile/ssh/host_keys.py (lab hosts) or the user's known_hosts decides
    host_key: str | None = check(v.host_key, default=None)
    connect_timeout: int = check(v.seconds_between(1, 600), default=10)


@dataclass(frozen=True)
class Component:
    """One release-installed binary family: where it comes from and how it runs."""

    version: str = check(v.version, default="")
    # directory holding the archive and sha256sums.txt; {version} is filled in
    release_url: str = check(v.release_url, default="")
    source: str = check(v.source, default="download")  # download on the server, or upload from here
    archive_dir: str | None = None  # local dir with the archive for `upload`; None: the local cache
    sha256: str | None = check(v.sha256, default=None)  # pin; otherwise sha256sums.txt decides
    arch: str = check(v.arch, default="amd64")
    port: int = check(v.port, default=9090)

    def url(self) -> str:
        return self.release_url.format(version=self.version)

    def archive_name(self, name: str) -> str:
        return f"{name}-{self.version}.linux-{self.arch}"


@dataclass(frozen=True)
class Prometheus(Component):
    release_url: str = check(v.release_url, default=OFFICIAL_RELEASES["prometheus"])
    version: str = check(v.version, default="2.48.0")
    scrape_interval: str = check(duration_between(1, 3600), default="15s")
    evaluation_interval: str = check(duration_between(1, 3600), default="15s")
    retention_time: str = check(duration_between(3600, 100 * YEAR), default="15d")
    retention_size: str | None = check(v.size, default=None)
    # server: the full stack; agent: scrape and forward to remote_write only (no TSDB queries, no rules)
    mode: str = check(v.prometheus_mode, default="server")

    @property
    def agent(self) -> bool:
        return self.mode == "agent"


@dataclass(frozen=True)
class Alertmanager(Component):
    release_url: str = check(v.release_url, default=OFFICIAL_RELEASES["alertmanager"])
    version: str = check(v.version, default="0.26.0")
    port: int = check(v.port, default=9093)
    cluster_port: int = check(v.port, default=9094)  # gossip (TCP+UDP); only open in a `clusters:` entry
    group_wait: str = check(duration_between(0, DAY), default="10s")
    group_interval: str = check(duration_between(1, DAY), default="10s")
    repeat_interval: str = check(duration_between(60, YEAR), default="3h")
    resolve_timeout: str = check(duration_between(1, DAY), default="5m")


@dataclass(frozen=True)
class Web:
    basic_auth: bool = True
    username: str = check(v.name, default="admin")
    allow_from: tuple[str, ...] = check(v.sources, default=("any",))  # who may reach 9090/9093
    public: bool = False  # says the UIs are meant for everyone: only then may basic_auth be off for `any`
    # HTTPS with a certificate from the project's own CA (fabfile/config/pki.py); off: plain HTTP
    tls: bool = False

    @property
    def open_to_everyone(self) -> str | None:
        """The `allow_from` entry that lets anyone reach the UIs (`any`, 0.0.0.0/0, ::/0), or None."""
        return v.everyone_source(self.allow_from)

    @property
    def scheme(self) -> str:
        """What the UIs speak once the services run with these settings (every client asks this)."""
        return "https" if self.tls else "http"


@dataclass(frozen=True)
class Firewall:
    """What to do with the server's other public TCP listeners when enabling ufw would cut them (the
    firewall step refuses until each is in one of the lists)."""

    open_ports: tuple[int, ...] = check(v.port_list, default=())  # keep reachable from anywhere
    close_ports: tuple[int, ...] = check(v.port_list, default=())  # cut on purpose (only used locally)


@dataclass(frozen=True)
class BusinessHours:
    weekdays: tuple[str, ...] = check(v.weekdays, default=("monday:friday",))
    start: str = check(v.hhmm, default="09:00")
    end: str = check(v.hhmm, default="17:00")
    timezone: str = check(v.timezone, default="UTC")


@dataclass(frozen=True)
class Email:
    # required: email is every alert's default route, so it cannot be off or half set
    to: tuple[str, ...] = check(v.emails)
    sender: str = check(v.email)  # `from` in hosts.yml
    smarthost: str = check(v.hostport)
    auth_username: str | None = None  # None: no SMTP AUTH (then no smtp_password is needed)
    require_tls: bool = True
    # critical alerts go to `critical_to` (default: `to`); with critical_cc_default also to `to`, in the
    # same mail: an address in both lists gets it once
    critical_to: tuple[str, ...] = check(v.optional_emails, default=())
    critical_cc_default: bool = True


_EMAIL_NULL = ("cannot be null or off: email is where every alert goes unless a route says otherwise; give "
               "to, from and smarthost (other receivers are added beside it)")
# `receivers`: email (required) plus one optional field per entry of the receiver table, off unless set
Receivers = dataclasses.make_dataclass(
    "Receivers",
    [("email", Email, field(metadata={"if_null": _EMAIL_NULL}))]
    + [(t.name, t.settings | None, None) for t in RECEIVER_TYPES],
    frozen=True)
Receivers.__module__ = __name__  # so typing.get_type_hints resolves its fields here


@dataclass(frozen=True)
class Peer:
    """Another member of this host's monitoring cluster, as this host reaches it (from its settings)."""

    name: str
    address: str  # the peer's peer_address
    env: str
    prometheus_port: int
    alertmanager_port: int
    cluster_port: int
    web_username: str | None  # None: the peer's web UIs have no basic auth
    web_tls: bool = False  # the peer's UIs speak HTTPS (its CA is in this host's web_ca.crt)


@dataclass(frozen=True)
class Cluster:
    """The `clusters:` entry this host belongs to: its name (the gossip label) and the other members."""

    name: str
    peers: tuple[Peer, ...]
    gossip_tls: bool = False  # gossip over mutual TLS with a per-cluster CA (--cluster.tls-config)


@dataclass(frozen=True)
class LabVMSettings:
    """Only for lab hosts: how the local QEMU VM is wired. Deploy steps never read this."""

    forwards: dict[int, int] = check(v.port_map, default_factory=dict)  # guest port -> loopback port
    releases_port: int = check(v.port, default=8089)
    memory_mb: int = check(v.count_between(256, 65536, "MB"), default=1024)
    cpus: int = check(v.count_between(1, 64, "CPUs"), default=2)
    # A second NIC on a private link to another lab host (always present; addressed only when set here)
    private_address: str | None = check(v.private_ipv4, default=None)  # /24, e.g. 192.168.77.11
    private_peer: str | None = check(v.name, default=None)  # the lab host at the link's other end
    mail_port: int = check(v.port, default=2526)  # shared SMTP catcher here; guests reach it at 10.0.2.2
    hooks_port: int = check(v.port, default=2527)  # shared HTTP catcher (Slack, Discord, ...), ditto
    release: str = check(v.lab_release, default="bookworm")  # the guest's Debian: 12 bookworm, 13 trixie


@dataclass(frozen=True)
class HostSettings:
    name: str
    address: str = check(v.address)
    receivers: Receivers
    ssh: SSH = SSH()
    env: str = check(v.name, default="test")
    bot_port: int = check(v.port, default=8001)
    base_dir: str = check(v.base_dir, default="/opt/rosey-bot/monitoring")
    # base_dir is chowned root:root 0755: only under /opt, /srv or /var/lib unless this says otherwise
    base_dir_outside_allowlist: bool = False
    secrets_file: str | None = None  # resolved against hosts.yml's folder
    prometheus: Prometheus = Prometheus()
    alertmanager: Alertmanager = Alertmanager()
    web: Web = Web()
    firewall: Firewall = Firewall()
    business_hours: BusinessHours = BusinessHours()
    lab: LabVMSettings | None = None  # `lab_vm` in hosts.yml
    peer_address: str | None = check(v.ip, default=None)  # how peers reach this host; default: address
    cluster: Cluster | None = None  # set from the top-level `clusters:`, never per host
    # long-term stores every sample is also sent to (fabfile/config/remote_write.py); a host's list
    # replaces the one in `defaults`
    remote_write: tuple[RemoteWriteTarget, ...] = ()

    @property
    def reached_by_peers(self) -> str:
        return self.peer_address or self.address

    @property
    def is_lab(self) -> bool:
        return self.lab is not None


# hosts.yml spells a few keys differently from Python
YAML_KEYS = {"sender": "from", "lab": "lab_vm"}
