"""The receiver types beyond email, as one table: adding a type is one entry here (plus docs and tests).

Each entry drives everything about its type: the settings `receivers.<name>` parses into, the secret that
holds its URL or key (read from a file on the server, never written into alertmanager.yml), the Alertmanager
`*_configs` block and its `*_file` option, the first Alertmanager release that loads that block with that
option, the options the template writes, and the route that sends alerts to it.

Pure data: this module imports only the project's pure name and duration modules, so the inventory, the
secrets lookup, the version checks and render can all read it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fabfile.config.durations import duration_between
from fabfile.config.labels import HEARTBEAT_ALERT

# ---------------------------------------------------------------- settings (hosts.yml: receivers.<name>)


def _channel(v: str) -> str | None:
    """A Slack channel (#name), user (@name) or ID: one word; a newline or quote is no channel."""
    ok = v.strip() and len(v) <= 80 and not any(ch.isspace() or ch in "\"'\\`" or ord(ch) < 32 for ch in v)
    return None if ok else "expected a Slack channel like \"#alerts\" (one word, at most 80 characters)"


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v in allowed else f"expected {' or '.join(map(repr, allowed))}, got {v!r}"
    return check


MAX_URL_CHARS = 2000


def url_problem(v: str, carried: str) -> str | None:
    """The one https rule for a URL that carries a secret (`carried`, e.g. "the routing key"), the error never
    quoting the URL (it may be the secret): https://, or plain http:// only to a private or loopback IP (a
    stand-in receiver such as the lab's catcher at 10.0.2.2 speaks plain HTTP, and the secret then never
    leaves this network); a host and port that can be read; no user:password@ (it would be printed and land
    in a config file). Shared by the webhook secrets, PagerDuty's `url` and remote_write."""
    if len(v) > MAX_URL_CHARS:
        return f"is {len(v)} characters long; no service's URL is longer than {MAX_URL_CHARS}"
    if not re.fullmatch(r"https?://[^\s\"'\\`<>]+", v):
        return "is not an https:// URL (no spaces or quotes)"
    try:
        parts = urlsplit(v)
        host, _ = parts.hostname or "", parts.port  # .port raises for a port that is not a number
    except ValueError:
        return "is not a URL that can be called (its host or port cannot be read)"
    if not host or len(host) > 253:  # DNS: a name is at most 253 characters
        return "has no host name" if not host else "has a host name longer than DNS allows (253)"
    if "@" in parts.netloc:
        return ("has a user name or password in it (user:password@...): it would be printed and stored in "
                "clear")
    if parts.scheme == "http":
        try:
            address = ipaddress.ip_address(host)
            inside = address.is_private or address.is_loopback
        except ValueError:
            inside = False
        if not inside:
            return (f"is plain http:// to a public host: {carried} would cross the internet in clear text; "
                    "use https:// (http:// only to a private or loopback IP, e.g. a lab stand-in)")
    return None


def https_url(example: str, carried: str) -> Callable[[str], str | None]:
    """url_problem as a setting's check: this URL is in hosts.yml, not a secret, so the error shows it."""

    def check(v: str) -> str | None:
        why = url_problem(v, carried)
        shown = repr(v) if len(v) <= 80 else f"{v[:80]!r}... ({len(v)} characters)"  # (the table: no imports)
        return f"{shown} {why}; expected an https:// URL like {example}" if why else None
    return check


_events_url = https_url("https://events.pagerduty.com/v2/enqueue", "the routing key")


@dataclass(frozen=True)
class Slack:
    channel: str = field(default="#alerts", metadata={"check": _channel})


@dataclass(frozen=True)
class Discord:
    pass


@dataclass(frozen=True)
class Webhook:
    send_resolved: bool = True


@dataclass(frozen=True)
class PagerDuty:
    # an Events API v2 integration; its routing key is the secret. `url`: where events go (None:
    # Alertmanager's default, PagerDuty's https://events.pagerduty.com/v2/enqueue)
    url: str | None = field(default=None, metadata={"check": _events_url})


@dataclass(frozen=True)
class Teams:
    # workflows: a Teams "Workflows" (Power Automate) webhook, msteamsv2_configs;
    # connector: a legacy Office 365 connector webhook (retired by Microsoft), msteams_configs
    kind: str = field(default="workflows", metadata={"check": _one_of("workflows", "connector")})


@dataclass(frozen=True)
class Heartbeat:
    # how often the external dead man's switch is pinged while the Watchdog fires (its URL is the secret)
    repeat_interval: str = field(default="1m", metadata={"check": duration_between(10, 86400)})


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Integration:
    """One Alertmanager `*_configs` block that reads its secret from a file, and since when that loads."""

    config_key: str  # e.g. slack_configs
    file_option: str  # e.g. api_url_file: the secret's path on the server goes here
    since: str  # first Alertmanager release that loads `config_key` with `file_option`
    source: str  # where that fact comes from

    @property
    def what(self) -> str:
        """As a user recognises it in alertmanager.yml, e.g. 'discord webhook_url_file'."""
        return f"{self.config_key.removesuffix('_configs')} {self.file_option}"


@dataclass(frozen=True)
class Route:
    """Where the receiver sits in the routing tree. Default: every critical alert, then on to the others."""

    matchers: tuple[str, ...] = ('severity="critical"',)
    continue_: bool = True  # False: alerts it takes reach no later route (e.g. never mailed)
    first: bool = False  # before the email routes instead of after the critical email


@dataclass(frozen=True)
class ReceiverType:
    name: str  # receivers.<name> in hosts.yml; the Alertmanager receiver is "<name>-critical" (see receiver)
    title: str  # for messages and docs
    settings: type  # dataclass the settings parse into (validated like every other setting)
    secret: str  # the secret holding its URL or key
    integrations: dict[str, Integration]  # by variant; most types have one, under ""
    options: Callable[[Any], list[tuple[str, Any]]]  # more options of the block, in the order written
    variant_setting: str = ""  # the settings field that picks one of several integrations (e.g. Teams' kind)
    route: Route = Route()
    route_options: Callable[[Any], list[tuple[str, Any]]] = lambda settings: []  # e.g. repeat_interval
    receiver_suffix: str = "critical"  # "": the receiver is named like the type
    # when off, its route stays and ends in this empty receiver (e.g. SINK_RECEIVER); "": no route when off
    sink_when_off: str = ""

    @property
    def receiver(self) -> str:
        return f"{self.name}-{self.receiver_suffix}" if self.receiver_suffix else self.name

    def receiver_for(self, settings: Any) -> str:
        """The receiver its route ends in: its own, or the deliberate sink when it is off (settings None)."""
        return self.receiver if settings is not None else self.sink_when_off

    def integration(self, settings: Any) -> Integration:
        return self.integrations[getattr(settings, self.variant_setting) if self.variant_setting else ""]


# The message a person reads, from monitoring/notifications.tmpl (alertmanager.yml's `templates:`): which
# alert, host and env, since when, the summary and the runbook; critical and warning look different.
TITLE = '{{ template "rosey.title" . }}'
TEXT = '{{ template "rosey.text" . }}'
TEXT_TEAMS = '{{ template "rosey.text.teams" . }}'  # a blank line between lines: Teams' Markdown joins them


def _chat(title_key: str, text_key: str) -> Callable[[Any], list[tuple[str, Any]]]:
    return lambda _: [(title_key, TITLE), (text_key, TEXT), ("send_resolved", True)]


def _teams(settings: Any) -> list[tuple[str, Any]]:
    summary = [("summary", TITLE)] if settings.kind == "connector" else []  # the connector's notification
    return [("title", TITLE), *summary, ("text", TEXT_TEAMS), ("send_resolved", True)]


def _pagerduty(settings: Any) -> list[tuple[str, Any]]:
    url = [("url", settings.url)] if settings.url else []
    return [*url, ("description", TITLE), ("source", '{{ template "rosey.source" . }}'),
            ("severity", '{{ template "rosey.pagerduty.severity" . }}'),
            # (0.33 parses each detail's text as YAML: a runbook line "On the host: ..." would become a
            # mapping, so it travels inside the message)
            ("details", {"message": TEXT, "env": '{{ .CommonLabels.env }}'}),
            ("send_resolved", True)]


# The empty receiver that drops on purpose. Named as a sink so neither a reader nor a linter (amlint's
# `empty-receiver`: WARN for an empty receiver, INFO for one named null/blackhole/...) mistakes it for a
# channel left unconfigured that silently drops alerts. Not `null`: amtool prints receiver names bare.
SINK_RECEIVER = "blackhole"

_TEAMS_FILE = ("webhook_url_file added by alertmanager#3555 in 0.27.0 but rejected at load time ('no msteams "
               "webhook URL provided') until alertmanager#3728, released in 0.28.0")

RECEIVER_TYPES: tuple[ReceiverType, ...] = (
    ReceiverType(
        "slack", "Slack", Slack, "slack_webhook_url",
        {"": Integration("slack_configs", "api_url_file", "0.22.0",
                         "alertmanager#2534 (Slack URL from a file), released in 0.22.0")},
        lambda s: [("channel", s.channel), ("title", TITLE), ("text", TEXT),
                   ("color", '{{ template "rosey.color" . }}'), ("send_resolved", True)]),
    ReceiverType(
        "discord", "Discord", Discord, "discord_webhook_url",
        {"": Integration("discord_configs", "webhook_url_file", "0.28.0",
                         "added by alertmanager#3555 in 0.27.0 but rejected at load time ('no discord "
                         "webhook URL provided') until the fix alertmanager#3728, released in 0.28.0")},
        _chat("title", "message")),
    ReceiverType(
        "webhook", "webhook", Webhook, "webhook_url",
        {"": Integration("webhook_configs", "url_file", "0.26.0",
                         "alertmanager#3223 (webhook `url_file`), released in 0.26.0")},
        lambda s: [("send_resolved", s.send_resolved)]),
    ReceiverType(
        "pagerduty", "PagerDuty", PagerDuty, "pagerduty_routing_key",
        {"": Integration("pagerduty_configs", "routing_key_file", "0.25.0",
                         "alertmanager#3107 (PagerDuty routing_key_file and service_key_file), "
                         "released in 0.25.0")},
        _pagerduty),
    ReceiverType(
        "teams", "Microsoft Teams", Teams, "teams_webhook_url",
        {"workflows": Integration("msteamsv2_configs", "webhook_url_file", "0.28.0",
                                  "alertmanager#4024 (msteamsv2, with webhook_url_file), released in 0.28.0"),
         "connector": Integration("msteams_configs", "webhook_url_file", "0.28.0",
                                  f"msteams_configs since 0.26.0 (alertmanager#3324); {_TEAMS_FILE}")},
        _teams, variant_setting="kind"),
    # The dead man's switch: only the always-firing Watchdog, first and final (never mailed), repeated often
    # so an external service notices when every Alertmanager of the cluster has gone quiet. When off, the
    # route stays and ends in the empty SINK_RECEIVER, so the Watchdog is still never mailed.
    ReceiverType(
        "heartbeat", "heartbeat", Heartbeat, "heartbeat_url",
        {"": Integration("webhook_configs", "url_file", "0.26.0",
                         "alertmanager#3223 (webhook `url_file`), released in 0.26.0")},
        lambda s: [("send_resolved", False)],
        route=Route(matchers=(f'alertname="{HEARTBEAT_ALERT}"',), continue_=False, first=True),
        route_options=lambda s: [("repeat_interval", s.repeat_interval)],
        receiver_suffix="", sink_when_off=SINK_RECEIVER),
)

SECRETS = tuple(t.secret for t in RECEIVER_TYPES)


def routed(receivers: Any) -> list[tuple[ReceiverType, Any]]:
    """The types routed on this host, in table order: the enabled ones, and the sinks (settings None)."""
    return [(t, getattr(receivers, t.name)) for t in RECEIVER_TYPES
            if getattr(receivers, t.name) is not None or t.sink_when_off]


def enabled(receivers: Any) -> list[tuple[ReceiverType, Any]]:
    """The receiver types a host's `receivers` settings turn on, in table order, with their settings."""
    return [(t, getattr(receivers, t.name)) for t in RECEIVER_TYPES if getattr(receivers, t.name) is not None]
