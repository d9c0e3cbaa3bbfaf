"""The coverage report of the alert rules (tests/rule_coverage.py): every rule has a lab proof, the README's
table is current, and the report itself catches what it is there to catch (issue 28 §3)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from tests import conftest
from tests import rule_coverage as rc

# The lead's tests/lab/test_rule_proofs.py proves these: empty this set when it is merged, so that from
# then on every rule without a lab proof fails here.


def no_proof(rule: str) -> str:
    return (f"monitoring/alert_rules.yml: rule {rule} has no lab proof: add a lab test marked "
            f"@pytest.mark.proves(\"{rule}\") (tests/lab/test_rule_proofs.py)")


def test_every_rule_of_the_repository_has_a_lab_proof_and_a_promtool_case() -> None:
    assert rc.problems() == []


def test_the_rules_are_read_with_severity_and_for() -> None:
    rules = {r.name: r for r in rc.read_rules()}
    assert rules["BotDown"] == rc.RuleInfo("BotDown", "critical", "1m")
    assert rules["BotRestarting"].for_ == ""  # an event: no `for:`
    assert rules["Watchdog"].severity == "none"
    assert len(rules) == len(rc.read_rules())  # no name twice
    assert {"BotDown", "ChannelEmpty", "RemoteWriteWALNearDataLoss"} <= set(rules)


def test_the_existing_lab_proofs_are_found() -> None:
    proofs = rc.lab_proofs()
    assert "test_drill.py::test_full_drill_within_bound_with_mails_and_no_secret" in proofs.by_rule["BotDown"]
    proof = "test_rule_proofs.py::test_every_rule_caused_for_real_is_heard_once_per_channel_and_resolves"
    assert len(proofs.by_rule["MonitoringPeerDown"]) == 3 and proof in proofs.by_rule["MonitoringPeerDown"]
    assert proofs.by_rule["Watchdog"] == [
        "test_lab_cluster.py::test_the_heartbeat_beats_while_one_alertmanager_lives_and_stops_with_both",
        proof]
    assert all(proof in proofs.by_rule[r.name] for r in rc.read_rules())
    assert proofs.unreadable == []


def rules_with(tmp_path: Path, extra: str) -> Path:
    """A copy of the real rules file with `extra` rules appended to its last group."""
    path = tmp_path / "alert_rules.yml"
    path.write_text(rc.RULES.read_text().rstrip("\n") + "\n" + extra)
    return path


NEW_RULE = """\
      - alert: DiskFillingUp
        expr: vector(1)
        for: 2m
        labels: {severity: warning, component: monitoring}
"""


def test_a_rule_added_without_proof_fails(tmp_path: Path) -> None:
    """The issue's "test it by adding one": a new rule, no lab proof, no promtool case."""
    found = rc.problems(rules_path=rules_with(tmp_path, NEW_RULE))
    mine = [p for p in found if "DiskFillingUp" in p]
    assert mine == [
        f"{tmp_path / 'alert_rules.yml'}: rule DiskFillingUp has no lab proof: add a lab test marked "
        "@pytest.mark.proves(\"DiskFillingUp\") (tests/lab/test_rule_proofs.py)",
        f"{tmp_path / 'alert_rules.yml'}: rule DiskFillingUp has no promtool case where it fires: add one to "
        "monitoring/tests/*.yml"]
    assert "`DiskFillingUp` | warning | 2m | 0 / 0 | none: **missing**" in rc.markdown_table(
        rules_path=tmp_path / "alert_rules.yml")


def lab_with(tmp_path: Path, source: str) -> Path:
    """The real lab tests plus one module with `source`."""
    lab = tmp_path / "lab"
    shutil.copytree(rc.LAB_TESTS, lab, ignore=shutil.ignore_patterns("__pycache__"))
    (lab / "test_new.py").write_text(source)
    return lab


def test_a_proof_with_its_rule_is_counted_and_an_unknown_rule_is_reported(tmp_path: Path) -> None:
    lab = lab_with(tmp_path, 'import pytest\n\n\n@pytest.mark.proves("BotRestarting", "BotRestartng")\n'
                             'def test_restart_twice():\n    pass\n')
    found = rc.problems(lab_dir=lab)
    assert no_proof("BotRestarting") not in found
    assert ('test_new.py::test_restart_twice: @pytest.mark.proves("BotRestartng") names no rule of '
            "monitoring/alert_rules.yml") in found
    assert "`test_new.py::test_restart_twice`" in rc.markdown_table(lab_dir=lab)


