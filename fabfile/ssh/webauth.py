"""Basic-auth credentials for curl on the server, handed over on stdin, never on a command line.

A password in argv is visible in `ps` to every user of the server; a curl config read from stdin
(`curl -K -`) or from a 0600 temp file filled from stdin is not.
"""

from __future__ import annotations

from fabfile.config.inventory import HostSettings

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
