"""`amlint check` passes the rendered alertmanager.yml of every inventory the tests use, with no warning.

amlint catches what `amtool check-config` lets through (an empty receiver that silently drops alerts, routes
no alert can reach, inhibitions that swallow too much), and with `--rules` it checks the routes against the
rendered alert rules. The inventories: the shipped hosts.yml (every host), the tests' inventory, the lab's
cluster (with and without the heartbeat) and one host with every channel on (each integration variant).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabfile.config import render
from fabfile.config.inventory import PROJECT_ROOT, load_inventory
from fabfile.config.receivers import RECEIVER_TYPES
from fabfile.config.secrets import load_secrets_issuing
from fabfile.lab.cluster_inventory import cluster_document
from tests import helpers

AMLINT = str(Path(sys.executable).parent / "amlint")  # installed beside the interpreter by `.[dev]`
SECRETS = {"smtp_password": "smtp-Pa55-word", "web_password": "web-Pa55-word",
           **{t.secret: f"https://{t.name}.example/amlint-secret-path" for t in RECEIVER_TYPES}}
# Findings amlint reports as INFO, each deliberate: the Watchdog's sink (named as one for that reason) and
# the warnings that go to the root's email-default (no catch-all route: README "Alerts").
ACCEPTED_INFO = {"empty-receiver", "alert-hits-default-receiver"}


def _copy(tmp: Path, doc: dict[str, Any], name: str) -> Path:
    """The inventory in `tmp` with its secrets from `tmp/secrets.yml` (no host's own secrets_file: the lab's
    points into ~/.cache, where the cluster's certificates would be written)."""
    doc = copy.deepcopy(doc)
    for host in doc["hosts"].values():
        host.pop("secrets_file", None)
    path = tmp / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp / "secrets.yml").write_text(yaml.safe_dump(SECRETS))
    return path


def _every_channel(doc: dict[str, Any]) -> dict[str, Any]:
    """The tests' inventory plus two hosts with every receiver type on (Teams: both of its integrations)."""
    doc = copy.deepcopy(doc)
    for alias, teams in (("all", "workflows"), ("all-connector", "connector")):
        doc["hosts"][alias] = {
            "address": f"{alias}.invalid", "alertmanager": {"version": "0.28.1"},
            "receivers": {"slack": {"channel": "#rosey"}, "discord": {}, "webhook": {}, "pagerduty": {},
                          "teams": {"kind": teams}, "heartbeat": {"repeat_interval": "1m"}}}
    return doc


def _inventories(tmp: Path) -> dict[str, Path]:
    shipped = yaml.safe_load((PROJECT_ROOT / "hosts.yml").read_text())
    fixture = yaml.safe_load(helpers.FIXTURE_INVENTORY.read_text())
    out = {"shipped": _copy(tmp, shipped, "shipped.yml"), "tests": _copy(tmp, fixture, "tests.yml"),
           "every-channel": _copy(tmp, _every_channel(fixture), "every-channel.yml")}
    lab = load_inventory(out["shipped"])
    for name, heartbeat in (("lab-cluster", None), ("lab-cluster-heartbeat", "1m")):
        out[name] = _copy(tmp, cluster_document(lab, ["lab", "lab2"], heartbeat=heartbeat), f"{name}.yml")
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """Every host of every inventory rendered: its alertmanager.yml files, and the rendered rules file."""
    tmp = tmp_path_factory.mktemp("amlint")
    configs, rules = [], tmp / "alert_rules.yml"
    for label, path in _inventories(tmp).items():
        inventory = load_inventory(path)
        for host in inventory.hosts.values():
            files = render.render_host(inventory, host, load_secrets_issuing(inventory, host)).files
            dest = tmp / f"{label}--{host.name}"  # as deployed: the templates beside alertmanager.yml
            dest.mkdir()
            for name, text in files.items():
                if name == "alertmanager.yml" or name.endswith(".tmpl"):
                    (dest / name).write_text(text)
            configs.append(dest / "alertmanager.yml")
            rules.write_text(files["alert_rules.yml"])  # the same rules for every host
    return configs, rules


def test_every_inventory_is_rendered(rendered: tuple[list[Path], Path]) -> None:
    names = {p.parent.name for p in rendered[0]}
    assert {"shipped--test", "shipped--prod", "shipped--lab", "tests--test", "lab-cluster--lab2",
            "lab-cluster-heartbeat--lab", "every-channel--all", "every-channel--all-connector"} <= names
    every = yaml.safe_load(next(p for p in rendered[0] if p.parent.name == "every-channel--all").read_text())
    keys = {k for r in every["receivers"] for k in r if k.endswith("_configs")}
    assert keys == {"email_configs", "slack_configs", "discord_configs", "webhook_configs",
                    "pagerduty_configs", "msteamsv2_configs"}


def test_amlint_finds_no_warning(rendered: tuple[list[Path], Path]) -> None:
    configs, rules = rendered
    proc = subprocess.run([AMLINT, "check", "--strict", "--format", "json", "--rules", str(rules),
                           *map(str, configs)], capture_output=True, text=True, timeout=120)
    findings = json.loads(proc.stdout or "null")
    assert isinstance(findings, list), proc.stderr
    loud = [f"{Path(f['file']).parent.name}: {f['level']} [{f['code']}] {f['where']}: {f['message']}"
            for f in findings if f["level"] != "info" or f["code"] not in ACCEPTED_INFO]
    assert loud == [], "\n".join(loud)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sinks = {f["message"].split("'")[1] for f in findings if f["code"] == "empty-receiver"}
    assert sinks == {"blackhole"}  # the Watchdog's deliberate sink is the only empty receiver


def test_amlint_warns_on_an_empty_receiver_named_like_a_channel(tmp_path: Path,
                                                                 rendered: tuple[list[Path], Path]) -> None:
    """The check above can fail: the sink the Watchdog had before (an empty `heartbeat`) is a warning."""
    doc = yaml.safe_load(next(p for p in rendered[0] if p.parent.name == "tests--test").read_text())
    doc["route"]["routes"][0]["receiver"] = "heartbeat"
    doc["receivers"] = [r for r in doc["receivers"] if r["name"] != "blackhole"] + [{"name": "heartbeat"}]
    doc.pop("templates", None)  # on its own, without the rendered templates beside it
    for r in doc["receivers"]:  # and without what they define: only the receivers' shape is at stake
        for key, configs in r.items():
            if key.endswith("_configs"):
                r[key] = [{k: v for k, v in c.items() if "{{" not in str(v)} for c in configs]
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([AMLINT, "check", "--strict", "--format", "json", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert [(f["level"], f["code"]) for f in json.loads(proc.stdout)] == [("warn", "empty-receiver")]
