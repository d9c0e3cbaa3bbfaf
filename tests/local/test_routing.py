"""Routing proven with the real `amtool config routes test` on rendered alertmanager.yml files."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from fabfile.config.receivers import RECEIVER_TYPES, Route
from fabfile.config.versions import at_least

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587,
            auth_username: am@example.com}
hosts:
"""
SECRETS = {"smtp_password": "x-smtp", "web_password": "x-web",
           **{t.secret: f"https://{t.name}.example/x" for t in RECEIVER_TYPES}}


def rendered_config(tmp_path: Path, host_items: str) -> Path:
    (tmp_path / "hosts.yml").write_text(BASE + f"  h: {{address: h.invalid, {host_items}}}\n")
    (tmp_path / "rules.yml").write_text("groups: []\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    host = inv.host("h")
    r = render.render_host(inv, host, {k: SECRETS[k] for k in required_secrets(host)},
                           rules_path=tmp_path / "rules.yml")
    out = tmp_path / "alertmanager.yml"
    out.write_text(r.files["alertmanager.yml"])
    return out


def amtool_version(amtool: str = "amtool") -> str:
    out = subprocess.run([amtool, "--version"], capture_output=True, text=True).stdout + ""
    # Debian's builds say e.g. "0.28.1+ds"
    return out.split()[2].split("+")[0] if out.startswith("amtool, version ") else "0.0.0"


@pytest.fixture(scope="module")
def newest_amtool(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The newest real amtool to hand: the local one, or the one in the lab's newer release archive.

    Debian 12's amtool (0.25.0) cannot parse webhook/Discord `*_file` options; the lab builds a 0.28.1
    release archive from Debian's newer package, whose amtool runs here too.
    """
    if at_least(amtool_version(), "0.28.0"):
        return "amtool"
    from fabfile.lab import releases

    release = releases.ensure("alertmanager", "trixie")
    if release is None:
        pytest.fail("no Alertmanager >= 0.28 release archive could be built from Debian's packages")
    dest = tmp_path_factory.mktemp("amtool")
    with tarfile.open(release.archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/amtool"))
        member.name = "amtool"
        tar.extract(member, dest, filter="data")
    return str(dest / "amtool")


def routes(config: Path, *labels: str, amtool: str = "amtool") -> list[str]:
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config}", *labels],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(",")


@pytest.mark.parametrize(("labels", "expected"), [
    (("alertname=BotDown", "severity=critical", "component=bot", "env=test", "cluster=rosey-bot"),
     ["email-critical"]),
    (("alertname=HighErrorRate", "severity=warning", "component=bot"), ["email-default"]),
    (("alertname=ChannelEmpty", "severity=info", "component=bot"), ["email-info"]),
    (("alertname=Unlabelled",), ["email-default"]),
    # never mailed, whatever its severity
    (("alertname=Watchdog", "severity=none", "component=monitoring"), ["blackhole"]),
    (("alertname=Watchdog", "severity=critical"), ["blackhole"]),
])
def test_routes_by_severity(tmp_path: Path, labels: tuple[str, ...], expected: list[str]) -> None:
    config = rendered_config(tmp_path, "env: test")
    assert routes(config, *labels) == expected


def test_check_config_passes(tmp_path: Path) -> None:
    config = rendered_config(tmp_path, "env: production, receivers: {slack: {channel: '#alerts'}}")
    proc = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


TABLE = [pytest.param(t.name, f"{{{t.variant_setting}: {v}}}" if v else "{}", i.since, i.config_key,
                      id=f"{t.name}-{v}".rstrip("-"))
         for t in RECEIVER_TYPES for v, i in t.integrations.items() if t.route == Route()]


@pytest.mark.parametrize(("receiver", "settings", "needs", "config_key"), TABLE)
def test_chat_receivers_join_the_critical_route(tmp_path: Path, receiver: str, settings: str, needs: str,
                                                config_key: str, newest_amtool: str) -> None:
    # Debian 12's amtool (0.25.0) cannot even parse webhook/Discord `*_file` options, which is exactly
    # why render refuses them for older hosts; a newer real amtool checks the rendered config here.
    assert at_least(amtool_version(newest_amtool), needs)
    version = needs if at_least(needs, "0.26.0") else "0.26.0"
    items = f"alertmanager: {{version: {version}}}, receivers: {{{receiver}: {settings}}}"
    config = rendered_config(tmp_path, items)
    check = subprocess.run([newest_amtool, "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert config_key in config.read_text()  # the integration the table names, read by the real amtool
    critical = routes(config, "alertname=BotDown", "severity=critical", amtool=newest_amtool)
    assert critical == ["email-critical", f"{receiver}-critical"]
    assert routes(config, "alertname=HighErrorRate", "severity=warning", amtool=newest_amtool) == [
        "email-default"]
    assert routes(config, "alertname=ChannelEmpty", "severity=info", amtool=newest_amtool) == ["email-info"]


def test_heartbeat_takes_only_the_watchdog(tmp_path: Path, newest_amtool: str) -> None:
    """The heartbeat entry of the table: its own first route, never mailed; critical alerts never reach it."""
    items = "alertmanager: {version: 0.26.0}, receivers: {heartbeat: {repeat_interval: 2m}}"
    config = rendered_config(tmp_path, items)
    check = subprocess.run([newest_amtool, "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(config.read_text())
    hb = next(r for r in doc["receivers"] if r["name"] == "heartbeat")
    assert hb["webhook_configs"][0]["send_resolved"] is False
    assert doc["route"]["routes"][0]["repeat_interval"] == "2m"
    assert routes(config, "alertname=Watchdog", "severity=none", amtool=newest_amtool) == ["heartbeat"]
    (tmp_path / "without").mkdir()
    without = rendered_config(tmp_path / "without", "alertmanager: {version: 0.26.0}")
    critical = routes(without, "alertname=BotDown", "severity=critical", amtool=newest_amtool)
    assert "heartbeat" not in critical
    assert routes(without, "alertname=Watchdog", "severity=none", amtool=newest_amtool) == ["blackhole"]
    assert routes(config, "alertname=BotDown", "severity=critical", amtool=newest_amtool) == critical


def test_amtool_is_real() -> None:
    assert shutil.which("amtool") and at_least(amtool_version(), "0.16.0")


def _addresses(config: Path) -> dict[str, list[str]]:
    doc = yaml.safe_load(config.read_text())
    return {r["name"]: [a.strip() for c in r.get("email_configs", []) for a in c["to"].split(",")]
            for r in doc["receivers"]}


@pytest.mark.parametrize("email", ["", "critical_to: [ops@example.com]",
                                   "critical_to: [pager@example.com]",
                                   "critical_to: [pager@example.com], critical_cc_default: false"])
@pytest.mark.parametrize("severity", ["critical", "warning", "info", "none", ""])
def test_one_mail_per_address(tmp_path: Path, email: str, severity: str) -> None:
    """Whatever the severity, the receivers amtool routes an alert to never share an address."""
    items = ("receivers: {email: {to: [ops@example.com], from: am@example.com, "
             f"smarthost: smtp.example.com:587, auth_username: am@example.com, {email}}}}}")
    config = rendered_config(tmp_path, items)
    labels = ["alertname=BotDown", "component=bot", "env=test"]
    labels += [f"severity={severity}"] if severity else []
    got = routes(config, *labels)
    addresses = [a for r in got for a in _addresses(config)[r]]
    assert addresses and len(addresses) == len(set(addresses)), (got, addresses)
    if severity == "critical":
        assert got == ["email-critical"]
