"""Lab credentials on the control machine: the SSH key for `rosey`, the guest's host key, the lab secrets."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import yaml

from fabfile.config.settings import HostSettings
from fabfile.config.validators import parse_pin
from fabfile.lab import hooks, paths
from fabfile.ssh.host_keys import Pin


def lab_key() -> Path:
    """`~/.cache/rosey-lab/id_ed25519` (the inventory's `ssh.key` of the lab hosts), made once."""
    return _keypair(paths.cache_dir() / "id_ed25519", "rosey-lab")


def host_key() -> Path:
    """The guest's sshd host key, kept across image rebuilds so known_hosts stays valid."""
    return _keypair(paths.cache_dir() / "ssh_host_ed25519_key", "rosey-lab-host")


def host_key_pin(host: HostSettings) -> Pin | None:
    """A lab host is pinned to the host key generated with the image (`host_key()`), so no prompt is needed;
    registered with fabfile/ssh by this package's __init__. Never creates a key; other hosts: None."""
    if not host.is_lab:
        return None
    pub = paths.cache_dir() / "ssh_host_ed25519_key.pub"
    if not pub.exists():
        return None
    return Pin(parse_pin(pub.read_text()), f"the lab image's host key ({pub})")


def known_hosts() -> Path:
    return paths.cache_dir() / "known_hosts"


def trust_port(address: str, port: int) -> None:
    """Record the lab host key for `[address]:port` in the lab's own known_hosts file."""
    pub = host_key().with_suffix(".pub").read_text().split()
    entry = f"[{address}]:{port} {pub[0]} {pub[1]}\n"
    path = known_hosts()
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    if entry not in lines:
        lines = [line for line in lines if not line.startswith(f"[{address}]:{port} ")] + [entry]
        path.write_text("".join(lines))


def ensure_secrets(host: str = "", hooks_port: int = 0) -> Path:
    """`secrets.yml` for the lab hosts: random values made once, mode 0600, never printed; with `host`, that
    host's chat/HTTP channel URLs and PagerDuty key at the shared HTTP catcher (`hosts.<host>`), added when
    missing, so a lab host whose `receivers` turn channels on finds their secrets."""
    path = paths.cache_dir() / "secrets.yml"
    if not path.exists():
        values = {"smtp_password": secrets.token_urlsafe(18), "web_password": secrets.token_urlsafe(18)}
        _write_private(path, values)
    if host and hooks_port:
        doc = yaml.safe_load(path.read_text()) or {}
        doc["hosts"] = doc.get("hosts") or {}
        own = doc["hosts"][host] = doc["hosts"].get(host) or {}
        wanted = hooks.lab_channels(host, hooks_port)[1]
        if any(own.get(k) != v for k, v in wanted.items()):
            own.update(wanted)
            _write_private(path, doc)
    os.chmod(path, 0o600)
    return path


def _write_private(path: Path, doc: dict) -> None:
    """Write `doc` as YAML readable by its owner only, never world-readable for a moment."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(doc, handle, default_flow_style=False)
    os.replace(tmp, path)


def _keypair(path: Path, comment: str) -> Path:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    os.chmod(path, 0o600)
    return path
