"""Secrets: from the environment or an untracked secrets file, never from hosts.yml or git.

Lookup order for secret NAME of host ALIAS: env ROSEY_<ALIAS>_<NAME>, env ROSEY_<NAME>,
then the secrets file (`hosts: {ALIAS: {NAME: ...}}` beats a top-level `NAME: ...`).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from fabfile.config import certs, remote_write, yaml_file
from fabfile.config.inventory import Inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.needed_secrets import (
    GOSSIP_FILES,
    SECRET_NAMES,
    WEB_TLS_FILES,
    env_alias,
    peer_of,
    required_secrets,
)
from fabfile.config.settings import HostSettings
from fabfile.config.validators import secret_url

BCRYPT_MAX_BYTES = 72  # bcrypt ignores (or, since bcrypt 5, refuses) the bytes after these
# Every character str.splitlines() breaks at, and NUL: a secret is one line wherever it is printed or written
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\0"
# Shorter secrets are refused: a password this short is guessed at once, and masking a 1-2 character value
# in every printed line would mangle the output (so it could not be masked, only leak). Tokens and URLs
# are far longer.
MIN_SECRET_CHARS = 8


class SecretsError(InventoryError):
    """A missing secret or a bad secrets file. Part of the host's settings, so also an InventoryError."""


def env_var(name: str, alias: str | None = None) -> str:
    parts = ["ROSEY"] + ([env_alias(alias)] if alias else []) + [name]
    return "_".join(parts).upper()


def _read_file(path: Path) -> dict:
    try:
        doc = yaml_file.parse(yaml_file.read_text(path))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise SecretsError(yaml_file.unreadable(path, e)) from None
    except (yaml_file.DuplicateKey, yaml_file.TooDeep) as e:
        raise SecretsError(f"{path}{yaml_file.where(e)}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise SecretsError(f"{path}: not valid YAML{yaml_file.where(e)}; fix the syntax "
                           "(values are not shown)") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SecretsError(f"{path}: expected a mapping of secret names to values")
    for key in doc:
        if key != "hosts" and key not in SECRET_NAMES and not remote_write.is_secret_name(str(key)):
            raise SecretsError(f"{path}: {key}: unknown secret; known: {', '.join(SECRET_NAMES)} and "
                               f"remote_write_<target>_password or _token")
    if not isinstance(doc.get("hosts") or {}, dict):
        raise SecretsError(f"{path}: hosts: expected a mapping of host aliases to their secrets, "
                           f"like 'hosts: {{prod: {{web_password: ...}}}}'")
    return doc


def _problem(name: str, value: str) -> str | None:
    """What makes a secret unusable: bcrypt reads 72 bytes at most, no secret is a multi-line text (a
    newline would end a curl config or HTTP header line; U+2028 & co. would split a printed line, leaving
    half of it unmasked), and none is too short to mask."""
    if any(ch in value for ch in LINE_BREAKS):
        return "contains a line break (or a line/paragraph separator, or NUL); secrets are one line"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters; use a longer one"
    if name.endswith("_url"):
        url_problem = secret_url(value)
        if url_problem:
            return url_problem
    if name == "web_password" and len(value.encode()) > BCRYPT_MAX_BYTES:
        return f"is {len(value.encode())} bytes long; bcrypt uses at most {BCRYPT_MAX_BYTES}, shorten it"
    return None


def load_secrets(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The secrets `host` needs, or one error naming the first missing one and where to put it.

    Reads only: each secrets file once, and the TLS material already on this machine, with placeholders
    (certs.PENDING) for certificates not made yet; nothing is written. The steps that install them make
    those (`certs.issue_pending`); `load_secrets_issuing` does both at once.
    """
    out: dict[str, str] = {}
    docs: dict[Path, dict] = {}  # secrets file -> its parsed text, read once per call
    for name in required_secrets(host):
        peer = peer_of(name)
        if peer:  # a cluster peer's web password is that peer's own web_password
            out[name] = _lookup(inventory, inventory.host(peer), "web_password", docs)
        elif name not in GOSSIP_FILES and name not in WEB_TLS_FILES:
            out[name] = _lookup(inventory, host, name, docs)
    out.update(certs.material(inventory, host))
    return out


def load_secrets_issuing(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """`load_secrets` with the missing certificates made (writes beside the secrets file): for code that
    deploys the files outside the steps (bench, tests); the steps call `certs.issue_pending` themselves."""
    out = load_secrets(inventory, host)
    certs.issue_pending(inventory, host, out)
    return out


def _from_env(var: str) -> str | None:
    """A secret's environment variable; one not UTF-8 (Python keeps its bytes as lone surrogates, which
    crash the first write) is one line naming the variable, never its value."""
    value = os.environ.get(var)
    if value and not _is_utf8(value):
        raise SecretsError(f"{var} is not UTF-8 text; set it again from a UTF-8 terminal or file "
                           "(the value is not shown)")
    return value


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lookup(inventory: Inventory, host: HostSettings, name: str, docs: dict[Path, dict]) -> str:
    path = inventory.secrets_path(host)
    if path not in docs:
        docs[path] = _read_file(path)
    doc = docs[path]
    per_host = (doc.get("hosts") or {}).get(host.name) or {}
    if not isinstance(per_host, dict):
        raise SecretsError(f"{path}: hosts.{host.name}: expected a mapping of secret names to values")
    value = (_from_env(env_var(name, host.name)) or _from_env(env_var(name))
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
