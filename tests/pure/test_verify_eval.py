"""verify's judgement of the server's answers, from canned outputs (no server)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fabfile.deploy.steps import verify as v
from fabfile.deploy.steps.base import StepContext
from fabfile.facts import deliveries
from tests.helpers import fixture_inventory, units_answer


def http(doc: object, code: int = 200) -> str:
    return (json.dumps(doc) if not isinstance(doc, str) else doc) + f"\n{code}"



def good_outputs() -> dict[str, str]:
    return {
        "version_prometheus": "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)",
        "version_promtool": "promtool, version 2.42.0+ds (branch: debian/sid)",
        "version_alertmanager": "alertmanager, version 0.25.0 (branch: debian/sid)",
        "version_amtool": "amtool, version 0.25.0 (branch: debian/sid)",
        "units": units_answer(fixture_inventory().host("test")),
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
        "noauth_prometheus": "Unauthorized\n401", "noauth_alertmanager": "Unauthorized\n401",
        "fw_have": "/usr/sbin/ufw", "fw_loaded": "0",
        "fw_defaults": 'DEFAULT_INPUT_POLICY="DROP"',
        "fw_rules": "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n"
                    "### tuple ### allow tcp 9090 0.0.0.0/0 any 0.0.0.0/0 in\n"
                    "### tuple ### allow tcp 9093 0.0.0.0/0 any 0.0.0.0/0 in",
        "fw_session": "22", "fw_listen": 'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))',
        **deliveries_answers(),
    }


def deliveries_answers(**results: list[dict]) -> dict[str, str]:
    """Prometheus' answers to the deliveries queries: none in 24 h unless given (query key -> result)."""
    return {f"deliveries_{k}": http({"status": "success", "data": {"result": results.get(k, [])}})
            for k in deliveries.QUERIES}


def test_all_pass(host):
    checks = v.evaluate(host, good_outputs(), ["email-critical", "email-default"])
    assert [c.line() for c in checks if not c.passed] == []
    assert len(checks) == 19
    assert checks[-1].line() == "PASS  channel email: nothing delivered in 24 h; no failure in 24 h"


def test_a_ui_that_answers_without_the_password_fails(host):
    """A unit that lost --web.config.file serves everyone: the open request gets 200, not 401."""
    outs = good_outputs() | {"noauth_alertmanager": "OK\n200"}
    failed = [c for c in v.evaluate(host, outs, ["email-critical", "email-default"]) if not c.passed]
    assert [c.name for c in failed] == ["alertmanager login required"]
    assert "HTTP 200 without credentials" in failed[0].detail


def test_with_tls_plain_http_must_be_refused_and_the_certificate_is_named(host, tmp_path):
    from fabfile.config import pki
    tls_host = dataclasses.replace(host, web=dataclasses.replace(host.web, tls=True))
    cert = pki.issue(tmp_path, "ca", "lab", ["127.0.0.1"]).cert
    outs = good_outputs() | {"plain_prometheus": "Client sent an HTTP request to an HTTPS server.\n400",
                             "plain_alertmanager": "OK\n200"}
    checks = {c.name: c for c in v.evaluate(tls_host, outs, ["email-critical", "email-default"], cert)}
    assert checks["prometheus HTTPS only"].passed
    assert pki.fingerprint(cert) in checks["prometheus HTTPS only"].detail
    assert not checks["alertmanager HTTPS only"].passed  # still on plain HTTP: restart pending
    assert [c.name for c in checks.values() if not c.passed] == ["alertmanager HTTPS only"]


@pytest.mark.parametrize(("key", "value", "failing"), [
    ("version_amtool", "bash: /usr/local/bin/amtool: No such file", "amtool version"),
    ("units", units_answer(fixture_inventory().host("test"), enabled={"alertmanager": "disabled"}),
     "alertmanager service"),
    ("healthy_prometheus", "\n401", "prometheus /-/healthy"),
    ("targets", http({"data": {"activeTargets": [{"labels": {"job": "rosey-bot"}, "health": "down",
                                                  "lastError": "connection refused"}]}}), "target rosey-bot"),
    ("query", http({"data": {"result": []}}), "query bot_connected"),
    ("alertmanagers", http({"data": {"activeAlertmanagers": []}}), "prometheus -> alertmanager"),
    ("am_receivers", http([{"name": "email-default"}]), "alertmanager config"),
    ("metrics_prometheus", "prometheus_config_last_reload_successful 0\n200", "prometheus last reload"),
    ("fw_loaded", "1", "firewall"),
    ("alerts", http({"data": {"alerts": [{"state": "firing", "labels": {
        "alertname": "AlertmanagerNotificationsFailing", "severity": "critical",
        "component": "monitoring"}}]}}),
     "monitoring alerts"),
])
def test_each_failure_is_named(host, key, value, failing):
    outs = good_outputs() | {key: value}
    bad = [c for c in v.evaluate(host, outs, ["email-critical", "email-default"]) if not c.passed]
    assert [c.name for c in bad] == [failing]


