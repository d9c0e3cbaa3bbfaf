"""Which secrets exist and which ones a host needs: from its settings and the receiver table, nothing else.

Both the secrets lookup (which values to read) and render (which secret files to place) ask here, so data
flows one way: inventory -> secrets -> render -> steps.
"""

from __future__ import annotations

import re

from fabfile.config import receivers, remote_write
from fabfile.config.settings import HostSettings

SECRET_NAMES = ("smtp_password", "web_password", *receivers.SECRETS)
PEER_SECRET_PREFIX = "peer_web_password_"  # + peer alias: that peer's web_password, to scrape and alert it
# a clustered member's gossip TLS material: made by fabfile.config.pki, never typed in by a user
GOSSIP_CA, GOSSIP_CERT, GOSSIP_KEY = "gossip_ca.crt", "gossip.crt", "gossip.key"
GOSSIP_MATERIAL = (GOSSIP_CA, GOSSIP_CERT, GOSSIP_KEY)
GOSSIP_TLS_CONFIG = "gossip_tls.yml"  # --cluster.tls-config; rendered from a template, placed beside them
GOSSIP_FILES = (*GOSSIP_MATERIAL, GOSSIP_TLS_CONFIG)
# web UIs over HTTPS: the CAs this host's clients trust (its own and its TLS peers'), its certificate and key,
# and the web config that turns TLS on (the unit points --web.config.file at it instead of web.yml)
WEB_CA, WEB_CERT, WEB_KEY = "web_ca.crt", "web.crt", "web.key"
WEB_TLS_CONFIG = "web_tls.yml"
WEB_TLS_FILES = (WEB_CA, WEB_CERT, WEB_KEY, WEB_TLS_CONFIG)


def peer_secret(alias: str) -> str:
    """The secret file holding cluster peer `alias`'s web password on this host (looked up as the peer's)."""
    return f"{PEER_SECRET_PREFIX}{alias}"


def peer_of(name: str) -> str | None:
    """peer_web_password_lab2 -> 'lab2'; None for a host's own secret."""
    return name[len(PEER_SECRET_PREFIX):] if name.startswith(PEER_SECRET_PREFIX) else None


def required_secrets(host: HostSettings) -> list[str]:
    """Which secrets this host's settings need; nothing more is ever read."""
    need = []
    if host.receivers.email.auth_username:
        need.append("smtp_password")
    if host.web.basic_auth:
        need.append("web_password")
    need += [t.secret for t, _ in receivers.enabled(host.receivers)]
    need += remote_write.secrets(host.remote_write)  # remote_write_<target>_password / _token
    if host.cluster:  # each peer's own web password: this Prometheus scrapes and alerts the peer with it
        need += [peer_secret(p.name) for p in host.cluster.peers if p.web_username]
        if host.cluster.gossip_tls:
            need += GOSSIP_FILES
    if host.web.tls:
        need += WEB_TLS_FILES
    elif host.cluster and any(p.web_tls for p in host.cluster.peers):
        need.append(WEB_CA)  # to check the peers' certificates when scraping and alerting them
    return need


def env_alias(alias: str) -> str:
    """How a host alias is spelt in its secrets' environment variables (ROSEY_<ALIAS>_<NAME>): `h-1`,
    `h.1` and `H_1` are all `H_1`, so the inventory refuses two aliases that would share one."""
    return re.sub(r"[^A-Za-z0-9]", "_", alias).upper()
