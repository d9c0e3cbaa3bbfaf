"""Alert rules: metadata, promtool validation, rule unit tests, and proof that the runbook's rules fail them.

The promtool tests are marked `tools`: they skip when promtool is missing, except under CI=true where a
missing promtool is a failure.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "alert_rules.yml"
TESTS_DIR = ROOT / "monitoring" / "tests"
RUNBOOK_RULES = ROOT / "tests" / "data" / "runbook_alert_rules.yml"
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))

HEARTBEAT = "Watchdog"  # always firing, severity none: routed only to the heartbeat receiver
BOT_ALERTS = {
    "BotDown": "critical",
    "BotRestarting": "warning",
    "HighErrorRate": "warning",
    "CriticalErrorRate": "critical",
    "ChannelEmpty": "info",
}
MONITORING_ALERTS = {
    "AlertmanagerNotificationsFailing",
    "PrometheusConfigReloadFailed",
    "AlertmanagerConfigReloadFailed",
    "PrometheusAlertmanagerUnreachable",
    "MonitoringTargetDown",
    "MonitoringPeerDown",
    "RemoteWriteFailing",
    "RemoteWriteBehind",
    "RemoteWriteWALNearDataLoss",
    HEARTBEAT,
}
# The part of each runbook description that our description keeps word for word.
RUNBOOK_DESCRIPTION_KEPT = {
    "BotDown": "Bot has been disconnected",
    "BotRestarting": "indicating restarts. Check logs.",
    "HighErrorRate": "errors per second.",
    "CriticalErrorRate": "errors per second. Immediate attention required.",
    "ChannelEmpty": "No users detected in channel for 10 minutes. Is this expected?",
}
# Scenarios the issue asks for by name; the runbook proof below relies on some of them.
REQUIRED_SCENARIOS = {
    "bot stopped",
    "bot disconnected",
    "bot restarted",
    "scrape blip shorter than for",
    "errors 0.05 per second",
    "errors 0.5 per second",
    "errors 2 per second",
    "channel empty",
    "channel empty 9 minutes",
    "healthy for 30 minutes",
    "notifications failing",
    "config reload failed",
    "alertmanager not discovered",
    "alert sending fails",
    "peer prometheus down",
    "peer host down",
    "peers healthy",
    "watchdog always fires",
}

# promtool prints one block per failed expectation: "name: <test group>,\n    alertname: X, time: T,"
_FAILURE = re.compile(r"name: (?P<group>[^,\n]+),\s*\n\s*alertname: (?P<alert>\w+), time: (?P<time>[^,\s]+),")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules(path: Path) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _load(path)["groups"] for r in g["rules"]}


def _test_groups() -> list[tuple[str, dict[str, Any]]]:
    return [(f.name, group) for f in TEST_FILES for group in _load(f)["tests"]]


# ---------------------------------------------------------------- pure Python


def test_every_rule_has_labels_and_annotations() -> None:
    rules = _rules(RULES)
    assert set(rules) == set(BOT_ALERTS) | MONITORING_ALERTS
    for name, rule in rules.items():
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        severities = {"none"} if name == HEARTBEAT else {"critical", "warning", "info"}
        assert labels.get("severity") in severities, name
        expected_component = "bot" if name in BOT_ALERTS else "monitoring"
        assert labels.get("component") == expected_component, name
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: annotation {key} missing"
        assert "http" not in annotations["runbook"].replace("http://{{ $labels.instance }}", ""), (
            f"{name}: runbook is a what-to-do hint, not a link"
        )


def test_bot_alerts_keep_runbook_names_severities_and_summaries() -> None:
    ours, runbook = _rules(RULES), _rules(RUNBOOK_RULES)
    assert set(runbook) == set(BOT_ALERTS)
    for name, severity in BOT_ALERTS.items():
        assert ours[name]["labels"]["severity"] == runbook[name]["labels"]["severity"] == severity
        assert ours[name]["annotations"]["summary"] == runbook[name]["annotations"]["summary"]
        # The runbook's description text stays (fixed where wrong, with instance/env added).
        fragment = RUNBOOK_DESCRIPTION_KEPT[name]
        assert fragment in runbook[name]["annotations"]["description"], name
        assert fragment in ours[name]["annotations"]["description"], name
    assert "Channel: {{ $labels.instance }}" not in RULES.read_text()


def test_for_durations_match_the_issue() -> None:
    rules = _rules(RULES)
    assert rules["BotDown"]["for"] == "1m"
    assert rules["HighErrorRate"]["for"] == "5m"
    assert rules["CriticalErrorRate"]["for"] == "1m"
    assert rules["ChannelEmpty"]["for"] == "10m"
    assert rules["MonitoringPeerDown"]["for"] == "1m"
    assert rules[HEARTBEAT]["expr"] == "vector(1)" and "for" not in rules[HEARTBEAT]
    assert "0.1" in rules["HighErrorRate"]["expr"] and "> 1" in rules["CriticalErrorRate"]["expr"]


def test_rule_test_files_point_at_the_rules_and_use_15s() -> None:
    assert TEST_FILES, "no rule unit tests in monitoring/tests"
    for f in TEST_FILES:
        doc = _load(f)
        assert doc["rule_files"] == ["../alert_rules.yml"], f.name
        assert doc["evaluation_interval"] == "15s", f.name
        for group in doc["tests"]:
            assert group.get("interval") == "15s", f"{f.name}: {group.get('name')}"


def test_test_groups_are_named_uniquely_and_cover_the_scenarios() -> None:
    names = [group.get("name", "") for _, group in _test_groups()]
    assert all(n and "," not in n for n in names), "every test group needs a name without commas"
    assert len(names) == len(set(names)), "test group names must be unique"
    assert set(names) >= REQUIRED_SCENARIOS, REQUIRED_SCENARIOS - set(names)


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for _, group in _test_groups():
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    for name in set(BOT_ALERTS) | MONITORING_ALERTS:
        assert name in firing, f"{name}: no test where it fires"
        if name != HEARTBEAT:
            assert name in silent, f"{name}: no test where it stays silent"
    assert HEARTBEAT not in silent, "the Watchdog must fire in every test that asks"


def test_firing_expectations_carry_full_labels_and_annotations() -> None:
    rules = _rules(RULES)
    for file_name, group in _test_groups():
        for case in group.get("alert_rule_test", []):
            for alert in case.get("exp_alerts") or []:
                where = f"{file_name}: {group['name']} {case['alertname']}@{case['eval_time']}"
                rule_labels = rules[case["alertname"]]["labels"]
                assert {k: alert["exp_labels"].get(k) for k in rule_labels} == rule_labels, where
                assert set(alert.get("exp_annotations", {})) == {"summary", "description", "runbook"}, where


def test_runbook_copy_is_unchanged_since_it_was_taken() -> None:
    """The copy carries its provenance and the sha256 of the copied text in its header (the runbook itself
    lives outside the repository, so a test reading it would skip in a plain clone)."""
    header, marker, copied = RUNBOOK_RULES.read_text().partition("# ---- verbatim copy below ----\n")
    assert marker, "the provenance header's marker line is missing"
    recorded = re.search(r"^# sha256 of the text below the marker: ([0-9a-f]{64})$", header, re.M)
    assert recorded is not None, "the provenance header records no sha256"
    assert hashlib.sha256(copied.encode()).hexdigest() == recorded.group(1)
    assert copied.startswith("# Alerting rules for Rosey Bot\n")


# ---------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    return shutil.which("promtool") or skip_or_fail("promtool is not on PATH (install Debian's prometheus)")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def _failures(output: str) -> set[tuple[str, str]]:
    return {(m["group"], m["alert"]) for m in _FAILURE.finditer(output)}


def test_promtool_check_rules(promtool: str) -> None:
    result = _run([promtool, "check", "rules", str(RULES.relative_to(ROOT))], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(BOT_ALERTS) + len(MONITORING_ALERTS)} rules found" in result.stdout


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(promtool: str, test_file: Path) -> None:
    # Run from the repository root: rule_files is resolved relative to the test file, not the cwd.
    result = _run([promtool, "test", "rules", str(test_file.relative_to(ROOT))], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass_from_their_directory(promtool: str) -> None:
    result = _run([promtool, "test", "rules", *[f.name for f in TEST_FILES]], TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def _run_suite(promtool: str, rules_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "alert_rules.yml").write_text(rules_text)
    tests = tmp_path / "tests"
    tests.mkdir()
    for f in TEST_FILES:
        shutil.copy(f, tests / f.name)
    return _run([promtool, "test", "rules", *[f.name for f in TEST_FILES]], tests)


def test_runbook_expressions_fail_the_behaviour_tests(promtool: str, tmp_path: Path) -> None:
    """Our rules with the runbook's expr/for swapped back in: only behaviour differs, nothing else."""
    doc = _load(RULES)
    runbook = _rules(RUNBOOK_RULES)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule["alert"] in runbook:
                rule["expr"] = runbook[rule["alert"]]["expr"]
                rule["for"] = runbook[rule["alert"]]["for"]
    result = _run_suite(promtool, yaml.safe_dump(doc, sort_keys=False), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    failed = _failures(output)
    # A stopped bot: bot_connected vanishes instead of reading 0, so `bot_connected == 0` never fires.
    assert ("bot stopped", "BotDown") in failed, output
    assert ("bot target absent", "BotDown") in failed, output
    # A restart: rate() is never negative, so `rate(bot_uptime_seconds[5m]) < 0` never fires.
    assert ("bot restarted", "BotRestarting") in failed, output
    assert ("bot restarted between scrapes", "BotRestarting") in failed, output
    # A disconnected bot that sees 0 users is reported as an empty channel too.
    assert ("channel empty while disconnected", "ChannelEmpty") in failed, output
    # The harness itself is sound: where the runbook's expression is right, its test passes.
    passing = {"bot disconnected", "errors 0.5 per second", "errors 2 per second", "channel empty"}
    assert not {group for group, _ in failed} & passing, failed


def test_runbook_rules_verbatim_fail(promtool: str, tmp_path: Path) -> None:
    result = _run_suite(promtool, RUNBOOK_RULES.read_text(), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    failed = {group for group, _ in _failures(output)}
    assert {"bot stopped", "bot restarted"} <= failed, failed
