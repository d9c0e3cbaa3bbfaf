"""verify's line per channel: the last delivery and the failures of the last 24 h (facts/deliveries.py), from
canned Prometheus answers. The queries themselves run in promtool: tests/local/test_deliveries_promql.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.deploy.steps import verify as v
from fabfile.facts import deliveries
from fabfile.facts.deliveries import Delivery, verdict
from tests.pure.test_verify_eval import deliveries_answers, good_outputs

NOW = 1_800_000_000.0
HOSTS = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
hosts:
  h:
    address: h.invalid
    alertmanager: {version: 0.28.1}
    receivers: {slack: {}, webhook: {}, heartbeat: {}, teams: {}}
"""


@pytest.fixture
def host(tmp_path: Path):
    (tmp_path / "hosts.yml").write_text(HOSTS)
    return load_inventory(tmp_path / "hosts.yml").host("h")


def _result(**by_integration: float) -> list[dict]:
    return [{"metric": {"integration": k}, "value": [NOW, str(x)]} for k, x in by_integration.items()]


def test_a_channel_is_an_integration_and_channels_sharing_one_are_named_together(host) -> None:
    assert deliveries.channels(host) == {"email": ["email"], "slack": ["slack"],
                                         "webhook": ["webhook", "heartbeat"], "msteamsv2": ["teams"]}
    names = [d.name for d in deliveries.deliveries(host, {})]
    assert names == ["email", "slack", "webhook (webhook, heartbeat)", "msteamsv2 (teams)"]


@pytest.mark.parametrize(("d", "expected"), [
    (Delivery("slack", ("slack",), last_ok=NOW - 7200),
     (True, "last delivered 2h00m ago; no failure in 24 h", False)),
    (Delivery("email", ("email",)), (True, "nothing delivered in 24 h; no failure in 24 h", False)),
    # failed, then delivered again: it recovered, but a message may have been late or lost: a warning
    (Delivery("slack", ("slack",), last_ok=NOW - 60, last_failed=NOW - 3600, failed=3, lost=1),
     (True, "3 failed request(s) in 24 h, 1 notification(s) given up, last 60m ago; delivered since (last "
            "delivered 60s ago)", True)),
])
def test_quiet_delivered_and_recovered_channels_pass(d: Delivery, expected: tuple) -> None:
    assert verdict(d, NOW) == expected


def test_a_channel_whose_last_request_failed_fails_verify() -> None:
    failing = Delivery("webhook", ("webhook",), last_ok=NOW - 7200, last_failed=NOW - 120, failed=12)
    passed, text, warning = verdict(failing, NOW)
    assert (passed, warning) == (False, False)
    assert text.startswith("FAILING: 12 failed request(s) in 24 h, last 2m ago; last delivered 2h00m ago (")
    never = Delivery("discord", ("discord",), last_failed=NOW - 60, failed=4)
    assert verdict(never, NOW)[:1] == (False,) and "nothing delivered in 24 h" in verdict(never, NOW)[1]
    # its last failure older than FAILING_NOW, nothing tried since: unknown, a warning saying how to know
    older = Delivery("webhook", ("webhook",), last_ok=NOW - 7200, last_failed=NOW - 3600, failed=2)
    assert verdict(older, NOW) == (
        True, "2 failed request(s) in 24 h, last 60m ago; last delivered 2h00m ago, nothing delivered since: "
              "check it with inv test-alert --synthetic", True)


def test_verify_judges_each_channel_from_prometheus_history(host) -> None:
    outs = good_outputs() | {"now": f"{NOW:.0f}"} | deliveries_answers(
        last_ok=_result(email=NOW - 300, slack=NOW - 60, webhook=NOW - 7200),
        last_failed=_result(slack=NOW - 3600, webhook=NOW - 120),
        failed_24h=_result(slack=2, webhook=9.3), lost_24h=_result(webhook=1))
    checks = {c.name: c for c in v.check_channels(host, outs)}
    assert list(checks) == ["channel email", "channel slack", "channel webhook (webhook, heartbeat)",
                            "channel msteamsv2 (teams)"]
    assert checks["channel email"].line() == "PASS  channel email: last delivered 5m ago; no failure in 24 h"
    assert checks["channel slack"].line().startswith("WARN  channel slack: 2 failed request(s) in 24 h")
    assert checks["channel webhook (webhook, heartbeat)"].line().startswith(
        "FAIL  channel webhook (webhook, heartbeat): FAILING: 9 failed request(s) in 24 h, 1 notification(s) "
        "given up, last 2m ago; last delivered 2h00m ago")
    relaxed = v.judge(list(checks.values()), strict=False)
    assert relaxed.summary == "1 of 4 checks failed: channel webhook (webhook, heartbeat)"
    recovered = v.judge([checks["channel email"], checks["channel slack"]], strict=False)
    assert recovered.status == "ok"
    assert recovered.summary == "all 1 stack checks passed; 1 channel(s) with failures in 24 h"
    strict = v.judge([checks["channel email"], checks["channel slack"]], strict=True)
    assert strict.summary == "1 of 2 checks failed: channel slack (--strict: warnings fail too)"


def test_no_history_from_prometheus_is_one_failed_check(host) -> None:
    outs = good_outputs() | {"deliveries_last_ok": "Service Unavailable\n503"}
    assert [c.line() for c in v.check_channels(host, outs)] == [
        "FAIL  channel deliveries: Prometheus' history of Alertmanager: HTTP 503: Service Unavailable"]


def test_the_queries_are_asked_in_verifys_one_curl_run(host) -> None:
    urls = v.http_requests(host)
    for key in deliveries.QUERIES:
        assert urls[f"deliveries_{key}"].startswith(f"http://127.0.0.1:{host.prometheus.port}/api/v1/query?query=")
        assert " " not in urls[f"deliveries_{key}"]  # encoded: one argument of curl
