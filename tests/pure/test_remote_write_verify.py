"""verify per remote_write target (sent, refused, lag from /metrics) and what agent mode moves elsewhere."""

from __future__ import annotations

import dataclasses

from fabfile.config.remote_write import Target
from fabfile.deploy.steps import verify as v
from fabfile.facts import remote_write as rw
from tests.pure.test_verify_eval import good_outputs

URL = "http://10.0.2.2:8428/api/v1/write"


def _metrics(sent: float, failed: float, sent_ts: float, written: float = 1_700_000_000.0) -> str:
    labels = f'remote_name="vm",url="{URL}"'
    return (f"prometheus_config_last_reload_successful 1\n"
            f"{rw.WRITTEN_TS} {written}\n"
            f"{rw.SENT}{{{labels}}} {sent}\n"
            f"{rw.FAILED}{{{labels}}} {failed}\n"
            f"{rw.SENT_TS}{{{labels}}} {sent_ts}\n200")


def _with_target(host, agent: bool = False):
    prom = dataclasses.replace(host.prometheus, mode="agent" if agent else "server")
    return dataclasses.replace(host, prometheus=prom, remote_write=(Target(name="vm", url=URL),))


def _lines(host, metrics: str) -> dict[str, v.Check]:
    outs = good_outputs() | {"metrics_prometheus": metrics}
    return {c.name: c for c in v.evaluate(host, outs, ["email-critical", "email-default"])}


def test_a_healthy_target_passes_with_its_counts(host):
    c = _lines(_with_target(host), _metrics(1200, 0, 1_699_999_990.0))["remote_write vm"]
    assert c.passed and not c.warning
    assert c.detail == "1200 samples sent, 0 refused, lag 10s"


def test_a_wrong_credential_is_one_failing_line_naming_the_target(host):
    # 401: every batch refused for good; Prometheus still moves the sent timestamp on (no lag)
    c = _lines(_with_target(host), _metrics(1200, 1200, 1_699_999_995.0))["remote_write vm"]
    assert not c.passed and c.line().startswith("FAIL  remote_write vm: FAILING: 1200 samples sent, 1200")
    assert "\n" not in c.line() and "remote_write secret" in c.line()


def test_an_unreachable_store_is_behind(host):
    c = _lines(_with_target(host), _metrics(800, 0, 1_700_000_000.0 - 600))["remote_write vm"]
    assert not c.passed and "BEHIND" in c.detail and "lag 10m" in c.detail


def test_a_few_refusals_then_sending_again_is_a_warning(host):
    c = _lines(_with_target(host), _metrics(5000, 10, 1_699_999_990.0))["remote_write vm"]
    assert c.passed and c.warning and "10 refused" in c.detail


def test_a_target_prometheus_does_not_know_fails(host):
    c = _lines(_with_target(host), "prometheus_config_last_reload_successful 1\n200")["remote_write vm"]
    assert not c.passed and "config is not loaded" in c.detail


def test_hosts_without_remote_write_get_no_new_lines(host):
    names = set(_lines(host, good_outputs()["metrics_prometheus"]))
    assert not any(n.startswith(("remote_write", "agent")) for n in names)


def test_agent_mode_says_which_checks_moved_and_skips_them(host):
    checks = _lines(_with_target(host, agent=True), _metrics(1200, 0, 1_699_999_990.0))
    assert "query bot_connected" not in checks and v.ALERTS_CHECK not in checks
    assert not any(n.startswith("channel") for n in checks)
    moved = checks["agent mode"]
    assert moved.passed and "checked on the central store" in moved.detail
    assert checks["remote_write vm"].passed and "target rosey-bot" in checks  # scraping is still ours


def test_status_of_an_agent_host_is_a_note_not_an_error(host):
    from rich.console import Console

    from fabfile.status.collect import HostStatus
    from fabfile.status.view import host_table

    st = HostStatus("lab", "test", note=rw.agent_note())
    console = Console(width=200, record=True)
    console.print(host_table(st, console))
    text = console.export_text()
    assert "central store" in text and "error" not in text


def test_the_drill_refuses_an_agent_host_before_touching_anything(host, tmp_path):
    import pytest

    from fabfile.config.inventory import load_inventory
    from fabfile.drill import runner
    from fabfile.errors import UserError

    (tmp_path / "hosts.yml").write_text(
        "hosts:\n  a:\n    address: 127.0.0.1\n    prometheus: {mode: agent}\n"
        "    receivers: {email: {to: [o@example.com], from: a@example.com, smarthost: 's.example.com:25'}}\n"
        f"    remote_write: [{{name: vm, url: '{URL}'}}]\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    with pytest.raises(UserError) as e:  # (no secrets file exists: reading one would be another error)
        runner.cli_test_alert(inv, [inv.host("a")])
    assert "prometheus.mode is agent" in str(e.value) and "nothing was touched" in str(e.value)
    assert "\n" not in str(e.value)
