"""Issue 31: the drill's scenarios are a registry (the CLI's choices, help and checks come from it), the lab
is a plug-in (the drill never imports it; host-down asks the power-switch registry), and the runner and the
scenarios do not import each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.drill import power, runner, scenarios
from fabfile.drill.contract import DrillResult
from fabfile.drill.errors import DrillFailed
from fabfile.drill.scenarios.host_down import HostDown
from fabfile.drill.scenarios.synthetic import SYNTHETIC, Synthetic, chosen_alert
from fabfile.drill.timeline import Timeline
from fabfile.errors import UserError
from tests.helpers import module_imports

REPO = Path(__file__).resolve().parents[2]
DRILL = REPO / "fabfile" / "drill"

HOSTS = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  alertmanager: {version: 0.27.0, group_interval: 30s}
hosts:
  a: {address: a.invalid, peer_address: 10.0.0.1, env: test}
  b: {address: b.invalid, peer_address: 10.0.0.2, env: test}
  solo: {address: solo.invalid, env: test}
clusters:
  rosey: [a, b]
"""


class _Switch:
    def power_off(self) -> bool:
        return True

    def power_on(self) -> float:
        return 0.0


def _inventory(tmp_path: Path):
    (tmp_path / "hosts.yml").write_text(HOSTS)
    return load_inventory(tmp_path / "hosts.yml")


@pytest.fixture
def switch_for_a(monkeypatch: pytest.MonkeyPatch) -> _Switch:
    """Only host `a` has a power switch (the registry emptied of anything else, e.g. the lab's)."""
    switch = _Switch()
    monkeypatch.setattr(power, "_factories", [])
    power.register_power_switch(lambda h: switch if h.name == "a" else None)
    return switch


def _stub_drill(monkeypatch: pytest.MonkeyPatch, result: DrillResult) -> list[object]:
    """cli_test_alert with nothing behind it: no secrets, no peers, a drill that ends with `result` at once;
    the scenarios it was handed."""
    got: list[object] = []

    def run_drill(host, ctx, *, scenario, **kw):
        got.append(scenario)
        return result

    monkeypatch.setattr("fabfile.ssh.session.load_secrets", lambda inventory, host: {})
    monkeypatch.setattr(runner, "peer_targets", lambda inventory, host, ctx: {})
    monkeypatch.setattr(runner, "run_drill", run_drill)
    return got


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A drill that passes at once."""
    return _stub_drill(monkeypatch, DrillResult(True, "passed", Timeline()))


@pytest.mark.parametrize("spec", scenarios.SCENARIOS, ids=lambda s: s.name)
def test_every_registered_scenario_is_accepted_and_runs_its_own_factory(tmp_path, spec, ran,
                                                                        switch_for_a, capsys) -> None:
    i = _inventory(tmp_path)
    assert runner.cli_test_alert(i, [i.host("a")], scenario=spec.name) == 0
    assert [type(x) for x in ran] == [type(spec.factory(None))]
    assert f"== alert drill ({spec.name}) on a " in capsys.readouterr().out


def test_synthetic_is_an_alias_of_the_synthetic_scenario(tmp_path, ran) -> None:
    i = _inventory(tmp_path)
    assert scenarios.chosen(synthetic=True) is scenarios.chosen("synthetic") is scenarios.BY_NAME["synthetic"]
    assert scenarios.chosen("synthetic", synthetic=True).name == "synthetic"
    assert scenarios.chosen().name == scenarios.DEFAULT == "bot-down"
    runner.cli_test_alert(i, [i.host("solo")], synthetic=True)
    assert [type(x) for x in ran] == [type(scenarios.BY_NAME["synthetic"].factory(None))]
    with pytest.raises(UserError, match="^--synthetic is --scenario synthetic: not with --scenario "
                                        "bot-down$"):
        scenarios.chosen("bot-down", synthetic=True)


def test_an_unknown_scenario_is_one_line_naming_the_registry() -> None:
    names = ", ".join(s.name for s in scenarios.SCENARIOS)
    with pytest.raises(UserError) as e:
        scenarios.chosen("power-cut")
    assert str(e.value) == f"--scenario power-cut: unknown; one of {names}"


def test_the_task_help_is_the_registry() -> None:
    import tasks

    text = tasks.test_alert.help["scenario"]
    assert text == scenarios.help_text()
    for s in scenarios.SCENARIOS:
        assert f"{s.name}{' (default)' if s.name == scenarios.DEFAULT else ''}: {s.help}" in text


def test_what_a_scenario_needs_is_checked_before_anything_is_touched(tmp_path, ran, switch_for_a) -> None:
    i = _inventory(tmp_path)
    for s in scenarios.SCENARIOS:
        if s.cluster:
            with pytest.raises(UserError, match=f"^--scenario {s.name}: solo not in a `clusters:` entry"):
                runner.cli_test_alert(i, [i.host("solo")], scenario=s.name)
        if s.power:  # b is clustered but has no switch
            with pytest.raises(UserError, match=f"^--scenario {s.name}: b not a lab host .* use --scenario "
                                                "monitoring-down$"):
                runner.cli_test_alert(i, [i.host("a"), i.host("b")], scenario=s.name)
    assert ran == []


def test_host_down_asks_the_power_switch_registry(tmp_path, switch_for_a) -> None:
    i = _inventory(tmp_path)
    d = type("D", (), {"host": i.host("a")})()
    assert HostDown().vm(d) is switch_for_a
    d.host = i.host("b")
    with pytest.raises(DrillFailed, match="^b is not a lab host: host-down powers off a lab VM"):
        HostDown().vm(d)


def test_the_lab_registers_its_vms_as_power_switches(tmp_path, monkeypatch) -> None:
    import fabfile.lab  # noqa: F401  (registers on import)
    from fabfile.lab.vm import LabVM

    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path / "cache"))  # a LabVM makes its run dir
    i = _inventory(tmp_path)
    assert power.power_switch(i.host("a")) is None  # not a lab host
    fake = type("H", (), {"name": "lab", "lab": object()})()
    assert isinstance(power.power_switch(fake), LabVM)


def test_the_drill_never_imports_the_lab() -> None:
    files = sorted(DRILL.rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(REPO)): sorted(m for m in module_imports(f) if m.startswith("fabfile.lab"))
           for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_scenarios_never_import_the_runner() -> None:
    for f in [DRILL / "contract.py", *sorted((DRILL / "scenarios").glob("*.py"))]:
        assert not any(m.startswith("fabfile.drill.runner") for m in module_imports(f)), f
    assert not any(m.startswith("fabfile.drill.scenarios") for m in module_imports(DRILL / "contract.py"))


RULES = """\
groups:
  - name: g
    rules:
      - {alert: HighErrorRate, expr: vector(1), labels: {severity: warning, component: bot}}
      - {alert: CriticalErrorRate, expr: vector(1), labels: {severity: critical, component: bot}}
