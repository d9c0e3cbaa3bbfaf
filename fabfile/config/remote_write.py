"""`remote_write` targets from the inventory: their settings, secrets, checks and prometheus.yml blocks.

Every long-term store (Grafana Cloud/Mimir, Thanos Receive, VictoriaMetrics, Cortex) speaks Prometheus
remote write, so one target is a URL, an authentication (none, basic or bearer; the credential a secret read
from a file on the server, never written into prometheus.yml), extra headers (a tenant), TLS and queue
settings. Unset queue options keep the release's own defaults (they differ between 2.42 and 2.53+).

Why no new `external_labels`: Prometheus attaches external labels to the alerts it sends too, which would
change the alert label sets that Alertmanager's `group_by`, the inhibit rule's `equal:` and the drill rely
on. Instead every target gets write_relabel_configs (remote write only) that fill `env` and `host` where a
series lacks them (rule outputs) and add `writer: <host alias>`: together with the existing external label
`cluster`, every series is unique in a shared store, and the alert path stays byte for byte what it was.

Pure data and pure functions: imports only the shared URL check, the duration bounds and the counts' bounds.
Every number and duration has bounds (a 99999999999 capacity is a Prometheus that runs out of memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fabfile.config.durations import duration_between
from fabfile.config.receivers import https_url
from fabfile.config.validators import count_between

SECRET_PREFIX = "remote_write_"
WRITER_LABEL = "writer"  # which Prometheus wrote a series; added by write_relabel_configs, never to alerts
AUTH_SECRET = {"basic": "password", "bearer": "token"}  # auth -> suffix of its secret's name
# headers Prometheus sets itself or refuses in remote_write `headers` (config.reservedHeaders)
RESERVED_HEADERS = frozenset(h.lower() for h in (
    "Authorization", "Host", "Content-Encoding", "Content-Length", "Content-Type", "User-Agent", "Connection",
    "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Www-Authenticate", "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version", "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"))
RELABEL_ACTIONS = ("replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap", "lowercase", "uppercase")
_TARGET_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # part of a secret's name and its ROSEY_* variable
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HEADER = re.compile(r"[A-Za-z0-9-]+")
_SERVER_PATH = re.compile(r"/[A-Za-z0-9_./-]*")
_ONE_LINE = re.compile(r"[^\n\r\0]*")


def _check(fn: Callable[[Any], str | None], **kw: Any) -> Any:
    return field(metadata={"check": fn}, **kw)


def _target_name(v: str) -> str | None:
    if _TARGET_NAME.fullmatch(v):
        return None
    return f"expected a short name of lowercase letters, digits and _ like grafana_cloud, got {v!r}"


HOUR = 3600
_SHARDS = count_between(1, 1000, "shards")  # each shard holds `capacity` samples: memory grows with both


def _auth(v: str) -> str | None:
    return None if v in ("none", "basic", "bearer") else f"expected none, basic or bearer, got {v!r}"


def _headers(v: dict[str, str]) -> str | None:
    for name, value in v.items():
        if not _HEADER.fullmatch(name):
            return f"header name {name!r}: expected letters, digits and - (like X-Scope-OrgID)"
        if name.lower() in RESERVED_HEADERS:
            return (f"header {name!r} is set by Prometheus itself; credentials go in auth (basic or "
                    f"bearer, the secret in secrets.yml)")
        if not _ONE_LINE.fullmatch(value) or not value:
            return f"header {name!r}: expected one non-empty line of text"
    return None


def _server_path(v: str) -> str | None:
    if _SERVER_PATH.fullmatch(v):
        return None
    return f"expected an absolute path on the server like /etc/ssl/certs/store-ca.pem, got {v!r}"


def _label(v: str) -> str | None:
    return None if _LABEL.fullmatch(v) else f"expected a label name like env or __name__, got {v!r}"


def _labels(v: tuple[str, ...]) -> str | None:
    return next((e for e in map(_label, v) if e), None)


def _action(v: str) -> str | None:
    return None if v in RELABEL_ACTIONS else f"expected one of {', '.join(RELABEL_ACTIONS)}, got {v!r}"


def _one_line(v: str) -> str | None:
    return None if _ONE_LINE.fullmatch(v) else "expected one line of text"


@dataclass(frozen=True)
class Relabel:
    """One write_relabel_configs entry (as Prometheus spells it; unset keys keep Prometheus's defaults)."""

    action: str = _check(_action, default="replace")
    source_labels: tuple[str, ...] = _check(_labels, default=())
    separator: str | None = _check(_one_line, default=None)
    regex: str | None = _check(_one_line, default=None)
    target_label: str | None = _check(_label, default=None)
    replacement: str | None = _check(_one_line, default=None)


@dataclass(frozen=True)
class Queue:
    """queue_config: None keeps the release's default (2.42: capacity 2500, max_shards 200,
    max_samples_per_send 500; 2.53 and 3.x: 10000, 50, 2000). A small bot sends a few hundred series."""

    capacity: int | None = _check(count_between(1, 1_000_000, "samples per shard"), default=None)
    max_shards: int | None = _check(_SHARDS, default=None)
    min_shards: int | None = _check(_SHARDS, default=None)
    max_samples_per_send: int | None = _check(count_between(1, 100_000, "samples"), default=None)
    batch_send_deadline: str | None = _check(duration_between(0.001, HOUR), default=None)
    min_backoff: str | None = _check(duration_between(0.001, HOUR), default=None)
    max_backoff: str | None = _check(duration_between(0.001, 24 * HOUR), default=None)
    retry_on_http_429: bool | None = None
    # Prometheus 2.50.0 and newer; 0s: no limit
    sample_age_limit: str | None = _check(duration_between(0, 365 * 24 * HOUR), default=None)

    def options(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.__dataclass_fields__ if getattr(self, k) is not None]


@dataclass(frozen=True)
class TLS:
    ca_file: str | None = _check(_server_path, default=None)  # on the server; None: the system's CAs
    server_name: str | None = _check(_one_line, default=None)


@dataclass(frozen=True)
class Target:
    """One `remote_write:` entry of a host (or of `defaults`)."""

    name: str = _check(_target_name)
    url: str = _check(https_url("https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push",
                                "the samples and the credential"))
    auth: str = _check(_auth, default="none")
    username: str | None = _check(_one_line, default=None)  # basic auth only (e.g. a Grafana Cloud user id)
    headers: dict[str, str] = _check(_headers, default_factory=dict)  # not secrets: e.g. X-Scope-OrgID
    tls: TLS = TLS()
    remote_timeout: str | None = _check(duration_between(1, HOUR), default=None)
    queue: Queue = Queue()
    write_relabel_configs: tuple[Relabel, ...] = ()

    @property
    def secret(self) -> str | None:
        """The secret holding this target's password or token; None without auth."""
        suffix = AUTH_SECRET.get(self.auth)
        return f"{SECRET_PREFIX}{self.name}_{suffix}" if suffix else None


def is_secret_name(name: str) -> bool:
    """remote_write_<target>_password / _token: a secret name only inventories' targets make."""
    m = re.fullmatch(rf"{SECRET_PREFIX}(.+)_({'|'.join(AUTH_SECRET.values())})", name)
    return bool(m and _TARGET_NAME.fullmatch(m.group(1)))


def secrets(targets: tuple[Target, ...]) -> list[str]:
    return [t.secret for t in targets if t.secret]


def problems(targets: tuple[Target, ...], agent: bool) -> Iterator[tuple[str, str]]:
    """(field under the host, what to do) for what one field's check cannot see."""
    if agent and not targets:
        yield ("prometheus.mode", "agent mode keeps nothing queryable on this host: add at least one "
               "remote_write target (README 'Keeping history off the server') or use mode: server")
    seen: set[str] = set()
    for i, t in enumerate(targets):
        where = f"remote_write[{i}]"
        if t.name in seen:
            yield (f"{where}.name", f"{t.name!r} is used twice; give each target its own name")
        seen.add(t.name)
        if t.auth == "basic" and not t.username:
            yield (f"{where}.username", "auth: basic needs a username (the password is the secret "
                   f"{t.secret})")
        if t.auth != "basic" and t.username:
            yield (f"{where}.username", f"only auth: basic takes a username (auth is {t.auth})")
        for j, r in enumerate(t.write_relabel_configs):
            if r.action in ("replace", "lowercase", "uppercase") and not r.target_label:
                yield (f"{where}.write_relabel_configs[{j}].target_label", f"action {r.action} needs one")
            if r.action in ("keep", "drop") and not r.source_labels:
                yield (f"{where}.write_relabel_configs[{j}].source_labels",
                       f"action {r.action} needs the labels its regex matches, e.g. [__name__]")
        q = t.queue
        if q.min_shards and q.max_shards and q.min_shards > q.max_shards:
            yield (f"{where}.queue.min_shards", f"{q.min_shards} is above max_shards {q.max_shards}")


def _relabel_dict(r: Relabel) -> dict[str, Any]:
    keys = ("source_labels", "separator", "regex", "target_label", "replacement", "action")
    return {k: getattr(r, k) for k in keys if getattr(r, k) not in (None, ())}


def own_relabels(env: str, host: str) -> list[dict[str, Any]]:
    """What makes this host's series unique in a shared store (see the module docstring for why here)."""
    fill = [{"source_labels": [label], "regex": "", "target_label": label, "replacement": value}
            for label, value in (("env", env), ("host", host))]
    return [*fill, {"target_label": WRITER_LABEL, "replacement": host}]


def blocks(targets: tuple[Target, ...], env: str, host: str,
           secret_path: Callable[[str], str]) -> list[dict[str, Any]]:
    """The `remote_write:` entries of prometheus.yml, as the template writes them."""
    out = []
    for t in targets:
        auth: dict[str, Any] | None = None
        if t.auth == "basic":
            auth = {"basic_auth": {"username": t.username, "password_file": secret_path(t.secret or "")}}
        elif t.auth == "bearer":
            auth = {"authorization": {"credentials_file": secret_path(t.secret or "")}}
        tls = {k: v for k, v in (("ca_file", t.tls.ca_file), ("server_name", t.tls.server_name)) if v}
        out.append({
            "name": t.name, "url": t.url, "remote_timeout": t.remote_timeout, "headers": t.headers,
            "auth": auth, "tls": tls, "queue": t.queue.options(),
            "relabels": own_relabels(env, host) + [_relabel_dict(r) for r in t.write_relabel_configs]})
    return out
