"""deploy-configs on a real server: a changed rule is reloaded (not restarted), a broken one never lands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabfile.render import RULES_ENV, RULES_SOURCE
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)

pytestmark = pytest.mark.lab
RULES = "/opt/rosey-bot/monitoring/alert_rules.yml"

EXTRA_RULE = """
  - name: deploy_test
    rules:
      - alert: DeployTestRule
        expr: vector(1) == 2
        labels:
          severity: info
        annotations:
          summary: "added by the lab test"
"""
BROKEN_RULE = """
  - name: deploy_test_broken
    rules:
      - alert: BrokenRule
        expr: rate(bot_errors_total[5m] > 1
        labels:
          severity: info
"""


def rules_file(tmp_path: Path, extra: str) -> Path:
    text = RULES_SOURCE.read_text()
    assert re.search(r"^groups:\s*$", text, re.M), "expected a top-level groups: list"
    p = tmp_path / "alert_rules.yml"
    p.write_text(text.rstrip("\n") + "\n" + extra)
    return p


def rule_names(d) -> set[str]:
    r = d.get(9090, "/api/v1/rules")
    r.raise_for_status()
    return {rule["name"] for g in r.json()["data"]["groups"] for rule in g["rules"]}


def recap(out: str) -> str:
    m = re.search(r"ok=(\d+) changed=(\d+) failed=(\d+)", out)
    assert m, out
    return m.group(0)


def test_second_deploy_is_a_noop(deployed_lab):
    d = deployed_lab
    p = d.inv("deploy-configs", "-H", "lab")
    assert p.returncode == 0
    assert "deploy-configs: ok" in p.stdout
    assert "reload" not in p.stdout.split("deploy-configs: ok", 1)[1].split("recap")[0]


def test_dry_run_shows_a_masked_diff_and_changes_nothing(deployed_lab, tmp_path):
    d = deployed_lab
    before = d.lab.run(f"sudo sha256sum {RULES}", check=True).stdout
    env = {RULES_ENV: str(rules_file(tmp_path, EXTRA_RULE))}
    p = d.inv("deploy-configs", "-H", "lab", "--dry-run", env=env)
    assert p.returncode == 0
    assert "+      - alert: DeployTestRule" in p.stdout
    assert f"--- {RULES} (server)" in p.stdout
    assert "would reload: prometheus" in p.stdout
    d.assert_no_secret(p.stdout)
    assert d.lab.run(f"sudo sha256sum {RULES}", check=True).stdout == before
    assert "DeployTestRule" not in rule_names(d)


def test_changed_rule_only_deploy_configs_changes_and_prometheus_is_reloaded(deployed_lab, tmp_path):
    d = deployed_lab
    pids = d.main_pids()
    env = {RULES_ENV: str(rules_file(tmp_path, EXTRA_RULE))}
    p = d.inv("sortie6", "-H", "lab", env=env)
    assert p.returncode == 0
    assert "deploy-configs: changed" in p.stdout and "reloaded prometheus" in p.stdout
    assert recap(p.stdout) == "ok=5 changed=1 failed=0"
    assert d.main_pids() == pids  # reloaded, not restarted (alertmanager untouched)
    assert "DeployTestRule" in rule_names(d)
    d.assert_no_secret(p.stdout)
    again = d.inv("deploy-configs", "-H", "lab", env=env)
    assert "deploy-configs: ok" in again.stdout


def test_broken_rule_is_refused_with_promtools_message(deployed_lab, tmp_path):
    d = deployed_lab
    pids = d.main_pids()
    before = d.lab.run(f"sudo sha256sum {RULES}", check=True).stdout
    live = rule_names(d)
    p = d.inv("deploy-configs", "-H", "lab", env={RULES_ENV: str(rules_file(tmp_path, BROKEN_RULE))})
    assert p.returncode != 0
    assert "deploy-configs: FAILED" in p.stdout
    assert "validation failed" in p.stdout and "nothing activated" in p.stdout
    assert re.search(r"parse error|unclosed|unexpected", p.stdout), "promtool's own message expected"
    assert "/tmp/rosey-validate" not in p.stdout  # messages name the real paths
    d.assert_no_secret(p.stdout)
    assert d.lab.run(f"sudo sha256sum {RULES}", check=True).stdout == before
    assert d.main_pids() == pids
    assert rule_names(d) == live and "BrokenRule" not in live
