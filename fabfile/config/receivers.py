"""The receiver types beyond email, as one table: adding a type is one entry here (plus docs and tests).

Each entry drives everything about its type: the settings `receivers.<name>` parses into, the secret that
holds its URL or key (read from a file on the server, never written into alertmanager.yml), the Alertmanager
`*_configs` block and its `*_file` option, the first Alertmanager release that loads that block with that
option, the options the template writes, and the route that sends alerts to it.

Pure data: this module imports only the project's pure name and duration modules, so the inventory, the
secrets lookup, the version checks and render can all read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fabfile.config.durations import is_duration
from fabfile.config.labels import HEARTBEAT_ALERT

# ---------------------------------------------------------------- settings (hosts.yml: receivers.<name>)


def _nonempty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _duration(v: str) -> str | None:
    return None if is_duration(v) else f"expected a Prometheus duration like 1m or 30s, got {v!r}"


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v in allowed else f"expected {' or '.join(map(repr, allowed))}, got {v!r}"
    return check


@dataclass(frozen=True)
class Slack:
    channel: str = field(default="#alerts", metadata={"check": _nonempty})


@dataclass(frozen=True)
class Discord:
    pass


@dataclass(frozen=True)
class Webhook:
    send_resolved: bool = True


@dataclass(frozen=True)
class PagerDuty:
    pass  # an Events API v2 integration; its routing key is the secret


@dataclass(frozen=True)
class Teams:
    # workflows: a Teams "Workflows" (Power Automate) webhook, msteamsv2_configs;
    # connector: a legacy Office 365 connector webhook (retired by Microsoft), msteams_configs
    kind: str = field(default="workflows", metadata={"check": _one_of("workflows", "connector")})


@dataclass(frozen=True)
class Heartbeat:
    # how often the external dead man's switch is pinged while the Watchdog fires (its URL is the secret)
    repeat_interval: str = field(default="1m", metadata={"check": _duration})


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
    sink_when_off: bool = False  # True: its route and an empty receiver exist even when off (a sink)

    @property
    def receiver(self) -> str:
        return f"{self.name}-{self.receiver_suffix}" if self.receiver_suffix else self.name

    def integration(self, settings: Any) -> Integration:
        return self.integrations[getattr(settings, self.variant_setting) if self.variant_setting else ""]


def _send_resolved(_: Any) -> list[tuple[str, Any]]:
    return [("send_resolved", True)]


_TEAMS_FILE = ("webhook_url_file added by alertmanager#3555 in 0.27.0 but rejected at load time ('no msteams "
               "webhook URL provided') until alertmanager#3728, released in 0.28.0")

RECEIVER_TYPES: tuple[ReceiverType, ...] = (
    ReceiverType(
        "slack", "Slack", Slack, "slack_webhook_url",
        {"": Integration("slack_configs", "api_url_file", "0.22.0",
                         "alertmanager#2534 (Slack URL from a file), released in 0.22.0")},
        lambda s: [("channel", s.channel), ("send_resolved", True)]),
    ReceiverType(
        "discord", "Discord", Discord, "discord_webhook_url",
        {"": Integration("discord_configs", "webhook_url_file", "0.28.0",
                         "added by alertmanager#3555 in 0.27.0 but rejected at load time ('no discord "
                         "webhook URL provided') until the fix alertmanager#3728, released in 0.28.0")},
        _send_resolved),
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
        _send_resolved),
    ReceiverType(
        "teams", "Microsoft Teams", Teams, "teams_webhook_url",
        {"workflows": Integration("msteamsv2_configs", "webhook_url_file", "0.28.0",
                                  "alertmanager#4024 (msteamsv2, with webhook_url_file), released in 0.28.0"),
         "connector": Integration("msteams_configs", "webhook_url_file", "0.28.0",
                                  f"msteams_configs since 0.26.0 (alertmanager#3324); {_TEAMS_FILE}")},
        _send_resolved, variant_setting="kind"),
    # The dead man's switch: only the always-firing Watchdog, first and final (never mailed), repeated often
    # so an external service notices when every Alertmanager of the cluster has gone quiet. When off, the
    # route stays and ends in an empty receiver, so the Watchdog is still never mailed.
    ReceiverType(
        "heartbeat", "heartbeat", Heartbeat, "heartbeat_url",
        {"": Integration("webhook_configs", "url_file", "0.26.0",
                         "alertmanager#3223 (webhook `url_file`), released in 0.26.0")},
        lambda s: [("send_resolved", False)],
        route=Route(matchers=(f'alertname="{HEARTBEAT_ALERT}"',), continue_=False, first=True),
        route_options=lambda s: [("repeat_interval", s.repeat_interval)],
        receiver_suffix="", sink_when_off=True),
)

SECRETS = tuple(t.secret for t in RECEIVER_TYPES)


def routed(receivers: Any) -> list[tuple[ReceiverType, Any]]:
    """The types routed on this host, in table order: the enabled ones, and the sinks (settings None)."""
    return [(t, getattr(receivers, t.name)) for t in RECEIVER_TYPES
            if getattr(receivers, t.name) is not None or t.sink_when_off]


def enabled(receivers: Any) -> list[tuple[ReceiverType, Any]]:
    """The receiver types a host's `receivers` settings turn on, in table order, with their settings."""
    return [(t, getattr(receivers, t.name)) for t in RECEIVER_TYPES if getattr(receivers, t.name) is not None]
