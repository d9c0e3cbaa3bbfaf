"""Host settings -> the exact files deployed to that host. Pure: no I/O besides reading templates/rules.

Decisions (what goes in, what depends on the version) are made here in Python; the Jinja2 templates under
monitoring/ and systemd/ only give them shape. The same output feeds `inv render` and `deploy-configs`,
and re-rendering unchanged settings gives byte-identical files (that is what makes deploys idempotent).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import jinja2
import yaml

from fabfile.config import receivers, remote_write
from fabfile.config.certs import is_pending
from fabfile.config.inventory import PROJECT_ROOT, Inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.labels import (
    BOT_JOB,
    CLUSTER_LABEL,
    PEER_ALERTMANAGER_JOB,
    PEER_PROMETHEUS_JOB,
)
from fabfile.config.layout import (
    ALERTMANAGER,
    PROMETHEUS,
    SECRET_MODE,
    SERVICE_USERS,
    binary_path,
    data_dir,
    release_dir,
    remote_path,
    secret_ownership,
    secret_path,
)
from fabfile.config.needed_secrets import (
    GOSSIP_CA,
    GOSSIP_CERT,
    GOSSIP_KEY,
    GOSSIP_TLS_CONFIG,
    WEB_CA,
    WEB_CERT,
    WEB_KEY,
    WEB_TLS_CONFIG,
    peer_secret,
    required_secrets,
)
from fabfile.config.rules_file import read_rules
from fabfile.config.settings import HostSettings
from fabfile.config.versions import (
    BOT_FALLBACK_SCRAPE_PROTOCOL,
    FEATURES,
    PROMETHEUS_CONSOLES_UNTIL,
    at_least,
    supports,
)

NOTIFICATIONS_SOURCE = PROJECT_ROOT / "monitoring" / "notifications.tmpl"  # deployed as it is
BCRYPT_COST = 10  # Prometheus/Alertmanager verify it on authenticated requests (the self-scrapes too)


@dataclass(frozen=True)
class SecretFile:
    """A secret to place on the server. Content exactly as given: no trailing newline is added."""

    name: str  # secret name, e.g. web_password
    path: str  # absolute remote path, <base_dir>/secrets/<name>
    content: str = field(repr=False)  # never shown by repr()/logs
    group: str = ""  # this group may read
    mode: int = SECRET_MODE
    owner: str = "root"


@dataclass(frozen=True)
class Rendered:
    host: str
    files: dict[str, str]  # layout.FILENAMES, in that order
    secret_files: list[SecretFile]


# ---------------------------------------------------------------- rendering


def _quote(value: Any) -> str:
    """A YAML scalar that means exactly `value` (JSON is YAML); keeps user text from breaking the file."""
    return json.dumps(value, ensure_ascii=False)


_UNIT_PLAIN = re.compile(r"[A-Za-z0-9_./:=,@+-]+")
_UNIT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "%": "%%", "$": "$$"}


def unit_arg(value: Any) -> str:
    """One argument of a unit's Exec line, exactly as given: systemd splits on spaces, ends the line at a
    newline and expands `%` specifiers and `$VARS`; a double-quoted word with C escapes keeps it whole."""
    text = str(value)
    if _UNIT_PLAIN.fullmatch(text):
        return text
    return '"' + "".join(_UNIT_ESCAPES.get(ch, ch) for ch in text) + '"'


def unit_path(value: Any) -> str:
    """A path in a unit setting (WorkingDirectory=, ReadWritePaths=): these take no quoting, so only a
    path of plain characters is written (the inventory's base_dir check guarantees it)."""
    text = str(value)
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*", text):
        raise ValueError(f"unsafe path for a systemd unit: {text!r}")  # a gap in validation: a bug
    return text


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    """One per process: each template is compiled once (then only its file's mtime is checked), not on every
    render; a run renders each host several times (pre-flight, deploy-configs, install-services, verify)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PROJECT_ROOT)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["q"] = _quote
    env.filters["unit_arg"] = unit_arg
    env.filters["unit_path"] = unit_path
    return env


def _need(host: HostSettings, where: str, key: str, field_path: str, fix: str) -> None:
    f = FEATURES[key]
    version = getattr(host, f.component).version
    if not supports(key, version):
        raise InventoryError(
            f"{where}: hosts.{host.name}.{field_path}: needs {f.what}, which {f.component} {version} lacks "
            f"(since {f.since}); {fix}")


def _check_versions(host: HostSettings, where: str) -> None:
    """Refuse settings the host's releases cannot run, before any file is written."""
    for key in ("prometheus --web.config.file", "alertmanager --web.config.file",
                "alertmanager time_intervals location"):
        f = FEATURES[key]
        _need(host, where, key, f"{f.component}.version", f"set it to {f.since} or newer")
    if host.prometheus.agent:
        _need(host, where, "prometheus agent mode", "prometheus.mode",
              "set prometheus.version to 2.32.0 or newer")
    for i, target in enumerate(host.remote_write):
        if target.queue.sample_age_limit:
            _need(host, where, "prometheus remote_write sample_age_limit",
                  f"remote_write[{i}].queue.sample_age_limit",
                  "set prometheus.version to 2.50.0 or newer, or remove sample_age_limit")
    r = host.receivers
    if r.email.auth_username:
        _need(host, where, "alertmanager smtp_auth_password_file", "receivers.email.auth_username",
              "set alertmanager.version to 0.25.0 or newer (the password must stay out of alertmanager.yml)")
    for rtype, settings in receivers.enabled(r):
        integration = rtype.integration(settings)
        _need(host, where, f"alertmanager {integration.what}", f"receivers.{rtype.name}",
              f"set alertmanager.version to {integration.since} or newer, or remove receivers.{rtype.name}")


def _prometheus_context(host: HostSettings) -> dict[str, Any]:
    p, am = host.prometheus, host.alertmanager
    auth = None
    if host.web.basic_auth:
        auth = {"username": host.web.username, "password_file": secret_path(host, "web_password")}
    # the bot is not a Prometheus client library: on 3.x a missing/odd Content-Type must not fail its scrape
    has_fallback = supports("prometheus fallback_scrape_protocol", p.version)
    fallback = BOT_FALLBACK_SCRAPE_PROTOCOL if has_fallback else None
    own = {"env": host.env, "host": host.name, "peer": None}  # host: which server, in every message
    tls = _client_tls(host, host.web.tls)
    jobs = [
        {"name": BOT_JOB, "target": f"localhost:{host.bot_port}", "metrics_path": "/api/metrics",
         "basic_auth": None, "fallback_scrape_protocol": fallback, "tls": None, **own},
        {"name": "prometheus", "target": f"localhost:{p.port}", "metrics_path": None, "basic_auth": auth,
         "fallback_scrape_protocol": None, "tls": tls, **own},
        {"name": "alertmanager", "target": f"localhost:{am.port}", "metrics_path": None, "basic_auth": auth,
         "fallback_scrape_protocol": None, "tls": tls, **own},
    ]
    # Every Alertmanager of the cluster gets every alert (never one through a load balancer): the cluster
    # deduplicates, and the survivor still notifies when one is gone. Ours first, as localhost.
    alertmanagers = [{"target": f"localhost:{am.port}", "basic_auth": auth, "tls": tls}]
    for peer in host.cluster.peers if host.cluster else ():
        peer_auth = None
        if peer.web_username:
            peer_auth = {"username": peer.web_username,
                         "password_file": secret_path(host, peer_secret(peer.name))}
        peer_tls = _client_tls(host, peer.web_tls)
        alertmanagers.append({"target": f"{peer.address}:{peer.alertmanager_port}", "basic_auth": peer_auth,
                              "tls": peer_tls})
        # the peer's monitoring, watched from here (MonitoringPeerDown); job names keep the scopes apart
        for job, port in ((PEER_PROMETHEUS_JOB, peer.prometheus_port), (PEER_ALERTMANAGER_JOB,
                                                                          peer.alertmanager_port)):
            jobs.append({"name": job, "target": f"{peer.address}:{port}", "metrics_path": None,
                         "basic_auth": peer_auth, "fallback_scrape_protocol": None, "env": peer.env,
                         "host": peer.name,
                         "peer": peer.name, "tls": peer_tls})
    return {
        "host": host.name, "scrape_interval": p.scrape_interval, "evaluation_interval": p.evaluation_interval,
        "cluster": CLUSTER_LABEL, "jobs": jobs, "alertmanagers": alertmanagers,
        "rule_files": ["alert_rules.yml"],  # relative: resolved next to prometheus.yml
        "agent": p.agent,  # no alerting, no rules: the central store evaluates them
        "remote_write": remote_write.blocks(host.remote_write, host.env, host.name,
                                            lambda name: secret_path(host, name)),
    }


def _alertmanager_context(host: HostSettings) -> dict[str, Any]:
    am, r, bh = host.alertmanager, host.receivers, host.business_hours
    email = r.email
    to = ", ".join(email.to)
    critical = list(dict.fromkeys([*(email.critical_to or email.to), *(email.to if email.critical_cc_default
                                                                       else ())]))
    subjects = {
        "email-default": ("[Rosey Bot] {{ .GroupLabels.alertname }}", to),
        "email-critical": ("🚨 [CRITICAL] Rosey Bot: {{ .GroupLabels.alertname }}", ", ".join(critical)),
        "email-info": ("ℹ️ [INFO] Rosey Bot: {{ .GroupLabels.alertname }}", to),
    }
    blocks: list[dict[str, Any]] = [
        {"name": name, "email": {"to": addrs, "subject": subject}}
        for name, (subject, addrs) in subjects.items()]
    first: list[dict[str, Any]] = []  # routes before the emails (the Watchdog's: it is never mailed)
    last: list[dict[str, Any]] = []  # receivers that are sinks: no integration
    routes: list[dict[str, Any]] = [
        {"matchers": ['severity="critical"'], "receiver": "email-critical", "continue": True, "active": None,
         "options": []}]
    # the receiver table's types: each its own receiver and route (critical ones continue), so amtool shows
    # each one and a failing chat webhook never delays or retries the critical email
    for rtype, settings in receivers.routed(r):
        if settings is None:  # off, with a sink: the route stays and ends in a receiver that sends nothing
            if not any(b["name"] == rtype.sink_when_off for b in last):
                last.append({"name": rtype.sink_when_off})
            options = []
        else:
            integration = rtype.integration(settings)
            blocks.append({"name": rtype.receiver, "integration": {
                "key": integration.config_key, "file_option": integration.file_option,
                "file": secret_path(host, rtype.secret), "options": rtype.options(settings)}})
            options = rtype.route_options(settings)
        route = {"matchers": list(rtype.route.matchers), "receiver": rtype.receiver_for(settings),
                 "continue": rtype.route.continue_, "active": None, "options": options}
        (first if rtype.route.first else routes).append(route)
    routes = first + routes
    blocks += last
    routes.append({"matchers": ['severity="info"'], "receiver": "email-info", "continue": False,
                   "active": ["business-hours"], "options": []})
    # No catch-all: an alert a child route took never reaches the root's email-default as well, so each
    # alert reaches each address once (critical: email-critical, plus chat receivers when configured).
    return {
        "host": host.name,
        "resolve_timeout": am.resolve_timeout,
        "smtp": {"smarthost": email.smarthost, "from": email.sender, "require_tls": email.require_tls,
                 "auth_username": email.auth_username,
                 "password_file": secret_path(host, "smtp_password") if email.auth_username else None},
        "group_by": ["alertname", "cluster", "env"],
        "group_wait": am.group_wait, "group_interval": am.group_interval,
        "repeat_interval": am.repeat_interval,
        "routes": routes, "receivers": blocks,
        "templates": ["notifications.tmpl"],  # relative: Alertmanager resolves it next to alertmanager.yml
        "business_hours": {"name": "business-hours", "weekdays": [w.lower() for w in bh.weekdays],
                           "start": bh.start, "end": bh.end, "location": bh.timezone},
        "inhibit": {"source": ['alertname="BotDown"'], "target": ['component="bot"', 'alertname!="BotDown"'],
                    "equal": ["cluster", "env"]},
    }


def web_password_hash(password: str, current: str | None = None) -> str:
    """The server's hash when the password still verifies against it, else a new one with a random salt.

    Why keep it: a new salt would change web.yml on every deploy ("changed", a reload) for nothing. Why
    random: a salt derived from host and user names would be shared by every deployment with the same names,
    so one precomputed table would serve them all.
    """
    if current:
        try:
            if bcrypt.checkpw(password.encode(), current.encode()):
                return current
        except ValueError:  # not a bcrypt hash (edited by hand): replace it
            pass
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


def current_web_hash(web_yml: str, username: str) -> str | None:
    """The user's hash in a web.yml read from the server (None: no file, no user, not YAML)."""
    try:
        doc = yaml.safe_load(web_yml) or {}
    except yaml.YAMLError:
        return None
    users = doc.get("basic_auth_users") if isinstance(doc, dict) else None
    value = users.get(username) if isinstance(users, dict) else None
    return value if isinstance(value, str) else None


UNHASHED = "(not hashed: this render is not deployed)"


def _web_users(host: HostSettings, secrets: dict[str, str], web_hash: str | None,
               hash_password: bool) -> dict[str, str]:
    """{user: bcrypt hash}, computed once per render: web.yml and web_tls.yml carry the same hash."""
    if not host.web.basic_auth:
        return {}
    if not hash_password:
        return {host.web.username: UNHASHED}
    return {host.web.username: web_password_hash(secrets["web_password"], web_hash)}


def _web_context(host: HostSettings, users: dict[str, str], tls: bool = False) -> dict[str, Any]:
    server_tls = {"cert": secret_path(host, WEB_CERT), "key": secret_path(host, WEB_KEY)} if tls else None
    return {"host": host.name, "users": users, "tls": server_tls}


def web_config_path(host: HostSettings) -> str:
    """The web config the units name: web.yml (plain HTTP), or web_tls.yml (HTTPS). Both services choose
    HTTP or HTTPS when they start, so turning TLS on or off changes the units and restarts them; until
    then the running listener keeps reading its own, still valid, file."""
    if host.web.tls:
        return secret_path(host, WEB_TLS_CONFIG)
    return remote_path(host, "web.yml")


def _client_tls(host: HostSettings, tls: bool) -> dict[str, str] | None:
    """How this Prometheus reaches a UI that speaks HTTPS: trusting only the CAs in web_ca.crt."""
    return {"ca_file": secret_path(host, WEB_CA)} if tls else None


def prometheus_flags(host: HostSettings) -> list[str]:
    p = host.prometheus
    flags = [f"--config.file={remote_path(host, 'prometheus.yml')}"]
    if p.agent:  # the --storage.tsdb.* flags are refused in agent mode; its WAL has flags of its own, in a
        # directory of its own inside the data dir (a server's TSDB WAL is not the agent's to replay)
        flags += ["--agent" if supports("prometheus --agent", p.version) else "--enable-feature=agent",
                  f"--storage.agent.path={agent_wal_dir(host)}"]
    else:
        flags += [f"--storage.tsdb.path={data_dir(host, PROMETHEUS)}",
                  f"--storage.tsdb.retention.time={p.retention_time}"]
        if p.retention_size:  # flag exists in every release we accept (2.24+)
            flags.append(f"--storage.tsdb.retention.size={p.retention_size}")
    flags += [
        f"--web.listen-address=:{p.port}",
        f"--web.config.file={web_config_path(host)}",
        "--web.enable-lifecycle",  # POST /-/reload for the deploy step
    ]
    if not at_least(p.version, PROMETHEUS_CONSOLES_UNTIL):
        rel = release_dir(host, PROMETHEUS)
        flags += [f"--web.console.templates={rel}/consoles",
                  f"--web.console.libraries={rel}/console_libraries"]
    return flags


def agent_wal_dir(host: HostSettings) -> str:
    return f"{data_dir(host, PROMETHEUS)}/agent"


def alertmanager_flags(host: HostSettings) -> list[str]:
    am = host.alertmanager
    flags = [
        f"--config.file={remote_path(host, 'alertmanager.yml')}",
        f"--storage.path={data_dir(host, ALERTMANAGER)}",
        f"--web.listen-address=:{am.port}",
        f"--web.config.file={web_config_path(host)}",
    ]
    if host.cluster:
        # gossip on the address the peers reach us on (a private one where there is one), never 0.0.0.0
        me = f"{host.reached_by_peers}:{am.cluster_port}"
        flags += [f"--cluster.listen-address={me}", f"--cluster.advertise-address={me}"]
        flags += [f"--cluster.peer={p.address}:{p.cluster_port}" for p in host.cluster.peers]
        if supports("alertmanager --cluster.label", am.version):
            flags.append(f"--cluster.label={host.cluster.name}")
        if host.cluster.gossip_tls:
            flags.append(f"--cluster.tls-config={secret_path(host, GOSSIP_TLS_CONFIG)}")
    else:
        flags.append("--cluster.listen-address=")  # empty: clustering off, so no address is needed
    return flags


def gossip_fingerprint(secrets: dict[str, str]) -> str:
    """Alertmanager reads its gossip certificates once, at start: their hash goes into the unit, so a new
    certificate changes the unit and install-services restarts it (a reload would keep the old one).
    A read-only render (dry run, `inv render`) of a member whose certificate is not made yet says so."""
    material = "".join(secrets.get(n, "") for n in (GOSSIP_CA, GOSSIP_CERT, GOSSIP_KEY))
    if is_pending(material):
        return "(not issued yet)"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _gossip_tls_context(host: HostSettings) -> dict[str, Any]:
    assert host.cluster is not None
    return {"cluster": host.cluster.name, "host": host.name, "ca": secret_path(host, GOSSIP_CA),
            "cert": secret_path(host, GOSSIP_CERT), "key": secret_path(host, GOSSIP_KEY)}


def _unit_context(host: HostSettings, service: str, secrets: dict[str, str] | None = None) -> dict[str, Any]:
    flags = prometheus_flags(host) if service == PROMETHEUS else alertmanager_flags(host)
    notes = []
    if service == ALERTMANAGER and host.cluster and host.cluster.gossip_tls:
        notes.append(f"gossip TLS material {gossip_fingerprint(secrets or {})} (a new certificate "
                     f"changes this line: Alertmanager restarts to read it)")
    return {
        "notes": notes,
        "host": host.name, "env": host.env, "service": service,
        "description": {PROMETHEUS: "Prometheus", ALERTMANAGER: "Alertmanager"}[service],
        "documentation": {PROMETHEUS: "https://prometheus.io/docs/prometheus/latest/",
                          ALERTMANAGER: "https://prometheus.io/docs/alerting/latest/alertmanager/"}[service],
        "version": getattr(host, service).version,
        "user": SERVICE_USERS[service], "binary": binary_path(service), "flags": flags,
        "data_dir": data_dir(host, service), "working_dir": data_dir(host, service),
    }


def render_host(inventory: Inventory, host: HostSettings, secrets: dict[str, str], *,
                rules_path: Path | None = None, web_hash: str | None = None,
                hash_password: bool = True) -> Rendered:
    """Everything deployed to `host`: the seven files and the secret files its configs point at.

    `web_hash`: the web UI password's hash now on the server, kept when the password still matches it.
    `hash_password=False`: web.yml (and web_tls.yml) carry UNHASHED instead of a bcrypt hash, for a caller
    that only reads the other files (bcrypt costs 0.05-0.2 s of CPU per render, on purpose).
    """
    where = inventory.path.name
    _check_versions(host, where)
    rules = read_rules(rules_path)
    env = _env()

    def tpl(path: str, context: dict[str, Any]) -> str:
        return env.get_template(path).render(context)

    users = _web_users(host, secrets, web_hash, hash_password)
    files = {
        "prometheus.yml": tpl("monitoring/prometheus.yml.j2", _prometheus_context(host)),
        "alert_rules.yml": rules,
        "alertmanager.yml": tpl("monitoring/alertmanager.yml.j2", _alertmanager_context(host)),
        "notifications.tmpl": NOTIFICATIONS_SOURCE.read_text(),
        "web.yml": tpl("monitoring/web.yml.j2", _web_context(host, users)),
        "prometheus.service": tpl("systemd/prometheus.service.j2", _unit_context(host, PROMETHEUS)),
        "alertmanager.service": tpl("systemd/alertmanager.service.j2",
                                    _unit_context(host, ALERTMANAGER, secrets)),
    }
    generated = {}
    if host.cluster and host.cluster.gossip_tls:
        generated[GOSSIP_TLS_CONFIG] = tpl("monitoring/gossip_tls.yml.j2", _gossip_tls_context(host))
    if host.web.tls:  # the same users (and hash) as web.yml, plus the server certificate
        generated[WEB_TLS_CONFIG] = tpl("monitoring/web.yml.j2", _web_context(host, users, tls=True))
    secret_files = []
    for name in required_secrets(host):
        content = secrets.get(name, generated.get(name))
        if content is None:
            raise InventoryError(f"missing secret {name!r} for host {host.name} (load it with load_secrets)")
        owner, group, mode = secret_ownership(name)
        secret_files.append(SecretFile(name=name, path=secret_path(host, name), content=content,
                                       group=group, mode=mode, owner=owner))
    return Rendered(host=host.name, files=files, secret_files=secret_files)