def test_a_module_says_how_it_causes_a_rule_and_the_table_shows_it_once(tmp_path: Path) -> None:
    lab = lab_with(tmp_path, 'import pytest\n\nRULE_CAUSES = {"BotRestarting": "the bot " "restarted"\n'
                             '" twice"}\n'
                             '\n\n'
                             '@pytest.mark.proves("BotRestarting")\ndef test_a():\n    pass\n\n\n'
                             '@pytest.mark.proves("BotRestarting")\ndef test_b():\n    pass\n')
    row = next(r for r in rc.markdown_table(lab_dir=lab).splitlines() if r.startswith("| `BotRestarting`"))
    assert row.count("the bot restarted twice (`test_new.py`)") == 1 and "test_a" not in row, row


def test_a_marker_that_cannot_be_read_statically_is_reported(tmp_path: Path) -> None:
    lab = lab_with(tmp_path, 'import pytest\nRULE = "BotRestarting"\n\n\n@pytest.mark.proves(RULE)\n'
                             'async def test_restart():\n    pass\n')
    unreadable = [p for p in rc.problems(lab_dir=lab) if "test_new.py" in p]
    assert unreadable == [f"{lab / 'test_new.py'}:5: test_new.py::test_restart: @pytest.mark.proves(...) "
                          "takes rule names as string literals (read without running)"]
    (lab / "test_new.py").write_text("from pytest import mark\n\n\n@mark.proves()\ndef test_x():\n    pass\n")
    assert [p for p in rc.problems(lab_dir=lab) if "test_new.py" in p] == [
        f"{lab / 'test_new.py'}:4: test_new.py::test_x: @pytest.mark.proves() names no rule: name the rules "
        "the test causes"]


def test_an_exemption_must_name_an_unproven_rule(tmp_path: Path) -> None:
    found = rc.problems(exempt={**rc.NO_LAB_PROOF, "NoSuchRule": "why", "BotDown": "too hard"})
    assert ("tests/rule_coverage.py: NO_LAB_PROOF names NoSuchRule, no rule of monitoring/alert_rules.yml: "
            "remove it") in found
    assert any(p.startswith("tests/rule_coverage.py: NO_LAB_PROOF exempts BotDown, which has a lab proof")
               for p in found)


def test_the_readme_shows_the_current_table() -> None:
    block = rc.readme_block(rc.README.read_text())
    assert block is not None, f"README.md: no {rc.BEGIN} ... {rc.END} block"
    assert block == rc.markdown_table(), "README.md: rule table stale: run python -m tests.rule_coverage " \
                                         "--write-readme"


def test_a_stale_readme_block_is_replaced() -> None:
    text = f"intro\n{rc.BEGIN}\n| old |\n{rc.END}\nrest\n"
    new = rc.with_table(text, "| new |\n")
    assert new == f"intro\n{rc.BEGIN}\n| new |\n{rc.END}\nrest\n"
    assert rc.readme_block(new) == "| new |\n"
    assert rc.readme_block("no markers") is None


def test_promtool_cases_are_counted_per_alertname(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump({"rule_files": ["x.yml"], "tests": [
        {"interval": "15s", "alert_rule_test": [
            {"eval_time": "1m", "alertname": "A", "exp_alerts": []},
            {"eval_time": "2m", "alertname": "A", "exp_alerts": [{"exp_labels": {"severity": "critical"}}]},
            {"eval_time": "2m", "alertname": "B"}]},  # no exp_alerts at all: quiet as well
        {"interval": "15s", "promql_expr_test": [{"expr": "up", "eval_time": "1m"}]}]}))
    (tmp_path / "notes.txt").write_text("tests: [{alert_rule_test: [{alertname: A}]}]")  # not a test file
    assert rc.promtool_cases(tmp_path) == {"A": rc.Cases(firing=1, quiet=1), "B": rc.Cases(firing=0, quiet=1)}
    # a second file adds up; `exp_alerts: [{}]` is one alert expected, with no labels checked: it fires
    (tmp_path / "b.yml").write_text("tests:\n- alert_rule_test:\n  - {alertname: B, exp_alerts: [{}]}\n")
    assert rc.promtool_cases(tmp_path)["B"] == rc.Cases(firing=1, quiet=1)


# ---------------------------------------------------------------- channels: checked against the real routes

EVERY_CHANNEL = """\
defaults:
  web: {basic_auth: false, allow_from: [10.0.0.0/8]}
  alertmanager: {version: 0.28.1}
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: "smtp.example.com:25"}
    slack: {channel: "#rosey"}
    discord: {}
    webhook: {}
    pagerduty: {}
    teams: {}
    heartbeat: {}
hosts:
  all: {address: all.invalid}
"""


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher of the forms the render writes: name="v" or name!="v"."""
    name, op, value = (matcher.partition("!=") if "!=" in matcher else matcher.partition("="))
    return (labels.get(name, "") == value.strip('"')) == (op == "=")


def _receivers(route: dict, labels: dict[str, str]) -> list[str]:
    """Where Alertmanager sends `labels`: the child routes in order, on past each with `continue`; the root
    receiver when none matched (one level: the render writes no nested routes)."""
    out = []
    for child in route.get("routes") or []:
        assert "routes" not in child, "nested routes: extend this walk"
        if all(_matches(m, labels) for m in child.get("matchers") or []):
            out.append((child["receiver"], child.get("active_time_intervals")))
            if not child.get("continue"):
                return out
    return out or [(route["receiver"], None)]


def _channel(receiver: str, active: list[str] | None) -> str | None:
    """The report's name for a receiver (None: the deliberate sink, which sends nothing)."""
    named = {"email-critical": "email (critical)", "email-default": "email",
             "email-info": "email (info, business hours)", "heartbeat": "heartbeat only"}
    if receiver == "email-info":
        assert active == ["business-hours"]
    return named.get(receiver, receiver.removesuffix("-critical")) if receiver != "blackhole" else None


