"""Which secrets exist and which ones a host needs: from its settings and the receiver table, nothing else.

Both the secrets lookup (which values to read) and render (which secret files to place) ask here, so data
flows one way: inventory -> secrets -> render -> steps.
"""

from __future__ import annotations

from fabfile.config import receivers
from fabfile.config.inventory import HostSettings

SECRET_NAMES = ("smtp_password", "web_password", *receivers.SECRETS)


def required_secrets(host: HostSettings) -> list[str]:
    """Which secrets this host's settings need; nothing more is ever read."""
    need = []
    if host.receivers.email.auth_username:
        need.append("smtp_password")
    if host.web.basic_auth:
        need.append("web_password")
    need += [t.secret for t, _ in receivers.enabled(host.receivers)]
    return need
