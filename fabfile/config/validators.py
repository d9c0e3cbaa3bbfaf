"""One validator per kind of value in hosts.yml.

Each takes the (already type-converted) value and returns an error text or None; a settings field names its
validator (`settings.check`), and the loader turns the text into one `InventoryError` line with the field.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import posixpath
import re
import string
import typing
import zoneinfo

import paramiko

from fabfile.config.durations import is_duration
from fabfile.config.receivers import url_problem
from fabfile.config.versions import is_release_version
from fabfile.errors import quoted

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
AM_WEEK = ("sunday", *WEEKDAYS[:-1])  # Alertmanager's order (Go's time.Weekday): what its ranges follow

# Every pattern is used with fullmatch: `$` alone accepts a trailing newline, which would end a unit's
# ExecStart line early (and drop the flags after it) or add a line to a config.
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_HOSTPORT_RE = re.compile(r"[A-Za-z0-9.\-]+:([0-9]{1,5})")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_SIZE_RE = re.compile(r"[0-9]+(B|KB|MB|GB|TB|PB|EB)")
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
BASE_DIR_ROOTS = ("/opt/", "/srv/", "/var/lib/")  # where base_dir may be, a directory below one of them


def ascii_digits(text: str) -> bool:
    """Only 0-9: str.isdigit() and int() also take '２', '٥' and '²' (the last crashes int())."""
    return text.isascii() and text.isdigit()


def port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else f"expected a TCP port 1-65535, got {v}"


def port_list(v: tuple[int, ...]) -> str | None:
    bad = [p for p in v if not 1 <= p <= 65535]
    return f"expected TCP port numbers like [443, 8000], got {bad[0]!r}" if bad else None


def port_map(v: dict[int, int]) -> str | None:
    bad = [p for kv in v.items() for p in kv if not 1 <= p <= 65535]
    return f"expected TCP port numbers like {{22: 2222}}, got {bad[0]!r}" if bad else None


def version(v: str) -> str | None:
    return None if is_release_version(v) else f"expected a release version like 2.48.0, got {v!r}"


def duration(v: str) -> str | None:
    if is_duration(v):
        return None
    return f"expected a Prometheus duration like 15s, 5m or 15d, got {v!r}"


def seconds_between(lo: int, hi: int) -> typing.Callable[[int], str | None]:
    """A whole number of seconds with bounds (a 99999999999 s SSH connect timeout never times out)."""
    def check(v: int) -> str | None:
        return None if lo <= v <= hi else f"expected {lo} to {hi} seconds, got {v}"
    return check


def count_between(lo: int, hi: int, unit: str) -> typing.Callable[[int], str | None]:
    def check(v: int) -> str | None:
        return None if lo <= v <= hi else f"expected {lo} to {hi} {unit}, got {v}"
    return check


_SIZE_UNITS = {u: 1 << (10 * i) for i, u in enumerate(("B", "KB", "MB", "GB", "TB", "PB", "EB"))}


def size(v: str) -> str | None:
    """Prometheus reads a size into 64-bit bytes (base 1024): past that it refuses to start."""
    m = _SIZE_RE.fullmatch(v)
    if not m:
        return f"expected a size like 10GB, got {quoted(v)}"
    digits = v[:-len(m.group(1))]
    if len(digits) > 19 or int(digits) * _SIZE_UNITS[m.group(1)] >= 1 << 63:
        return f"expected a size below 8EB, got {quoted(v)}"
    return None if int(digits) > 0 else f"expected a size above 0 (or no retention_size), got {v!r}"


def email(v: str) -> str | None:
    return None if _EMAIL_RE.fullmatch(v) else f"expected an email address like ops@example.com, got {v!r}"


def emails(v: list[str]) -> str | None:
    if not v:
        return "expected at least one email address"
    return next((e for e in map(email, v) if e), None)


def optional_emails(v: list[str]) -> str | None:
    return emails(v) if v else None


def hostport(v: str) -> str | None:
    m = _HOSTPORT_RE.fullmatch(v)
    if not m or not 1 <= int(m.group(1)) <= 65535:
        return f"expected host:port like smtp.example.com:587, got {v!r}"
    return None


def ip(v: str) -> str | None:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return f"expected an IP address like 10.0.0.12 (peers gossip to it), got {v!r}"
    return None


def address(v: str) -> str | None:
    if _ADDRESS_RE.fullmatch(v):
        return None
    return f"expected a host name or IP address like 203.0.113.7, got {v!r}"


def base_dir(v: str) -> str | None:
    if not _PATH_RE.fullmatch(v):
        return (f"expected an absolute path of letters, digits and _ . - / (no spaces or quotes), like "
                f"/opt/rosey-bot/monitoring, got {v!r}")
    if posixpath.normpath(v) != v:
        return f"write the path in normal form: {posixpath.normpath(v)!r} instead of {v!r}"
    if v in _SYSTEM_DIRS or v.startswith(_VIRTUAL_TREES):
        return f"{v} is a system or shared directory; use one of its own like /opt/rosey-bot/monitoring"
    return None


def base_dir_allowed(v: str, outside_allowlist: bool) -> str | None:
    """A blocklist cannot name every directory that is not ours (/home/rosey, /etc/ssh, /usr/local/lib/x):
    base_dir is chowned root:root 0755 and its files replaced as root, so it lives below /opt, /srv or
    /var/lib unless the user says otherwise, explicitly."""
    if outside_allowlist or v.startswith(BASE_DIR_ROOTS):
        return None
    return (f"{v} is not below /opt, /srv or /var/lib; it would be chowned root:root 0755 and its files "
            f"replaced as root. Use a directory of its own like /opt/rosey-bot/monitoring, or set "
            f"base_dir_outside_allowlist: true if {v} is meant for this")


def release_url(v: str) -> str | None:
    if "@" in v.split("://", 1)[-1].split("/", 1)[0]:  # user:password@host: the URL is printed, and in git
        return ("has a user name or password in it (user:password@...); it would be in git, in the output "
                "and on the server's command line: serve the releases without one, or use source: upload "
                "with archive_dir (the URL is not shown)")
    if not re.fullmatch(r"https?://[^\s\"'\\`$;|&<>]+", v):
        return f"expected an http(s):// URL without spaces or quotes, got {v!r}"
    try:  # `{version:x}`, `{version!r}`, `{version[0]}` pass a name check but crash or lie at install time
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(v) if f is not None]
    except ValueError:
        fields = [("?", "", None)]
    if any((f, spec, conv) != ("version", "", None) for f, spec, conv in fields):
        return "the only placeholder allowed is {version} (write a literal brace as {{ or }})"
    return None


def secret_url(v: str) -> str | None:
    """A webhook/heartbeat URL secret: the receivers' one https rule, its error never showing the URL."""
    return url_problem(v, "the URL (the secret)")