@pytest.fixture(scope="module")
def every_channel_routes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("every-channel") / "hosts.yml"
    path.write_text(EVERY_CHANNEL)
    inventory = load_inventory(path)
    host = inventory.host("all")
    secrets = {name: f"{name}-value" for name in required_secrets(host)}
    files = render.render_host(inventory, host, secrets, hash_password=False).files
    return yaml.safe_load(files["alertmanager.yml"])["route"]


@pytest.mark.parametrize("rule", rc.read_rules(), ids=lambda r: r.name)
def test_the_channels_column_is_the_rendered_route(rule: rc.RuleInfo, every_channel_routes: dict) -> None:
    labels = {"alertname": rule.name, "severity": rule.severity}
    routed = [c for r, active in _receivers(every_channel_routes, labels) if (c := _channel(r, active))]
    assert routed == rc.channels(rule)


def test_every_chat_type_is_on_the_critical_route() -> None:
    """The walk above can fail: the rendered file routes a critical alert to all five chat channels."""
    assert rc.CRITICAL_CHAT == ("slack", "discord", "webhook", "pagerduty", "teams")
    assert rc.channels(rc.RuleInfo("X", "warning", "")) == ["email"]
    assert rc.channels(rc.RuleInfo("Watchdog", "none", "")) == ["heartbeat only"]


# ---------------------------------------------------------------- what the lab proofs saw


def test_seen_records_are_summed_per_rule_across_workers(tmp_path: Path) -> None:
    seen = tmp_path / "build" / "rule-coverage"  # created on the first record
    rc.record_seen("BotDown", "email", "firing", 92.5, directory=seen)
    rc.record_seen("BotDown", "slack", "firing", 91.0, directory=seen)
    rc.record_seen("BotDown", "email", "firing", 300.0, directory=seen)  # a second drill: the first counts
    rc.record_seen("BotDown", "email", "resolved", 160.0, directory=seen)
    # another xdist worker's file
    (seen / "seen-99999.jsonl").write_text(
        '{"rule": "Watchdog", "channel": "heartbeat", "event": "firing", "seconds": null}\n\n'
        '{"rule": "BotDown", "channel": "pagerduty", "event": "firing", "seconds": 89.0}\n')
    report = rc.seen_report(seen)
    assert list(report) == ["BotDown", "Watchdog"]
    assert report["BotDown"] == rc.Seen(firing=["email", "slack", "pagerduty"], resolved=["email"],
                                        first_seconds=89.0)
    assert report["Watchdog"] == rc.Seen(firing=["heartbeat"], resolved=[], first_seconds=None)
    assert rc.seen_lines(report) == [
        "BotDown: firing on email, slack, pagerduty; resolved on email; first message 89.0s after the cause",
        "Watchdog: firing on heartbeat; resolved on nothing; first message not timed"]
    rc.clear_seen(seen)
    assert rc.seen_report(seen) == {}
    rc.clear_seen(seen)  # nothing there: no error


class _Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(f"{sep * 3} {title}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_the_run_clears_and_prints_the_records_on_the_controller_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rc, "SEEN_DIR", tmp_path)
    controller, worker = SimpleNamespace(), SimpleNamespace(workerinput={"workerid": "gw0"})
    reporter = _Reporter()
    conftest.pytest_terminal_summary(reporter, controller)
    assert reporter.lines == []  # nothing recorded (a run without lab proofs): no section
    rc.record_seen("BotDown", "email", "firing", 90.0, directory=tmp_path)
    conftest.pytest_terminal_summary(reporter, worker)
    assert reporter.lines == []
    conftest.pytest_terminal_summary(reporter, controller)
    assert reporter.lines == [
        "--- alert rules: messages seen by the lab proofs",
        "BotDown: firing on email; resolved on nothing; first message 90.0s after the cause"]
    conftest.pytest_sessionstart(SimpleNamespace(config=worker))
    assert rc.seen_report(tmp_path)  # a worker starting late keeps what the others recorded
    conftest.pytest_sessionstart(SimpleNamespace(config=controller))
    assert rc.seen_report(tmp_path) == {}
