"""Load `hosts.yml` into typed, immutable host settings.

This is the only module that reads the inventory. Every problem becomes one
`InventoryError` line naming the file, the field and the fix, raised before
anything touches a server.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import posixpath
import re
import string
import types
import typing
import urllib.parse
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fabfile.config import yaml_file
from fabfile.config.durations import is_duration, parse_duration
from fabfile.config.receivers import RECEIVER_TYPES
from fabfile.config.versions import is_release_version, supports
from fabfile.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = PROJECT_ROOT / "hosts.yml"

OFFICIAL_RELEASES = {
    "prometheus": "https://github.com/prometheus/prometheus/releases/download/v{version}",
    "alertmanager": "https://github.com/prometheus/alertmanager/releases/download/v{version}",
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class InventoryError(UserError):
    """A problem with hosts.yml (or settings its releases cannot run); one line that says what to do."""


# ---------------------------------------------------------------- validators
# Each takes the (already type-converted) value and returns an error text or None.

# Every pattern is used with fullmatch: `$` alone accepts a trailing newline, which would end a unit's
# ExecStart line early (and drop the flags after it) or add a line to a config.
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_HOSTPORT_RE = re.compile(r"[A-Za-z0-9.\-]+:(\d{1,5})")
_HHMM_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
_SIZE_RE = re.compile(r"\d+(B|KB|MB|GB|TB|PB|EB)")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ADDRESS_RE = re.compile(r"[A-Za-z0-9_.:%-]+")  # a host name, an IPv4 or IPv6 address (no brackets)
_PATH_RE = re.compile(r"/[A-Za-z0-9_./-]*")  # no space, quote, `$`, `%`, `#`, newline: safe in sh, sed, units
# base_dir is created 0755 root:root and its files replaced as root: never a system or shared directory
_SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
    "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share", "/var", "/var/lib",
    "/var/log", "/var/tmp", "/etc/systemd", "/etc/systemd/system"})
_VIRTUAL_TREES = ("/dev/", "/proc/", "/sys/", "/run/")  # kernel or runtime file systems


def _port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else f"expected a TCP port 1-65535, got {v}"


def _port_list(v: tuple[str, ...]) -> str | None:
    bad = [p for p in v if not (p.isdigit() and 1 <= int(p) <= 65535)]
    return f"expected TCP port numbers like [443, 8000], got {bad[0]!r}" if bad else None


def _version(v: str) -> str | None:
    return None if is_release_version(v) else f"expected a release version like 2.48.0, got {v!r}"


def _duration(v: str) -> str | None:
    if is_duration(v):
        return None
    return f"expected a Prometheus duration like 15s, 5m or 15d, got {v!r}"


def _size(v: str) -> str | None:
    return None if _SIZE_RE.fullmatch(v) else f"expected a size like 10GB, got {v!r}"


def _email(v: str) -> str | None:
    return None if _EMAIL_RE.fullmatch(v) else f"expected an email address like ops@example.com, got {v!r}"


def _emails(v: list[str]) -> str | None:
    if not v:
        return "expected at least one email address"
    return next((e for e in map(_email, v) if e), None)


def _optional_emails(v: list[str]) -> str | None:
    return _emails(v) if v else None


def _hostport(v: str) -> str | None:
    m = _HOSTPORT_RE.fullmatch(v)
    if not m or not 1 <= int(m.group(1)) <= 65535:
        return f"expected host:port like smtp.example.com:587, got {v!r}"
    return None


def _ip(v: str) -> str | None:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return f"expected an IP address like 10.0.0.12 (peers gossip to it), got {v!r}"
    return None


def _address(v: str) -> str | None:
    if _ADDRESS_RE.fullmatch(v):
        return None
    return f"expected a host name or IP address like 203.0.113.7, got {v!r}"


def _base_dir(v: str) -> str | None:
    if not _PATH_RE.fullmatch(v):
        return (f"expected an absolute path of letters, digits and _ . - / (no spaces or quotes), like "
                f"/opt/rosey-bot/monitoring, got {v!r}")
    if posixpath.normpath(v) != v:
        return f"write the path in normal form: {posixpath.normpath(v)!r} instead of {v!r}"
    if v in _SYSTEM_DIRS or v.startswith(_VIRTUAL_TREES):
        return f"{v} is a system or shared directory; use one of its own like /opt/rosey-bot/monitoring"
    return None


def _positive(v: int) -> str | None:
    return None if v > 0 else f"expected a number of seconds above 0, got {v}"


def _release_url(v: str) -> str | None:
    if not re.fullmatch(r"https?://[^\s\"'\\`$;|&<>]+", v):
        return f"expected an http(s):// URL without spaces or quotes, got {v!r}"
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
    except ValueError:
        names = {"?"}
    if names - {"version"}:
        return "the only placeholder allowed is {version} (write a literal brace as {{ or }})"
    return None


def _host_key(v: str) -> str | None:
    from fabfile.ssh.host_keys import parse_pin  # the one parser of keys and fingerprints

    try:
        parse_pin(v)
    except ValueError as e:
        return f"expected a public key line like 'ssh-ed25519 AAAA...' or a SHA256:... fingerprint ({e})"
    return None


def _sources(v: list[str]) -> str | None:
    if not v:
        return "expected 'any' or a list of CIDRs like 203.0.113.0/24"
    for item in v:
        if item == "any":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"expected 'any' or a CIDR like 203.0.113.0/24, got {item!r}"
    if "any" in v and len(v) > 1:
        return "'any' already allows everyone; list either 'any' or CIDRs"
    return None


def _hhmm(v: str) -> str | None:
    if v.isdigit():  # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020
        return f"write the time in quotes, like \"09:00\" (unquoted, YAML read it as the number {v})"
    return None if _HHMM_RE.fullmatch(v) else f"expected a time HH:MM like 09:00, got {v!r}"


def _timezone(v: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"expected an IANA time zone like Europe/Berlin or UTC, got {v!r}"
    return None


def _weekdays(v: list[str]) -> str | None:
    if not v:
        return "expected at least one weekday or range like monday:friday"
    for item in v:
        ends = item.lower().split(":")
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            return f"expected weekday names or ranges like monday:friday, got {item!r}"
        if len(ends) == 2 and WEEKDAYS.index(ends[0]) > WEEKDAYS.index(ends[1]):
            return f"range {item!r} runs backwards; write it as e.g. monday:friday"
    return None


def _name(v: str) -> str | None:
    return None if _NAME_RE.fullmatch(v) else f"expected a plain name (letters, digits, _ . -), got {v!r}"


def _private_ipv4(v: str) -> str | None:
    try:
        ok = ipaddress.IPv4Address(v).is_private
    except ValueError:
        ok = False
    return None if ok else f"expected a private IPv4 address like 192.168.77.11, got {v!r}"


def _nonempty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _source(v: str) -> str | None:
    return None if v in ("download", "upload") else f"expected 'download' or 'upload', got {v!r}"


def _sha256(v: str) -> str | None:
    return None if re.fullmatch(r"[0-9a-f]{64}", v) else "expected 64 lowercase hex digits (sha256)"


def _arch(v: str) -> str | None:
    ok = v in ("amd64", "arm64", "armv7", "386")
    return None if ok else f"expected amd64, arm64, armv7 or 386, got {v!r}"


def _check(fn: typing.Callable[[Any], str | None], **kw: Any) -> Any:
    return field(metadata={"check": fn}, **kw)


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class SSH:
    user: str = _check(_name, default="rosey")
    port: int = _check(_port, default=22)
    key: str | None = None  # path to a private key; None: the SSH agent / ~/.ssh defaults
    # the server's host key: a public key line (`ssh-ed25519 AAAA...`) or its `SHA256:...` fingerprint;
    # None: the user's known_hosts decides (fabfile/ssh/host_keys.py)
    host_key: str | None = _check(_host_key, default=None)
    connect_timeout: int = _check(_positive, default=10)  # seconds


@dataclass(frozen=True)
class Component:
    """One release-installed binary family: where it comes from and how it runs."""

    version: str = _check(_version, default="")
    # directory holding the archive and sha256sums.txt; {version} is filled in
    release_url: str = _check(_release_url, default="")
    source: str = _check(_source, default="download")  # download on the server, or upload from here
    archive_dir: str | None = None  # local dir with the archive for `upload`; None: the local cache
    sha256: str | None = _check(_sha256, default=None)  # pin; otherwise sha256sums.txt decides
    arch: str = _check(_arch, default="amd64")
    port: int = _check(_port, default=9090)

    def url(self) -> str:
        return self.release_url.format(version=self.version)

    def archive_name(self, name: str) -> str:
        return f"{name}-{self.version}.linux-{self.arch}"


@dataclass(frozen=True)
class Prometheus(Component):
    release_url: str = _check(_release_url, default=OFFICIAL_RELEASES["prometheus"])
    version: str = _check(_version, default="2.48.0")
    scrape_interval: str = _check(_duration, default="15s")
    evaluation_interval: str = _check(_duration, default="15s")
    retention_time: str = _check(_duration, default="15d")
    retention_size: str | None = _check(_size, default=None)


@dataclass(frozen=True)
class Alertmanager(Component):
    release_url: str = _check(_release_url, default=OFFICIAL_RELEASES["alertmanager"])
    version: str = _check(_version, default="0.26.0")
    port: int = _check(_port, default=9093)
    cluster_port: int = _check(_port, default=9094)  # gossip (TCP+UDP); only open in a `clusters:` entry
    group_wait: str = _check(_duration, default="10s")
    group_interval: str = _check(_duration, default="10s")
    repeat_interval: str = _check(_duration, default="3h")
    resolve_timeout: str = _check(_duration, default="5m")


@dataclass(frozen=True)
class Web:
    basic_auth: bool = True
    username: str = _check(_name, default="admin")
    allow_from: tuple[str, ...] = _check(_sources, default=("any",))  # who may reach 9090/9093
    public: bool = False  # says the UIs are meant for everyone: only then may basic_auth be off for `any`
    # HTTPS with a certificate from the project's own CA (fabfile/config/pki.py); off: plain HTTP
    tls: bool = False

    @property
    def scheme(self) -> str:
        """What the UIs speak once the services run with these settings (every client asks this)."""
        return "https" if self.tls else "http"


@dataclass(frozen=True)
class Firewall:
    """What to do with the server's other public TCP listeners when enabling ufw would cut them (the
    firewall step refuses until each is in one of the lists)."""

    open_ports: tuple[str, ...] = _check(_port_list, default=())  # keep reachable from anywhere
    close_ports: tuple[str, ...] = _check(_port_list, default=())  # cut on purpose (only used locally)


@dataclass(frozen=True)
class BusinessHours:
    weekdays: tuple[str, ...] = _check(_weekdays, default=("monday:friday",))
    start: str = _check(_hhmm, default="09:00")
    end: str = _check(_hhmm, default="17:00")
    timezone: str = _check(_timezone, default="UTC")


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...] = _check(_emails, default=())
    sender: str = _check(_email, default="")  # `from` in hosts.yml
    smarthost: str = _check(_hostport, default="")
    auth_username: str | None = None  # None: no SMTP AUTH (then no smtp_password is needed)
    require_tls: bool = True
    # critical alerts go to `critical_to` (default: `to`); with critical_cc_default also to `to`, in the
    # same mail: an address in both lists gets it once
    critical_to: tuple[str, ...] = _check(_optional_emails, default=())
    critical_cc_default: bool = True


# `receivers`: email (required) plus one optional field per entry of the receiver table, off unless set
Receivers = dataclasses.make_dataclass(
    "Receivers", [("email", Email)] + [(t.name, t.settings | None, None) for t in RECEIVER_TYPES],
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


# Alertmanager's --cluster.peer-timeout (its default; the units do not change it): member k of a cluster waits
# k times this before it sends what the members before it have not.
CLUSTER_PEER_TIMEOUT = 15.0


@dataclass(frozen=True)
class Cluster:
    """The `clusters:` entry this host belongs to: its name (the gossip label) and the other members."""

    name: str
    peers: tuple[Peer, ...]
    gossip_tls: bool = False  # gossip over mutual TLS with a per-cluster CA (--cluster.tls-config)


@dataclass(frozen=True)
class LabVM:
    """Only for lab hosts: how the local QEMU VM is wired. Deploy steps never read this."""

    forwards: dict[int, int] = field(default_factory=dict)  # guest port -> loopback port
    releases_port: int = _check(_port, default=8089)
    memory_mb: int = 1024
    cpus: int = 2
    # A second NIC on a private link to another lab host (always present; addressed only when set here)
    private_address: str | None = _check(_private_ipv4, default=None)  # /24, e.g. 192.168.77.11
    private_peer: str | None = _check(_name, default=None)  # the lab host at the link's other end
    mail_port: int = _check(_port, default=2526)  # shared SMTP catcher here; guests reach it at 10.0.2.2


@dataclass(frozen=True)
class HostSettings:
    name: str
    address: str = _check(_address)
    receivers: Receivers
    ssh: SSH = SSH()
    env: str = _check(_name, default="test")
    bot_port: int = _check(_port, default=8001)
    base_dir: str = _check(_base_dir, default="/opt/rosey-bot/monitoring")
    secrets_file: str | None = None  # resolved against hosts.yml's folder
    prometheus: Prometheus = Prometheus()
    alertmanager: Alertmanager = Alertmanager()
    web: Web = Web()
    firewall: Firewall = Firewall()
    business_hours: BusinessHours = BusinessHours()
    lab: LabVM | None = None  # `lab_vm` in hosts.yml
    peer_address: str | None = _check(_ip, default=None)  # how peers reach this host; default: address
    cluster: Cluster | None = None  # set from the top-level `clusters:`, never per host

    @property
    def reached_by_peers(self) -> str:
        return self.peer_address or self.address

    @property
    def is_lab(self) -> bool:
        return self.lab is not None


# hosts.yml spells a few keys differently from Python
_YAML_KEYS = {"sender": "from", "lab": "lab_vm"}


# ---------------------------------------------------------------- building


def _yaml_key(name: str) -> str:
    return _YAML_KEYS.get(name, name)


def _fail(where: str, path: str, msg: str) -> typing.NoReturn:
    raise InventoryError(f"{where}: {path}: {msg}")


def _convert(tp: Any, value: Any, where: str, path: str) -> Any:
    """Convert a YAML value to the annotated type, or fail naming the field."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, path)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        return _build(tp, value, where, path)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            _fail(where, path, f"expected a list, got {type(value).__name__}")
        return tuple(_convert(str, v, where, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            _fail(where, path, f"expected a mapping, got {type(value).__name__}")
        kt, vt = typing.get_args(tp)
        return {_convert(kt, k, where, f"{path}.{k}"): _convert(vt, v, where, f"{path}.{k}")
                for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            _fail(where, path, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.isdigit():
                return int(value)
            _fail(where, path, f"expected a whole number, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            _fail(where, path, f"expected text, got {type(value).__name__}")
        return str(value)
    raise TypeError(f"unsupported type {tp!r}")  # a programming error, not user input


def _build(cls: type, data: Any, where: str, path: str) -> Any:
    if not isinstance(data, dict):
        _fail(where, path or "top level", f"expected a mapping of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {_yaml_key(f.name): f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(fields))}"
            _fail(where, f"{path}.{key}".lstrip("."), f"unknown setting; {hint}")
    kwargs = {}
    for key, f in fields.items():
        sub = f"{path}.{key}".lstrip(".")
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                _fail(where, sub, "required setting is missing; add it to the host or to defaults")
            continue
        value = _convert(hints[f.name], data[key], where, sub)
        check = f.metadata.get("check")
        if check and value is not None:
            err = check(value)
            if err:
                _fail(where, sub, err)
        kwargs[f.name] = value
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge mappings; lists and scalars in `over` replace those in `base`."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _loopback_url(url: str) -> bool:
    """A URL on the machine that fetches it: nothing on the network can change what it serves."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cross_checks(h: HostSettings, where: str) -> None:
    bh = h.business_hours
    if bh.start >= bh.end:
        _fail(where, f"hosts.{h.name}.business_hours",
              f"start {bh.start} must be before end {bh.end} (same day)")
    ports = {"prometheus.port": h.prometheus.port, "alertmanager.port": h.alertmanager.port,
             "bot_port": h.bot_port, "ssh.port": h.ssh.port}
    if h.cluster:
        ports["alertmanager.cluster_port"] = h.alertmanager.cluster_port
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            _fail(where, f"hosts.{h.name}.{name}",
                  f"port {port} is already used by {seen[port]}; pick another")
        seen[port] = name
    if not h.web.basic_auth and "any" in h.web.allow_from and not h.web.public:
        _fail(where, f"hosts.{h.name}.web.basic_auth",
              "is false while web.allow_from includes any: anyone could reload, stop or silence this "
              "monitoring; narrow web.allow_from, turn basic_auth on, or set web.public: true if the UIs "
              "are meant to be public")
    for comp in ("prometheus", "alertmanager"):
        c = getattr(h, comp)
        if not c.release_url.startswith(("http://", "https://")):
            _fail(where, f"hosts.{h.name}.{comp}.release_url", "expected an http(s):// URL")
        if c.release_url.startswith("http://") and not (h.is_lab or c.sha256 or _loopback_url(c.release_url)):
            _fail(where, f"hosts.{h.name}.{comp}.release_url",
                  "plain http:// without a pinned sha256: the checksum file would come from the same "
                  f"unauthenticated source; use https:// or pin {comp}.sha256")


# ---------------------------------------------------------------- public API


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: dict[str, HostSettings]
    default_hosts: tuple[str, ...] = ()  # used when -H is absent (fabfile/config/selection.py)

    def host(self, alias: str) -> HostSettings:
        if alias not in self.hosts:
            raise InventoryError(
                f"{self.path.name}: unknown host {alias!r}; known hosts: {', '.join(self.hosts)}")
        return self.hosts[alias]

    def select(self, spec: str | None) -> list[HostSettings]:
        """`-H test,prod` -> settings, in the order given, without duplicates."""
        aliases = [a.strip() for a in (spec or "").split(",") if a.strip()]
        if not aliases:
            raise InventoryError(
                f"no host given; use -H with one of: {', '.join(self.hosts)} (comma-separate several), "
                f"or set default_hosts in {self.path.name}")
        return [self.host(a) for a in dict.fromkeys(aliases)]

    def secrets_path(self, host: HostSettings) -> Path:
        p = Path(host.secrets_file or "secrets.yml").expanduser()
        return p if p.is_absolute() else self.path.parent / p


def load_inventory(path: str | Path | None = None) -> Inventory:
    path = Path(path) if path else DEFAULT_INVENTORY
    where = path.name
    try:
        text = yaml_file.read_text(path)
    except FileNotFoundError:
        raise InventoryError(f"{path}: inventory not found; create it (see README 'Inventory')") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(yaml_file.unreadable(path, e)) from None
    try:
        doc = yaml_file.parse(text)
    except yaml_file.DuplicateKey as e:
        raise InventoryError(f"{where}{yaml_file.where(e)}: {e.problem}") from None
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or "invalid YAML"
        at = yaml_file.where(e)
        raise InventoryError(f"{where}: not valid YAML{at}: {problem}; fix the syntax") from None
    if not isinstance(doc, dict):
        _fail(where, "top level", "expected a mapping with 'defaults' and 'hosts'")
    for key in doc:
        if key not in ("defaults", "hosts", "default_hosts", "clusters"):
            _fail(where, str(key), "unknown top-level key; only 'defaults', 'hosts', 'default_hosts' and "
                  "'clusters' are allowed")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        _fail(where, "defaults", "expected a mapping of settings")
    hosts_doc = doc.get("hosts")
    if not isinstance(hosts_doc, dict) or not hosts_doc:
        _fail(where, "hosts", "expected a mapping of host aliases to settings (at least one host)")
    hosts: dict[str, HostSettings] = {}
    for alias, entry in hosts_doc.items():
        alias = str(alias)
        if _name(alias):
            _fail(where, f"hosts.{alias}", "host alias must be a plain name (letters, digits, _ . -)")
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            _fail(where, f"hosts.{alias}", f"expected a mapping of settings, got {type(entry).__name__}")
        if "name" in entry:
            _fail(where, f"hosts.{alias}.name", "the alias is the name; remove this key")
        if "cluster" in entry or "cluster" in defaults:
            _fail(where, f"hosts.{alias}.cluster", "name the host in the top-level 'clusters:' instead")
        merged = _merge(defaults, entry)
        merged["name"] = alias
        if isinstance(merged.get("ssh"), dict) and isinstance(merged["ssh"].get("key"), str):
            merged["ssh"] = dict(merged["ssh"], key=str(Path(merged["ssh"]["key"]).expanduser()))
        h = _build(HostSettings, merged, where, f"hosts.{alias}")
        hosts[alias] = h
    hosts = _join_clusters(doc.get("clusters"), hosts, where)
    for h in hosts.values():
        _cross_checks(h, where)
    return Inventory(path=path, hosts=hosts, default_hosts=_default_hosts(doc, hosts, where))


def _peer(h: HostSettings) -> Peer:
    return Peer(name=h.name, address=h.reached_by_peers, env=h.env, prometheus_port=h.prometheus.port,
                alertmanager_port=h.alertmanager.port, cluster_port=h.alertmanager.cluster_port,
                web_username=h.web.username if h.web.basic_auth else None, web_tls=h.web.tls)


def _cluster_address(h: HostSettings, where: str, name: str) -> str:
    """A clustered host's peer address: an IP (Alertmanager binds the gossip to it), not loopback."""
    field_name = "peer_address" if h.peer_address else "address"
    value = h.reached_by_peers
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        _fail(where, f"hosts.{h.name}.{field_name}",
              f"host is in cluster {name!r}, so its peers need an IP address to reach it (gossip binds "
              f"to it), got {value!r}; set peer_address to its private IP")
    if ip.is_loopback or ip.is_unspecified:
        _fail(where, f"hosts.{h.name}.{field_name}",
              f"host is in cluster {name!r} but {value} cannot be reached by its peers; "
              f"set peer_address to the address they reach it on (a private one where there is one)")
    return value


def _join_clusters(doc: Any, hosts: dict[str, HostSettings], where: str) -> dict[str, HostSettings]:
    """`clusters: {NAME: [alias, alias, ...]}` -> each member's `cluster` (the others as peers)."""
    if doc is None:
        return hosts
    if not isinstance(doc, dict):
        _fail(where, "clusters", "expected a mapping of cluster names to lists of host aliases")
    member_of: dict[str, str] = {}
    out = dict(hosts)
    for name, entry in doc.items():
        name = str(name)
        if _name(name):
            _fail(where, f"clusters.{name}", "cluster name must be a plain name (letters, digits, _ . -)")
        members, tls_setting = _cluster_entry(entry, where, name)
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            _fail(where, f"clusters.{name}", "expected a list of host aliases, e.g. [test, prod]")
        if len(set(members)) != len(members):
            _fail(where, f"clusters.{name}", "a host is listed twice; name each host once")
        if len(members) < 2:
            _fail(where, f"clusters.{name}",
                  "a cluster needs at least two hosts; remove it for a single host")
        addresses: dict[str, str] = {}
        for m in members:
            if m not in hosts:
                near = difflib.get_close_matches(m, hosts, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f"; known hosts: {', '.join(hosts)}"
                _fail(where, f"clusters.{name}", f"unknown host {m!r}{hint}")
            if m in member_of:
                _fail(where, f"clusters.{name}",
                      f"host {m!r} is already in cluster {member_of[m]!r}; a host belongs to one cluster")
            member_of[m] = name
            addr = _cluster_address(hosts[m], where, name)
            if addr in addresses:
                _fail(where, f"hosts.{m}.peer_address",
                      f"{addr} is also {addresses[addr]}'s; each member needs its own peer address")
            addresses[addr] = m
        tls = _gossip_tls(tls_setting, [hosts[m] for m in members], where, name)
        for m in members:
            _check_cluster_timing(hosts[m], len(members), where, name)
            peers = tuple(_peer(hosts[o]) for o in members if o != m)
            out[m] = dataclasses.replace(hosts[m], cluster=Cluster(name=name, peers=peers, gossip_tls=tls))
    return out


def _cluster_entry(entry: Any, where: str, name: str) -> tuple[Any, Any]:
    """`NAME: [a, b]` or `NAME: {members: [a, b], gossip_tls: auto|true|false}` -> (members, gossip_tls)."""
    if not isinstance(entry, dict):
        return entry, "auto"
    unknown = sorted(set(map(str, entry)) - {"members", "gossip_tls"})
    if unknown:
        _fail(where, f"clusters.{name}.{unknown[0]}", "unknown key; a cluster has 'members' and 'gossip_tls'")
    if "members" not in entry:
        _fail(where, f"clusters.{name}.members", "missing: the list of host aliases, e.g. [test, prod]")
    return entry["members"], entry.get("gossip_tls", "auto")


def _gossip_tls(setting: Any, members: list[HostSettings], where: str, name: str) -> bool:
    """auto: on when every member's Alertmanager can (0.24+); true: required, refused where it cannot."""
    if setting not in ("auto", True, False):
        _fail(where, f"clusters.{name}.gossip_tls", f"expected auto, true or false, got {setting!r}")
    old = [h for h in members if not supports("alertmanager --cluster.tls-config", h.alertmanager.version)]
    if setting is True and old:
        _fail(where, f"hosts.{old[0].name}.alertmanager.version",
              f"{old[0].alertmanager.version} has no gossip TLS (0.24.0 or newer), which cluster {name!r} "
              f"asks for with gossip_tls: true; upgrade it or set gossip_tls: auto")
    return setting is True or (setting == "auto" and not old)


def _check_cluster_timing(h: HostSettings, members: int, where: str, name: str) -> None:
    """A group_interval shorter than the members' turns makes a cluster re-send a resolved alert as firing:
    the last member decides on what it saw at its flush, after the first one already sent the resolve
    (alertmanager#4008). Longer than every turn plus one for the send, the resolve is never overtaken."""
    need = members * CLUSTER_PEER_TIMEOUT
    value = h.alertmanager.group_interval
    if parse_duration(value) < need:
        _fail(where, f"hosts.{h.name}.alertmanager.group_interval",
              f"{value} is too short for cluster {name!r} of {members}: its last member sends "
              f"{(members - 1) * CLUSTER_PEER_TIMEOUT:g}s (--cluster.peer-timeout) after the first and would "
              f"re-send a resolved alert as firing; set at least {need:g}s for the cluster's hosts")


def _default_hosts(doc: dict, hosts: dict[str, HostSettings], where: str) -> tuple[str, ...]:
    """`default_hosts: test` or `[test, lab]`: aliases of this inventory, used when -H is absent."""
    value = doc.get("default_hosts")
    if value is None:
        return ()
    names = _convert(tuple[str, ...], value, where, "default_hosts")
    for i, name in enumerate(names):
        if name not in hosts:
            _fail(where, f"default_hosts[{i}]", f"unknown host {name!r}; known hosts: {', '.join(hosts)}")
    if not names:
        _fail(where, "default_hosts", "empty list; name a host or remove the key")
    return tuple(dict.fromkeys(names))
