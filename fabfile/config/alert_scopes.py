"""Alert scopes: is a firing alert about the bot, or about the monitoring itself? One table, one label.

The scope is the rules' own `component` label (monitoring/alert_rules.yml: every rule carries one;
Alertmanager's BotDown inhibit rule matches on it too), so verify reads it from each firing alert and no
list of alert names is kept anywhere. A new rule picks its scope with one label; a rule without a known
scope counts as monitoring (it fails verify: loud rather than quietly ignored). The Watchdog heartbeat is
neither: it always fires by design.
"""

from __future__ import annotations

from collections.abc import Mapping

from fabfile.config.labels import HEARTBEAT_ALERT

SCOPE_LABEL = "component"
BOT = "bot"
MONITORING = "monitoring"

# scope -> what verify does with a firing alert of that scope
SCOPES: dict[str, str] = {
    BOT: "the bot's health: a warning line with age and summary; fails verify only with --strict",
    MONITORING: "the monitoring stack itself (notifications, reloads, Alertmanager, targets): fails verify",
}


def scope_of(labels: Mapping[str, str]) -> str | None:
    """BOT or MONITORING for a firing alert's labels; None for the heartbeat (ignored)."""
    if labels.get("alertname") == HEARTBEAT_ALERT:
        return None
    scope = labels.get(SCOPE_LABEL, "")
    return scope if scope in SCOPES else MONITORING
