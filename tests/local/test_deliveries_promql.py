"""The PromQL verify asks for each channel's deliveries (facts/deliveries.py), evaluated by the real promtool
of the oldest and the newest Prometheus the project runs (2.x and 3.x differ on a range's left edge) on
Alertmanager counters of a known history: one email at 10m, a webhook that got through at 20m and failed at
40m (one notification given up at 45m), a Slack without any failure series."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from fabfile.facts import deliveries
from tests.local.release_bins import lab_releases, unpack

AM = 'job="alertmanager"'
# minute by minute from 0 to 60m, as promtool's expanding notation
SERIES = {
    f'{deliveries.REQ}{{{AM},integration="email"}}': "0x9 1x51",
    f'{deliveries.REQ_FAILED}{{{AM},integration="email"}}': "0x60",
    f'{deliveries.REQ}{{{AM},integration="webhook"}}': "0x19 1x19 2x21",
    f'{deliveries.REQ_FAILED}{{{AM},integration="webhook"}}': "0x39 1x21",
    f'{deliveries.LOST}{{{AM},integration="webhook"}}': "0x44 1x16",
    f'{deliveries.REQ}{{{AM},integration="slack"}}': "0x29 1x31",
}


def _between(query: str, low: float, high: float) -> str:
    """1 per integration whose value is in [low, high]: times are good to a minute or so either way."""
    return f"({query} >= bool {low:g}) * ({query} <= bool {high:g}) == 1"


def _one(integration: str) -> list[dict]:
    return [{"labels": f'{{integration="{integration}"}}', "value": 1}]


CASES = [
    (_between(deliveries.QUERIES["last_ok"], 540, 720), _one("email")),
    (_between(deliveries.QUERIES["last_ok"], 1140, 1320), _one("webhook")),
    (_between(deliveries.QUERIES["last_ok"], 1740, 1920), _one("slack")),
    (_between(deliveries.QUERIES["last_failed"], 2340, 2520), _one("webhook")),
    (f"count({deliveries.QUERIES['last_failed']})", [{"labels": "{}", "value": 1}]),
    (f"round({deliveries.QUERIES['failed_24h']}) > 0", [{"labels": '{integration="webhook"}', "value": 1}]),
    (f"round({deliveries.QUERIES['lost_24h']}) > 0", [{"labels": '{integration="webhook"}', "value": 1}]),
]


@pytest.mark.parametrize("release", ["", "3.5.3"], ids=["promtool-on-path", "promtool-3.5.3"])
def test_the_deliveries_queries_on_a_known_history(tmp_path: Path, release: str) -> None:
    promtool = str(unpack(lab_releases()["prometheus"][release]) / "promtool") if release else "promtool"
    (tmp_path / "rules.yml").write_text("groups: []\n")
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in SERIES.items()],
        "promql_expr_test": [{"expr": q, "eval_time": "60m", "exp_samples": exp} for q, exp in CASES]}]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
