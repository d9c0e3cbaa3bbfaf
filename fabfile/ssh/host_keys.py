"""Verify the server's SSH host key like OpenSSH does, before any command or upload.

Fabric accepts any host key (Paramiko's AutoAddPolicy): a server that impersonates `prod` would get the
secrets and root commands. Here the key must match, in this order:
1. a pin in hosts.yml (`ssh.host_key`: a public key line or its SHA256 fingerprint), else one a registered
   provider gives (`register_pinned_keys`: the lab pins its hosts to the key generated with its image);
2. the user's known_hosts files (~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts, and UserKnownHostsFile /
   GlobalKnownHostsFile / HostKeyAlias from ~/.ssh/config), read line by line (known_hosts.py): a line that
   cannot be read is skipped and named, and while one may be this host's, its key is not "unknown".
An unknown key or a changed one is refused with one line that shows the server's fingerprint and how to
accept it (`inv host-key -H HOST --accept` records it in ~/.ssh/known_hosts only when asked).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from fabfile.config.settings import HostSettings
from fabfile.config.validators import parse_pin, ssh_fingerprint
from fabfile.errors import UserError
from fabfile.ssh import known_hosts
from fabfile.ssh.known_hosts import KnownHosts

USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


class HostKeyError(UserError):
    """The server's host key is unknown or changed: nothing was sent to it."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's `SHA256:...` fingerprint (as `ssh-keygen -lf` and ssh's own prompt print it)."""
    return ssh_fingerprint(key.asbytes())


def key_name(address: str, port: int) -> str:
    """How known_hosts names a host: `addr` on port 22, `[addr]:port` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class Pin:
    """What a host's key must be: a whole public key or only its fingerprint."""

    fingerprint: str
    source: str  # where the pin comes from, for messages


PinProvider = Callable[[HostSettings], Pin | None]
_providers: list[PinProvider] = []


def register_pinned_keys(provider: PinProvider) -> None:
    """Let a package that makes hosts (the lab: keys generated with its image) pin their keys without this
    package importing it. A provider answers None for hosts it does not know; registering twice is a no-op."""
    if provider not in _providers:
        _providers.append(provider)


def pin_of(host: HostSettings) -> Pin | None:
    """hosts.yml's `ssh.host_key` first, then the first registered provider that knows the host."""
    if host.ssh.host_key:
        return Pin(parse_pin(host.ssh.host_key), f"hosts.yml hosts.{host.name}.ssh.host_key")
    return next((pin for pin in (p(host) for p in _providers) if pin), None)


def _ssh_config(address: str) -> dict:
    path = Path(os.path.expanduser("~/.ssh/config"))
    if not path.is_file():
        return {}
    try:
        return dict(paramiko.SSHConfig.from_path(str(path)).lookup(address))
    except (OSError, paramiko.SSHException, ValueError):
        return {}


def known_hosts_files(address: str, port: int = 22) -> tuple[list[Path], str]:
    """The known_hosts files OpenSSH would read for `address`, and the name it files the key under: the
    `HostKeyAlias` alone when ~/.ssh/config sets one (OpenSSH adds no port to it), else `key_name`."""
    cfg = _ssh_config(address)
    def words(key: str, default: str) -> list[str]:
        value = cfg.get(key) or default
        return [w for v in ([value] if isinstance(value, str) else value) for w in str(v).split()]

    names = words("userknownhostsfile", USER_KNOWN_HOSTS) + words("globalknownhostsfile", GLOBAL_KNOWN_HOSTS)
    files = [Path(os.path.expanduser(p)) for p in names if p.lower() != "none"]
    return files, cfg.get("hostkeyalias") or key_name(address, port)


def known_keys(address: str, port: int) -> tuple[KnownHosts, Path, str]:
    """What the known_hosts files hold for this host (keys and unreadable lines), the user file (where
    --accept writes) and the name the host is filed under."""
    files, name = known_hosts_files(address, port)
    user_file = files[0] if files else Path(os.path.expanduser(USER_KNOWN_HOSTS))
    return known_hosts.read(files, name), user_file, name


def _how_to_accept(host: HostSettings, fp: str) -> str:
    return (f"if that is the server's key, run `inv host-key -H {host.name} --accept` or pin it in hosts.yml "
            f"as hosts.{host.name}.ssh.host_key: {fp}")


def check(host: HostSettings, server_key: paramiko.PKey) -> None:
    """Accept the key or raise HostKeyError (one line with the fingerprint and what to do)."""
    fp = fingerprint(server_key)
    where = f"host {host.name} ({host.address}:{host.ssh.port})"
    pin = pin_of(host)
    if pin:
        if pin.fingerprint == fp:
            return
        raise HostKeyError(f"{where}: HOST KEY MISMATCH: the server shows {fp}, {pin.source} says "
                           f"{pin.fingerprint}; nothing was sent. Someone may be impersonating it; if the "
                           f"server was really reinstalled, update the pin")
    found, user_file, name = known_keys(host.address, host.ssh.port)
    def same(k: paramiko.PKey) -> bool:
        return k.get_name() == server_key.get_name() and k.asbytes() == server_key.asbytes()

    if any(same(k) for k in found.revoked):
        raise HostKeyError(f"{where}: REVOKED HOST KEY {server_key.get_name()} {fp}: a known_hosts file "
                           f"marks it @revoked; nothing was sent")
    if any(same(k) for k in found.keys):
        return
    if found.keys:
        raise HostKeyError(f"{where}: HOST KEY CHANGED: the server shows {server_key.get_name()} {fp}, "
                           f"which {user_file} does not hold for it; nothing was sent. Someone may be "
                           f"impersonating it; if the server was really reinstalled, remove the old line "
                           f"with `ssh-keygen -R '{name}'` and accept the new key")
    unreadable = found.unreadable_for(name)
    if unreadable:
        raise HostKeyError(f"{where}: host key {server_key.get_name()} {fp} cannot be checked: "
                           f"{unreadable[0]} could not be read and may be this host's; nothing was sent. "
                           f"Fix or remove that line")
    raise HostKeyError(f"{where}: unknown host key {server_key.get_name()} {fp}; nothing was sent. Check the "
                       f"fingerprint on the server (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); "
                       + _how_to_accept(host, fp)
                       + (f" (first fix {found.skipped[0]}: it could not be read)" if found.skipped else ""))


class VerifyPolicy(paramiko.MissingHostKeyPolicy):
    """Paramiko calls this for every key (the client loads no key files itself): accept or refuse."""

    def __init__(self, host: HostSettings) -> None:
        self.host = host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        check(self.host, key)


def server_key(host: HostSettings, timeout: float | None = None) -> paramiko.PKey:
    """The key the server presents, read without logging in or sending anything but the SSH handshake."""
    limit = timeout or host.ssh.connect_timeout
    sock = socket.create_connection((host.address, host.ssh.port), timeout=limit)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=limit)
        # set once the server signed this exchange with it; paramiko's getter also wants the session still
        # open, and a server may close it right after the handshake (we never log in)
        return transport.host_key or transport.get_remote_server_key()
    finally:
        transport.close()


class CannotRecord(HostKeyError):
    """`--accept` refused: a known_hosts file could not be read completely, so "unknown" is not certain."""


def record(host: HostSettings, key: paramiko.PKey) -> Path:
    """Append the key to the user's known_hosts (made 0600 if new), as `ssh` does after "yes", under the
    name OpenSSH looks it up by (the HostKeyAlias when set). Refused while any known_hosts line cannot be
    read: that line might be this host's old key, and appending would make plain `ssh` trust a new one."""
    found, path, name = known_keys(host.address, host.ssh.port)
    if found.skipped:
        first = found.skipped[0]
        more = f" (and {len(found.skipped) - 1} more)" if len(found.skipped) > 1 else ""
        raise CannotRecord(f"host {host.name}: not recorded: {first}{more} could not be read, so this key "
                           f"may not really be new; fix or remove that line, then accept again")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line)
    return path
