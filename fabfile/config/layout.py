"""The server's file layout: where binaries, configs, units, secrets and data live, and who owns them.

Render writes files for these paths and the deploy steps put them there; both read the layout from here,
so moving a file on the server is one change.
"""

from __future__ import annotations

from fabfile.config import receivers, remote_write
from fabfile.config.needed_secrets import (
    GOSSIP_FILES,
    WEB_CA,
    WEB_CERT,
    WEB_KEY,
    WEB_TLS_CONFIG,
    WEB_TLS_FILES,
    peer_of,
)
from fabfile.config.settings import HostSettings

PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
SERVICES = (PROMETHEUS, ALERTMANAGER)

# notifications.tmpl: the message templates alertmanager.yml names (relative: resolved next to it)
CONFIG_FILES = ("prometheus.yml", "alert_rules.yml", "alertmanager.yml", "notifications.tmpl", "web.yml")
UNIT_FILES = ("prometheus.service", "alertmanager.service")
FILENAMES = CONFIG_FILES + UNIT_FILES

SYSTEMD_DIR = "/etc/systemd/system"
BIN_DIR = "/usr/local/bin"
RELEASES_DIR = "/usr/local/lib/rosey-monitoring"
BINARIES = {PROMETHEUS: ("prometheus", "promtool"), ALERTMANAGER: ("alertmanager", "amtool")}
SERVICE_USERS = {PROMETHEUS: "prometheus", ALERTMANAGER: "alertmanager"}  # system user == group
CONFIG_MODE = 0o644  # configs hold no secret (web.yml: a bcrypt hash only) and both services read web.yml
SECRET_MODE = 0o640  # root:<service group>
RUNNING_STATES = ("active", "reloading")  # systemd ActiveState values of a unit whose process is up

# which service must reload/restart when a file changes (web.yml is re-read per request, but both use it)
_SERVICES_OF: dict[str, tuple[str, ...]] = {
    "prometheus.yml": (PROMETHEUS,),
    "alert_rules.yml": (PROMETHEUS,),
    "alertmanager.yml": (ALERTMANAGER,),
    "notifications.tmpl": (ALERTMANAGER,),
    "web.yml": (PROMETHEUS, ALERTMANAGER),
    "prometheus.service": (PROMETHEUS,),
    "alertmanager.service": (ALERTMANAGER,),
    # secrets, by name: the service whose config points at them (every receiver's is Alertmanager's)
    "web_password": (PROMETHEUS,),
    "smtp_password": (ALERTMANAGER,),
    **{name: (ALERTMANAGER,) for name in receivers.SECRETS},
    # gossip TLS: read once at start, so a change restarts Alertmanager (the unit carries their hash)
    **{name: (ALERTMANAGER,) for name in GOSSIP_FILES},
    # web TLS: both services re-read the web config and its certificate on every connection, and
    # Prometheus re-reads a changed CA file itself; turning TLS on or off changes the units (a restart)
    **{name: () for name in WEB_TLS_FILES},
}
# the web key is read by both services and nobody else: owned by one service user, readable by the other's
# group (no shared group to create, no ACLs)
_OWNERSHIP: dict[str, tuple[str, str, int]] = {
    WEB_KEY: (SERVICE_USERS[PROMETHEUS], SERVICE_USERS[ALERTMANAGER], 0o440),
    WEB_CERT: ("root", "root", 0o644),
    WEB_CA: ("root", "root", 0o644),
    WEB_TLS_CONFIG: ("root", "root", CONFIG_MODE),  # like web.yml: a bcrypt hash and paths
}


def config_dir(host: HostSettings) -> str:
    """The host's base_dir without a trailing slash: the configs live here, the secrets and data below."""
    return host.base_dir.rstrip("/")


def secrets_dir(host: HostSettings) -> str:
    return f"{config_dir(host)}/secrets"


def secret_path(host: HostSettings, name: str) -> str:
    return f"{secrets_dir(host)}/{name}"


def remote_path(host: HostSettings, filename: str) -> str:
    """Server path of a rendered file (units under /etc/systemd/system) or of a secret (by name)."""
    if filename in UNIT_FILES:
        return f"{SYSTEMD_DIR}/{filename}"
    if filename in CONFIG_FILES:
        return f"{config_dir(host)}/{filename}"
    if filename in _SERVICES_OF or peer_of(filename) or remote_write.is_secret_name(filename):
        return secret_path(host, filename)
    raise KeyError(f"not a deployed file: {filename!r}")


def secret_ownership(name: str) -> tuple[str, str, int]:
    """(owner, group, mode) of a secret file: root:<the service that reads it> 0640 unless listed above."""
    if name in _OWNERSHIP:
        return _OWNERSHIP[name]
    return "root", SERVICE_USERS[services_for(name)[0]], SECRET_MODE


def services_for(filename: str) -> tuple[str, ...]:
    """The services to reload (configs) or restart (units) when `filename` (or a secret name) changes."""
    if peer_of(filename):  # a cluster peer's web password: this Prometheus scrapes and alerts with it
        return (PROMETHEUS,)
    if remote_write.is_secret_name(filename):  # re-read by Prometheus on every request: a reload suffices
        return (PROMETHEUS,)
    return _SERVICES_OF[filename]


def data_dir(host: HostSettings, service: str) -> str:
    base = config_dir(host)
    return {PROMETHEUS: f"{base}/data", ALERTMANAGER: f"{base}/alertmanager-data"}[service]


def data_dirs(host: HostSettings) -> dict[str, str]:
    """{path: owning system user}; never deleted by anything in this project."""
    return {data_dir(host, s): SERVICE_USERS[s] for s in SERVICES}


def binary_path(name: str) -> str:
    """Stable path of a binary (a symlink into the installed release), e.g. /usr/local/bin/promtool."""
    return f"{BIN_DIR}/{name}"


def service_user(service: str) -> str:
    return SERVICE_USERS[service]


def release_dir(host: HostSettings, service: str) -> str:
    """Where the release archive of this host's version is unpacked (the binaries' symlinks point here)."""
    comp = getattr(host, service)
    return f"{RELEASES_DIR}/{comp.archive_name(service)}"
