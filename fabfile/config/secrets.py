"""Secrets: from the environment or an untracked secrets file, never from hosts.yml or git.

Lookup order for secret NAME of host ALIAS: env ROSEY_<ALIAS>_<NAME>, env ROSEY_<NAME>,
then the secrets file (`hosts: {ALIAS: {NAME: ...}}` beats a top-level `NAME: ...`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from fabfile.config import yaml_file
from fabfile.config.inventory import Inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.needed_secrets import (
    GOSSIP_CA,
    GOSSIP_CERT,
    GOSSIP_FILES,
    GOSSIP_KEY,
    SECRET_NAMES,
    WEB_CA,
    WEB_CERT,
    WEB_KEY,
    WEB_TLS_FILES,
    peer_of,
    required_secrets,
)
from fabfile.config.pki import PKI_DIR, WEB_PKI_DIR, ca_cert, issue, member_tls
from fabfile.config.settings import HostSettings

WEB_CA_NAME = "rosey web UIs CA"

BCRYPT_MAX_BYTES = 72  # bcrypt ignores (or, since bcrypt 5, refuses) the bytes after these


class SecretsError(InventoryError):
    """A missing secret or a bad secrets file. Part of the host's settings, so also an InventoryError."""


def env_var(name: str, alias: str | None = None) -> str:
    parts = ["ROSEY"] + ([re.sub(r"[^A-Za-z0-9]", "_", alias)] if alias else []) + [name]
    return "_".join(parts).upper()


def _read_file(path: Path) -> dict:
    try:
        doc = yaml_file.parse(yaml_file.read_text(path))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise SecretsError(yaml_file.unreadable(path, e)) from None
    except yaml_file.DuplicateKey as e:
        raise SecretsError(f"{path}{yaml_file.where(e)}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise SecretsError(f"{path}: not valid YAML{yaml_file.where(e)}; fix the syntax "
                           "(values are not shown)") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SecretsError(f"{path}: expected a mapping of secret names to values")
    for key in doc:
        if key != "hosts" and key not in SECRET_NAMES:
            raise SecretsError(f"{path}: {key}: unknown secret; known: {', '.join(SECRET_NAMES)}")
    if not isinstance(doc.get("hosts") or {}, dict):
        raise SecretsError(f"{path}: hosts: expected a mapping of host aliases to their secrets, "
                           f"like 'hosts: {{prod: {{web_password: ...}}}}'")
    return doc


def _problem(name: str, value: str) -> str | None:
    """What makes a secret unusable: bcrypt reads 72 bytes at most, and no secret is a multi-line text
    (a newline would end a curl config or HTTP header line)."""
    if any(ch in value for ch in "\r\n\0"):
        return "contains a line break or NUL byte; secrets are one line"
    if name == "web_password" and len(value.encode()) > BCRYPT_MAX_BYTES:
        return f"is {len(value.encode())} bytes long; bcrypt uses at most {BCRYPT_MAX_BYTES}, shorten it"
    return None


def load_secrets(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The secrets `host` needs, or one error naming the first missing one and where to put it."""
    out: dict[str, str] = {}
    need = required_secrets(host)
    for name in need:
        peer = peer_of(name)
        if peer:  # a cluster peer's web password is that peer's own web_password
            out[name] = _lookup(inventory, inventory.host(peer), "web_password")
        elif name not in GOSSIP_FILES and name not in WEB_TLS_FILES:
            out[name] = _lookup(inventory, host, name)
    if host.cluster and host.cluster.gossip_tls:
        out.update(gossip_material(inventory, host))
    if WEB_CA in need:  # the certificate and key only when this host's own UIs speak HTTPS
        out.update(web_material(inventory, host))
    return out


def web_pki_folder(inventory: Inventory, host: HostSettings) -> Path:
    """One web CA per secrets folder: hosts that share a secrets file share the CA."""
    return inventory.secrets_path(host).parent / WEB_PKI_DIR


def web_addresses(host: HostSettings) -> list[str]:
    """The names the host's UIs are reached by: loopback (the server's own checks, SSH tunnels), its
    address (a browser) and its peer address (the cluster's Prometheus servers)."""
    return list(dict.fromkeys(["127.0.0.1", "localhost", host.address, host.reached_by_peers]))


def web_material(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The host's web certificate and key (when its web.tls is on) and the CA bundle its clients trust:
    its own CA and every TLS peer's, once each."""
    folder = web_pki_folder(inventory, host)
    try:
        out: dict[str, str] = {}
        cas = []
        if host.web.tls:
            tls = issue(folder, WEB_CA_NAME, host.name, web_addresses(host))
            out.update({WEB_CERT: tls.cert, WEB_KEY: tls.key})
            cas.append(tls.ca_cert)
        for peer in host.cluster.peers if host.cluster else ():
            if peer.web_tls:
                cas.append(ca_cert(web_pki_folder(inventory, inventory.host(peer.name)), WEB_CA_NAME))
    except (OSError, ValueError) as e:
        raise SecretsError(f"{folder}: cannot make or read the web UIs' certificates "
                           f"({type(e).__name__}: {e}); check the folder's permissions or move it away to "
                           f"start a new CA") from None
    out[WEB_CA] = "".join(dict.fromkeys(cas))
    return out


def gossip_material(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The member's gossip CA, certificate and key, from the cluster's PKI beside the secrets file."""
    assert host.cluster is not None
    folder = inventory.secrets_path(host).parent / PKI_DIR / host.cluster.name
    try:
        tls = member_tls(folder, host.cluster.name, host.name, host.reached_by_peers)
    except (OSError, ValueError) as e:
        raise SecretsError(f"{folder}: cannot make or read the gossip certificates of cluster "
                           f"{host.cluster.name!r} ({type(e).__name__}: {e}); check the folder's permissions "
                           f"or move it away to start a new CA") from None
    return {GOSSIP_CA: tls.ca_cert, GOSSIP_CERT: tls.cert, GOSSIP_KEY: tls.key}


def _lookup(inventory: Inventory, host: HostSettings, name: str) -> str:
    path = inventory.secrets_path(host)
    doc = _read_file(path)
    per_host = (doc.get("hosts") or {}).get(host.name) or {}
    if not isinstance(per_host, dict):
        raise SecretsError(f"{path}: hosts.{host.name}: expected a mapping of secret names to values")
    value = (os.environ.get(env_var(name, host.name)) or os.environ.get(env_var(name))
             or per_host.get(name) or doc.get(name))
    if value in (None, ""):
        raise SecretsError(
            f"missing secret {name!r} for host {host.name}: set {env_var(name)} "
            f"(or {env_var(name, host.name)}) or add '{name}:' to {path}")
    if not isinstance(value, str):
        raise SecretsError(f"{path}: {name}: expected text (quote it)")
    problem = _problem(name, value)
    if problem:
        raise SecretsError(f"secret {name!r} for host {host.name}: {problem} (the value is not shown)")
    return value
