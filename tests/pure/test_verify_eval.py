"""verify's judgement of the server's answers, from canned outputs (no server)."""

from __future__ import annotations

import json

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.deploy.steps import verify as v


def http(doc: object, code: int = 200) -> str:
    return (json.dumps(doc) if not isinstance(doc, str) else doc) + f"\n{code}"


@pytest.fixture(scope="module")
def host():
    return load_inventory().host("lab")


def good_outputs() -> dict[str, str]:
    return {
        "version_prometheus": "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)",
        "version_promtool": "promtool, version 2.42.0+ds (branch: debian/sid)",
        "version_alertmanager": "alertmanager, version 0.25.0 (branch: debian/sid)",
        "version_amtool": "amtool, version 0.25.0 (branch: debian/sid)",
        "active": "active\nactive", "enabled": "enabled\nenabled",
        "healthy_prometheus": http("Prometheus Server is Healthy."), "healthy_alertmanager": http("OK"),
        "targets": http({"data": {"activeTargets": [
            {"labels": {"job": "rosey-bot"}, "health": "up"},
            {"labels": {"job": "prometheus"}, "health": "down", "lastError": "x"}]}}),
        "query": http({"data": {"result": [{"metric": {"__name__": "bot_connected", "env": "test",
                                                       "instance": "localhost:8001", "job": "rosey-bot"},
                                            "value": [1, "1"]}]}}),
        "alertmanagers": http({"data": {"activeAlertmanagers": [{"url": "http://localhost:9093/api/v2/alerts"}]}}),
        "am_status": http({"config": {"original": "route: {}"}}),
        "am_receivers": http([{"name": "email-default"}, {"name": "email-critical"}]),
        "alerts": http({"data": {"alerts": [{"state": "pending", "labels": {"alertname": "X"}}]}}),
        "metrics_prometheus": "prometheus_config_last_reload_successful 1\n"
                              "prometheus_config_last_reload_success_timestamp_seconds 1.7e+09\n200",
        "metrics_alertmanager": "alertmanager_config_last_reload_successful 1\n200",
        "fw_have": "/usr/sbin/ufw", "fw_status": "Status: active",
        "fw_defaults": 'DEFAULT_INPUT_POLICY="DROP"',
        "fw_added": "ufw allow 22/tcp\nufw allow 9090/tcp\nufw allow 9093/tcp",
        "fw_session": "22", "fw_listen": 'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))',
    }


def test_all_pass(host):
    checks = v.evaluate(host, good_outputs(), ["email-critical", "email-default"])
    assert [c.line() for c in checks if not c.passed] == []
    assert len(checks) == 16


@pytest.mark.parametrize(("key", "value", "failing"), [
    ("version_amtool", "bash: /usr/local/bin/amtool: No such file", "amtool version"),
    ("enabled", "enabled\ndisabled", "alertmanager service"),
    ("healthy_prometheus", "\n401", "prometheus /-/healthy"),
    ("targets", http({"data": {"activeTargets": [{"labels": {"job": "rosey-bot"}, "health": "down",
                                                  "lastError": "connection refused"}]}}), "target rosey-bot"),
    ("query", http({"data": {"result": []}}), "query bot_connected"),
    ("alertmanagers", http({"data": {"activeAlertmanagers": []}}), "prometheus -> alertmanager"),
    ("am_receivers", http([{"name": "email-default"}]), "alertmanager config"),
    ("metrics_prometheus", "prometheus_config_last_reload_successful 0\n200", "prometheus last reload"),
    ("fw_status", "Status: inactive", "firewall"),
    ("alerts", http({"data": {"alerts": [{"state": "firing", "labels": {"alertname": "BotDown",
                                                                         "severity": "critical"}}]}}),
     "alerts firing"),
])
def test_each_failure_is_named(host, key, value, failing):
    outs = good_outputs() | {key: value}
    bad = [c for c in v.evaluate(host, outs, ["email-critical", "email-default"]) if not c.passed]
    assert [c.name for c in bad] == [failing]


def test_firing_alerts_are_listed(host):
    outs = good_outputs() | {"alerts": http({"data": {"alerts": [
        {"state": "firing", "labels": {"alertname": "BotDown", "severity": "critical"}}]}})}
    c = v.check_alerts(outs)
    assert not c.passed and c.detail == "BotDown(critical)"


def test_password_never_in_snippets(host):
    text = "\n".join(v.snippets(host).values())
    assert "-u " not in text and "--user" not in text and '-K "$CFG"' in text


def test_the_always_firing_watchdog_is_not_a_problem(host):
    watchdog = {"state": "firing", "labels": {"alertname": "Watchdog", "severity": "none"}}
    bot_down = {"state": "firing", "labels": {"alertname": "BotDown", "severity": "critical"}}
    ok = v.check_alerts({"alerts": http({"data": {"alerts": [watchdog]}})})
    assert ok.passed and ok.detail == "none"
    bad = v.check_alerts({"alerts": http({"data": {"alerts": [watchdog, bot_down]}})})
    assert not bad.passed and bad.detail == "BotDown(critical)"