def ssh_fingerprint(blob: bytes) -> str:
    """OpenSSH's `SHA256:...` fingerprint of a public key blob (as `ssh-keygen -lf` prints it)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_pin(text: str) -> str:
    """`ssh.host_key` (a public key line or a SHA256 fingerprint) -> its SHA256 fingerprint; ValueError for
    anything else. The one parser of keys and fingerprints: the inventory checks with it, ssh pins with it."""
    text = text.strip()
    if text.startswith("SHA256:"):
        body = text[len("SHA256:"):]
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ValueError("not a SHA256 fingerprint")
        return "SHA256:" + base64.b64encode(raw).decode().rstrip("=")
    parts = text.split()
    if len(parts) < 2:
        raise ValueError("not a public key line")
    try:
        key = paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (ValueError, paramiko.SSHException, UnicodeError) as e:
        raise ValueError(f"not a public key line ({e})") from None
    return ssh_fingerprint(key.asbytes())


def host_key(v: str) -> str | None:
    try:
        parse_pin(v)
    except ValueError as e:
        return f"expected a public key line like 'ssh-ed25519 AAAA...' or a SHA256:... fingerprint ({e})"
    return None


def sources(v: list[str]) -> str | None:
    if not v:
        return "expected 'any' or a list of CIDRs like 203.0.113.0/24"
    for item in v:
        if item == "any":
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"expected 'any' or a CIDR like 203.0.113.0/24, got {item!r}"
        try:
            ipaddress.ip_network(item)
        except ValueError:  # 203.0.113.7/24 (or /0): the firewall would open the whole network, silently
            return (f"{item} has address bits set after its /{net.prefixlen} prefix; write "
                    f"{net.with_prefixlen} for the whole network or {item.split('/')[0]}/{net.max_prefixlen} "
                    "for the one address")
    if "any" in v and len(v) > 1:
        return "'any' already allows everyone; list either 'any' or CIDRs"
    return None


def everyone_source(v: typing.Iterable[str]) -> str | None:
    """What in (valid) `web.allow_from` lets anyone connect: `any`, a network of prefix length 0 (0.0.0.0/0,
    ::/0), or networks that together hold every address of one IP version (0.0.0.0/1 + 128.0.0.0/1). The
    one answer to "reachable by anyone" for the public-UI guard, the clear-text warning and the firewall
    plan, judged on the networks, not on how they are spelled."""
    items = list(v)
    whole = next((s for s in items if s == "any" or ipaddress.ip_network(s, strict=False).prefixlen == 0),
                 None)
    if whole:
        return whole
    for version in (4, 6):
        nets = [ipaddress.ip_network(s, strict=False) for s in items if s != "any"]
        nets = [n for n in nets if n.version == version]
        if [n.prefixlen for n in ipaddress.collapse_addresses(nets)] == [0]:  # type: ignore[arg-type]
            return " + ".join(str(n) for n in nets) + f" (together every IPv{version} address)"
    return None


def hhmm(v: str) -> str | None:
    if ascii_digits(v):  # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020
        return f"write the time in quotes, like \"09:00\" (unquoted, YAML read it as the number {v})"
    return None if _HHMM_RE.fullmatch(v) else f"expected a time HH:MM like 09:00, got {v!r}"


def timezone(v: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"expected an IANA time zone like Europe/Berlin or UTC, got {v!r}"
    return None


def weekdays(v: list[str]) -> str | None:
    if not v:
        return "expected at least one weekday or range like monday:friday"
    for item in v:
        ends = item.lower().split(":")
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            return f"expected weekday names or ranges like monday:friday, got {item!r}"
        # Alertmanager's week runs sunday to saturday: a range across sunday fails amtool on the server
        if len(ends) == 2 and AM_WEEK.index(ends[0]) > AM_WEEK.index(ends[1]):
            return (f"range {item!r} runs backwards in Alertmanager's week (sunday to saturday); write it "
                    f"as ranges within that week, e.g. [monday:saturday, sunday] or sunday:saturday")
    return None


def name(v: str) -> str | None:
    return None if _NAME_RE.fullmatch(v) else f"expected a plain name (letters, digits, _ . -), got {v!r}"


def private_ipv4(v: str) -> str | None:
    try:
        ok = ipaddress.IPv4Address(v).is_private
    except ValueError:
        ok = False
    return None if ok else f"expected a private IPv4 address like 192.168.77.11, got {v!r}"


def prometheus_mode(v: str) -> str | None:
    return None if v in ("server", "agent") else f"expected 'server' or 'agent', got {v!r}"


# the Debian releases a lab host can run (fabfile/lab/image.py builds one image per release)
LAB_RELEASES = ("bookworm", "trixie")


def lab_release(v: str) -> str | None:
    return None if v in LAB_RELEASES else f"expected {' or '.join(LAB_RELEASES)}, got {v!r}"


def source(v: str) -> str | None:
    return None if v in ("download", "upload") else f"expected 'download' or 'upload', got {v!r}"


def sha256(v: str) -> str | None:
    return None if re.fullmatch(r"[0-9a-f]{64}", v) else "expected 64 lowercase hex digits (sha256)"


def arch(v: str) -> str | None:
    ok = v in ("amd64", "arm64", "armv7", "386")
    return None if ok else f"expected amd64, arm64, armv7 or 386, got {v!r}"


