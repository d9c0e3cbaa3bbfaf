"""Every alert rule says whether it is about the bot or the monitoring (its `component` label), and verify's
scope comes from that label alone (issue 12 §1)."""

from __future__ import annotations

import pytest
import yaml

from fabfile.config.alert_scopes import BOT, MONITORING, SCOPE_LABEL, SCOPES, scope_of
from fabfile.config.labels import HEARTBEAT_ALERT
from fabfile.config.rules_file import read_rules


def rules() -> list[dict]:
    doc = yaml.safe_load(read_rules())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_rule_has_a_known_scope(rule: dict) -> None:
    assert rule.get("labels", {}).get(SCOPE_LABEL) in SCOPES, (
        f"{rule['alert']}: add labels.{SCOPE_LABEL}: one of {', '.join(SCOPES)}")


def test_bot_and_monitoring_rules_are_told_apart() -> None:
    by_scope = {r["alert"]: scope_of({"alertname": r["alert"], **r["labels"]}) for r in rules()}
    assert by_scope["BotDown"] == by_scope["BotRestarting"] == by_scope["HighErrorRate"] == BOT
    assert by_scope["AlertmanagerNotificationsFailing"] == by_scope["MonitoringTargetDown"] == MONITORING
    assert by_scope[HEARTBEAT_ALERT] is None  # the heartbeat always fires: neither


@pytest.mark.parametrize(("labels", "scope"), [
    ({"alertname": "Anything", SCOPE_LABEL: "bot"}, BOT),
    ({"alertname": "Anything", SCOPE_LABEL: "monitoring"}, MONITORING),
    ({"alertname": "NoLabel"}, MONITORING),  # unknown: loud, fails verify
    ({"alertname": "Odd", SCOPE_LABEL: "database"}, MONITORING),
    ({"alertname": HEARTBEAT_ALERT, SCOPE_LABEL: "monitoring"}, None),
])
def test_scope_of(labels: dict[str, str], scope: str | None) -> None:
    assert scope_of(labels) == scope
