"""Secrets: from the environment or an untracked secrets file, never from hosts.yml or git.

Lookup order for secret NAME of host ALIAS: env ROSEY_<ALIAS>_<NAME>, env ROSEY_<NAME>,
then the secrets file (`hosts: {ALIAS: {NAME: ...}}` beats a top-level `NAME: ...`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from fabfile.config.inventory import HostSettings, Inventory, InventoryError
from fabfile.config.needed_secrets import SECRET_NAMES, required_secrets


class SecretsError(InventoryError):
    """A missing secret or a bad secrets file. Part of the host's settings, so also an InventoryError."""


def env_var(name: str, alias: str | None = None) -> str:
    parts = ["ROSEY"] + ([re.sub(r"[^A-Za-z0-9]", "_", alias)] if alias else []) + [name]
    return "_".join(parts).upper()


def _read_file(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except yaml.YAMLError:
        raise SecretsError(f"{path}: not valid YAML; fix the syntax (values are not shown)") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SecretsError(f"{path}: expected a mapping of secret names to values")
    for key in doc:
        if key != "hosts" and key not in SECRET_NAMES:
            raise SecretsError(f"{path}: {key}: unknown secret; known: {', '.join(SECRET_NAMES)}")
    return doc


def load_secrets(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The secrets `host` needs, or one error naming the first missing one and where to put it."""
    path = inventory.secrets_path(host)
    doc = _read_file(path)
    per_host = (doc.get("hosts") or {}).get(host.name) or {}
    if not isinstance(per_host, dict):
        raise SecretsError(f"{path}: hosts.{host.name}: expected a mapping of secret names to values")
    out: dict[str, str] = {}
    for name in required_secrets(host):
        value = (os.environ.get(env_var(name, host.name)) or os.environ.get(env_var(name))
                 or per_host.get(name) or doc.get(name))
        if value in (None, ""):
            raise SecretsError(
                f"missing secret {name!r} for host {host.name}: set {env_var(name)} "
                f"(or {env_var(name, host.name)}) or add '{name}:' to {path}")
        if not isinstance(value, str):
            raise SecretsError(f"{path}: {name}: expected text (quote it)")
        out[name] = value
    return out
