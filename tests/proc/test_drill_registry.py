"""The drill's scenario registry through the real CLI (an `inv` process): an unknown scenario is one line."""

from __future__ import annotations

from fabfile.drill import scenarios
from tests.helpers import inv
from tests.pure.test_drill_registry import _inventory


def test_an_unknown_scenario_through_inv_is_one_line_naming_the_registry(tmp_path) -> None:
    names = ", ".join(s.name for s in scenarios.SCENARIOS)
    _inventory(tmp_path)
    p = inv("test-alert", "-H", "solo", "--scenario", "power-cut",
            env={"ROSEY_INVENTORY": str(tmp_path / "hosts.yml")}, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == f"error: --scenario power-cut: unknown; one of {names}"
    assert "Traceback" not in p.stdout
