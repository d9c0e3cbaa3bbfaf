"""The message a person reads, through the real Alertmanager releases (0.25, 0.28, 0.33) into the lab's
HTTP catcher on loopback: every channel the release supports, configured by the project's own render and
templates, a critical and a warning alert posted to Alertmanager's API, then resolved. The catcher must
accept every request (the services' documented formats) and the text each service would show must say
which alert, host and env, since when, the summary and the runbook line.

The test's own config differs from production only where it must be fast (group_wait/group_interval 1s)
and in sending warnings to the chat channels too (production sends them only by email), so both severities'
looks are read back.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from fabfile.config.receivers import RECEIVER_TYPES
from fabfile.lab import hooks
from tests.helpers import hook_catcher
from tests.local.release_bins import PASSWORD, USER, RenderedHost, free_port, lab_releases, unpack

VERSIONS = ("0.25.0", "0.28.1", "0.33.1")
# (release, Teams kind): 0.25 loads neither Teams block from a file; both kinds on the newer two
CASES = [("0.25.0", None), ("0.28.1", "workflows"), ("0.28.1", "connector"), ("0.33.1", "workflows"),
         ("0.33.1", "connector")]
RUNBOOK = "On the host: sudo journalctl -u rosey-bot -p warning -n 200 --no-pager"


@pytest.fixture(scope="module")
def alertmanagers() -> dict[str, Path]:
    return {v: unpack(a) for v, a in lab_releases()["alertmanager"].items() if v in VERSIONS}


@pytest.fixture
def catcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    with hook_catcher(tmp_path, monkeypatch) as port:
        yield port


def _host_yaml(base: Path, version: str, teams: str | None, catcher: int, am_port: int) -> str:
    """Every channel this release supports, pointed at the catcher (as a lab host's would be)."""
    settings, _ = hooks.lab_channels("h", catcher, address="127.0.0.1", teams_kind=teams or "workflows")
    chosen = {t.name: settings[t.name] for t in RECEIVER_TYPES
              if t.name != "teams" or teams} if version != "0.25.0" else {
        "slack": settings["slack"], "pagerduty": settings["pagerduty"]}  # 0.25: no url_file for the rest
    receivers = {"email": {"to": ["ops@lab.test"], "from": "am@lab.test", "smarthost": "127.0.0.1:9",
                           "require_tls": False}, **chosen}
    doc = {"hosts": {"h": {
        "address": "127.0.0.1", "base_dir": str(base), "base_dir_outside_allowlist": True, "env": "test",
        "alertmanager": {"version": version, "port": am_port, "group_wait": "1s", "group_interval": "1s"},
        "receivers": receivers}}}
    return yaml.safe_dump(doc)


def start_alertmanager(tmp: Path, version: str, release: Path, catcher: int,
                       teams: str | None = None) -> RenderedHost:
    base = tmp / "base"
    base.mkdir()
    ports = {"alertmanager": free_port()}
    (tmp / "hosts.yml").write_text(_host_yaml(base, version, teams, catcher, ports["alertmanager"]))
    inv = load_inventory(tmp / "hosts.yml")
    host = inv.host("h")
    _, secrets = hooks.lab_channels("h", catcher, address="127.0.0.1", teams_kind=teams or "workflows")
    secrets |= {"web_password": PASSWORD}
    rendered = render.render_host(inv, host, {k: secrets[k] for k in required_secrets(host)})
    config = yaml.safe_load(rendered.files["alertmanager.yml"])
    assert config["templates"] == ["notifications.tmpl"]
    for route in config["route"]["routes"]:  # the test's own config: warnings reach the chats too
        if route["matchers"] == ['severity="critical"'] and route["receiver"] != "email-critical":
            route["matchers"] = ['severity=~"critical|warning"']
    rendered.files["alertmanager.yml"] = yaml.safe_dump(config, allow_unicode=True)
    h = RenderedHost(host, rendered, base, ports)
    h.write()
    h.start("alertmanager", release)
    h.wait_ready("alertmanager")
    return h


def _alert(name: str, severity: str, starts: str, ends: str | None = None) -> dict:
    labels = {"alertname": name, "severity": severity, "component": "bot", "env": "test", "host": "h",
              "instance": "localhost:8001", "job": "rosey-bot", "cluster": "rosey-bot"}
    alert = {"labels": labels,
             "annotations": {"summary": f"{name} summary for a person", "runbook": RUNBOOK,
                             "description": "Bot is experiencing 2.00 errors per second."},
             "startsAt": starts}
    if ends:
        alert["endsAt"] = ends
    return alert


def post_alerts(h: RenderedHost, alerts: list[dict]) -> None:
    r = requests.post(h.url("alertmanager", "/api/v2/alerts"), json=alerts, auth=(USER, PASSWORD), timeout=5)
    assert r.ok, r.text


def wait_for(port: int, done, seconds: float = 30) -> list[hooks.Hook]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = hooks.read_all(port)
        if done(got):
            return got
        time.sleep(0.3)
    seen = [(g.channel, g.text[:80]) for g in hooks.read_all(port)]
    raise AssertionError(f"not all messages arrived: {seen}")


def failed(metrics: str, integration: str) -> float:
    """alertmanager_notifications_failed_total of one integration (summed over 0.26+'s `reason`)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("alertmanager_notifications_failed_total{")
               and f'integration="{integration}"' in line)


def _channels(version: str, teams: str | None) -> set[str]:
    if version == "0.25.0":
        return {"slack", "pagerduty"}
    return {"slack", "discord", "webhook", "pagerduty", f"teams-{teams}"}


def _resolved(hook: hooks.Hook) -> bool:
    return "RESOLVED" in hook.text or "[resolved]" in hook.text or hook.text.startswith("resolve ")


@pytest.mark.parametrize(("version", "teams"), CASES, ids=[f"{v}-teams-{t}" for v, t in CASES])
def test_every_channel_reads_as_a_person_needs_it(alertmanagers: dict[str, Path], tmp_path: Path,
                                                  catcher: int, version: str, teams: str | None) -> None:
    h = start_alertmanager(tmp_path, version, alertmanagers[version], catcher, teams)
    try:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        starts = now.isoformat().replace("+00:00", "Z")
        alerts = [_alert("CriticalErrorRate", "critical", starts),
                  _alert("HighErrorRate", "warning", starts)]
        if version != "0.25.0":
            alerts.append({"labels": {"alertname": "Watchdog", "severity": "none", "cluster": "rosey-bot",
                                      "env": "test"}, "startsAt": starts})
        post_alerts(h, alerts)
        channels = _channels(version, teams)
        want = {(c, a) for c in channels for a in ("CriticalErrorRate", "HighErrorRate")}
        firing = wait_for(catcher, lambda got: want <= {(g.channel, a) for g in got
                                                        for a in ("CriticalErrorRate", "HighErrorRate")
                                                        if a in g.text})
        ends = (now + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        post_alerts(h, [_alert("CriticalErrorRate", "critical", starts, ends),
                        _alert("HighErrorRate", "warning", starts, ends)])
        got = wait_for(catcher, lambda got: want <= {(g.channel, a) for g in got if _resolved(g)
                                                     for a in ("CriticalErrorRate", "HighErrorRate")
                                                     if a in g.text})
        metrics = h.get("alertmanager", "/metrics").text
    finally:
        h.stop()
    assert [(g.channel, g.problems) for g in got if not g.accepted] == []
    since = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    for g in firing:
        if g.channel == "heartbeat":
            assert "alertname=Watchdog" in g.text
            continue
        text = g.text
        assert g.channel in channels, g.channel
        name = "CriticalErrorRate" if "CriticalErrorRate" in text else "HighErrorRate"
        for needed in (name, f"{name} summary for a person", "test", "h"):
            assert needed in text, (g.channel, needed, text)
        if g.channel in ("webhook", "pagerduty"):
            assert RUNBOOK in text, (g.channel, text)
            continue
        look = "🚨 CRITICAL" if name == "CriticalErrorRate" else "⚠️ WARNING"
        for needed in (look, "Host: h · env: test", f"Since: {since}", f"Runbook: {RUNBOOK}"):
            assert needed in text, (g.channel, needed, text)
    pd = [g.json for g in got if g.channel == "pagerduty"]
    actions = {(m["event_action"], m["payload"]["severity"]) for m in pd}
    assert {("trigger", "critical"), ("trigger", "warning"), ("resolve", "critical"),
            ("resolve", "warning")} <= actions
    assert len({m["dedup_key"] for m in pd}) == 2  # one incident per alert group, resolved by its key
    if version != "0.25.0":
        assert any(g.channel == "heartbeat" and g.accepted for g in got)
    for integration in ("slack", "pagerduty"):  # Alertmanager's own view: delivered, nothing failed
        assert failed(metrics, integration) == 0
        assert f'alertmanager_notifications_total{{integration="{integration}"}}' in metrics
    if os.environ.get("ROSEY_SHOW_MESSAGES"):  # the README's examples come from here
        for g in got:
            print(f"\n--- {version} {g.channel} ({g.status})\n{g.text}")


def test_a_refusing_channel_moves_alertmanagers_failure_counter(alertmanagers: dict[str, Path],
                                                                tmp_path: Path, catcher: int) -> None:
    h = start_alertmanager(tmp_path, "0.25.0", alertmanagers["0.25.0"], catcher)
    try:
        hooks.set_failing(catcher, "slack", 400)  # as Slack answers a payload it cannot take
        starts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        post_alerts(h, [_alert("CriticalErrorRate", "critical", starts)])
        wait_for(catcher, lambda got: any(g.channel == "slack" for g in got))
        end = time.monotonic() + 20
        count = 0.0
        while time.monotonic() < end and not count:
            count = failed(h.get("alertmanager", "/metrics").text, "slack")
            time.sleep(0.3)
    finally:
        h.stop()
    assert count >= 1
    slack = [g for g in hooks.read_all(catcher) if g.channel == "slack"]
    assert slack and not slack[0].accepted and slack[0].status == 400
    # the other channels still deliver
    assert any(g.channel == "pagerduty" and g.accepted for g in hooks.read_all(catcher))