def test_password_never_in_snippets(host):
    ctx = StepContext(fixture_inventory(), {"web_password": "w" * 12})
    text = "\n".join(v.reads(host, ctx).snippets.values())
    assert "-u " not in text and "--user" not in text and '-K "$PROBE_STDIN"' in text


WATCHDOG = {"state": "firing", "labels": {"alertname": "Watchdog", "severity": "none",
                                         "component": "monitoring"}}
BOT_RESTARTING = {"state": "firing", "activeAt": "2024-05-01T12:00:05.5Z",
                  "labels": {"alertname": "BotRestarting", "severity": "warning", "component": "bot"},
                  "annotations": {"summary": "Rosey bot is restarting"}}
BOT_DOWN = {"state": "firing", "activeAt": "2024-05-01T12:00:00Z",
            "labels": {"alertname": "BotDown", "severity": "critical", "component": "bot"},
            "annotations": {"summary": "Rosey bot is disconnected"}}
NOW = "1714564900"  # 2024-05-01T12:01:40Z, the server's `date +%s`


def alerts(*firing: dict) -> dict[str, str]:
    return {"alerts": http({"data": {"alerts": list(firing)}}), "now": NOW}


def test_the_always_firing_watchdog_is_not_a_problem():
    assert [c.line() for c in v.check_alerts(alerts(WATCHDOG))] == ["PASS  monitoring alerts: none firing"]


def test_bot_alerts_are_warnings_with_age_and_summary():
    checks = v.check_alerts(alerts(WATCHDOG, BOT_RESTARTING, BOT_DOWN))
    assert [c.line() for c in checks] == [
        "PASS  monitoring alerts: none firing",
        "WARN  bot alert: BotDown (critical) firing for 100s — Rosey bot is disconnected",
        "WARN  bot alert: BotRestarting (warning) firing for 94s — Rosey bot is restarting",
    ]


def test_monitoring_alerts_fail_and_unscoped_ones_count_as_monitoring():
    failing = {"state": "firing", "labels": {"alertname": "MonitoringTargetDown", "severity": "critical",
                                             "component": "monitoring"}}
    unscoped = {"state": "firing", "labels": {"alertname": "SomethingNew", "severity": "warning"}}
    first = v.check_alerts(alerts(BOT_DOWN, failing, unscoped))[0]
    assert not first.passed
    assert first.detail == "MonitoringTargetDown(critical), SomethingNew(warning)"


def test_bot_alerts_do_not_fail_verify_unless_strict(host):
    checks = v.evaluate(host, good_outputs() | alerts(BOT_RESTARTING), ["email-critical", "email-default"])
    relaxed = v.judge(checks, strict=False)
    assert relaxed.status == "ok"
    assert relaxed.summary == "all 19 stack checks passed; 1 bot alert(s) firing"
    strict = v.judge(checks, strict=True)
    assert strict.status == "failed"
    assert strict.summary == "1 of 20 checks failed: bot alert (--strict: bot alerts fail too)"
    assert any(line.startswith("WARN  bot alert: BotRestarting") for line in strict.details)


def test_a_stack_failure_fails_with_or_without_strict(host):
    outs = good_outputs() | alerts(BOT_RESTARTING) | {"fw_loaded": "1"}
    checks = v.evaluate(host, outs, ["email-critical", "email-default"])
    assert v.judge(checks, strict=False).summary == "1 of 20 checks failed: firewall"


def test_age_is_left_out_when_the_server_clock_is_unknown():
    c = v.check_alerts({"alerts": alerts(BOT_RESTARTING)["alerts"], "now": ""})[1]
    assert c.detail == "BotRestarting (warning) firing — Rosey bot is restarting"
