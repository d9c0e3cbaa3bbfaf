"""Basic-auth credentials for curl on the server, handed over on stdin, never on a command line.

A password in argv is visible in `ps` to every user of the server; a curl config read from stdin
(`curl -K -`) or from a 0600 temp file filled from stdin is not.
"""

from __future__ import annotations

import shlex

from fabfile.config.layout import secret_path
from fabfile.config.needed_secrets import WEB_CA
from fabfile.config.settings import HostSettings

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote(value: str) -> str:
    """A curl config string on one line: curl reads its config line by line, so a raw line break would
    start a new option (`-o /etc/...`); inside double quotes curl turns the backslash escapes back."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def curl_config(host: HostSettings, secrets: dict[str, str]) -> str:
    """curl config text with `user = "name:password"`; empty when the UIs have no basic auth."""
    if not host.web.basic_auth:
        return ""
    return f"user = {_quote(host.web.username + ':' + secrets['web_password'])}\n"


def web_get_fn(host: HostSettings) -> str:
    """Shell function `web_get PORT PATH [curl options]`: GET from the server's own UI on 127.0.0.1 over
    HTTPS (trusting only web_ca.crt) or HTTP, whichever the running listener speaks. The services choose
    at start, so between deploy-configs and install-services' restart (TLS just turned on or off) the
    listener still speaks the old one; waits and reload confirmations must follow it. `verify` does not
    use this: it asks over the scheme the inventory wants, and only that."""
    ca = shlex.quote(secret_path(host, WEB_CA))
    https = f'curl -f "$@" --cacert {ca} "https://127.0.0.1:$p$path"'
    http = 'curl -f "$@" "http://127.0.0.1:$p$path"'
    first, second = (https, http) if host.web.tls else (http, f"[ -r {ca} ] && {https}")
    return "\n".join([
        "web_get() {",
        '  local p=$1 path=$2; shift 2',
        f"  {first} || {{ {second}; }}",
        "}",
    ])


def clear_text_warning(host: HostSettings) -> str | None:
    """Basic auth over plain HTTP to a port the firewall opens to everyone: the password crosses the
    internet readable by anyone on the path. Said once per run; a tunnel (`inv ui`) avoids it."""
    everyone = host.web.open_to_everyone
    if not host.web.basic_auth or host.web.tls or not everyone:
        return None
    return (f"{host.name}: the web UIs' password travels in clear text (basic auth over plain HTTP) and "
            f"web.allow_from includes {everyone}; set web.tls: true (HTTPS), narrow web.allow_from to your"
            f" addresses, or keep the ports closed and use `inv ui -H {host.name}` (SSH tunnels)")