"""


def test_the_test_alert_takes_a_rules_labels_and_the_chosen_severity(tmp_path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    rules = tmp_path / "rules.yml"
    assert chosen_alert("HighErrorRate", "", rules) == {
        "severity": "warning", "component": "bot", "alertname": "HighErrorRate"}
    assert chosen_alert("HighErrorRate", "critical", rules)["severity"] == "critical"
    assert chosen_alert() == {"alertname": SYNTHETIC, "severity": "critical"}
    assert chosen_alert("", "info", rules) == {"alertname": SYNTHETIC, "severity": "info"}
    assert Synthetic(chosen_alert("HighErrorRate", "", rules)).alert == "HighErrorRate"


@pytest.mark.parametrize(("alert", "severity", "expected"), [
    ("HighErrorrate", "", "--alert HighErrorrate: no alert rule of that name in {rules}; did you mean "
                          "'HighErrorRate'?"),
    ("Nope", "", "--alert Nope: no alert rule of that name in {rules}; one of HighErrorRate, "
                 "CriticalErrorRate"),
    ("HighErrorRate", "page", "--severity page: unknown; one of critical, warning, info"),
])
def test_a_bad_alert_or_severity_is_one_line_naming_the_flag(tmp_path, alert, severity, expected) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    with pytest.raises(UserError) as e:
        chosen_alert(alert, severity, tmp_path / "rules.yml")
    assert str(e.value) == expected.format(rules=tmp_path / "rules.yml")


def test_alert_and_severity_are_checked_before_any_host_is_reached(tmp_path, ran, monkeypatch) -> None:
    i = _inventory(tmp_path)

    def never(*a, **kw):
        raise AssertionError("a host was reached")

    monkeypatch.setattr(runner, "drill_context", never)
    with pytest.raises(UserError, match="^--severity urgent: unknown"):
        runner.cli_test_alert(i, [i.host("solo")], synthetic=True, severity="urgent")
    with pytest.raises(UserError, match="^--alert BotDwn: no alert rule of that name in .*did you mean "
                                        "'BotDown'"):
        runner.cli_test_alert(i, [i.host("solo")], synthetic=True, alert="BotDwn")
    with pytest.raises(UserError, match="^--alert/--severity go with --synthetic .*not with --scenario "
                                        "bot-down$"):
        runner.cli_test_alert(i, [i.host("solo")], alert="BotDown")
    assert ran == []


def test_the_chosen_alert_is_what_the_drill_posts_and_a_failure_exits_1(tmp_path, monkeypatch) -> None:
    i = _inventory(tmp_path)
    got = _stub_drill(monkeypatch, DrillResult(False, "notifications are FAILING for integration 'slack'",
                                               Timeline()))
    code = runner.cli_test_alert(i, [i.host("solo")], synthetic=True, alert="BotDown", severity="warning")
    assert code == 1
    assert [(s.alert, s.chosen["severity"], s.chosen["component"]) for s in got] == [
        ("BotDown", "warning", "bot")]
