"""inv status: sparklines, the history grid, alert ages, JSON and plain output (NO_COLOR / piped)."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from fabfile.status.collect import Alert, Channel, HostStatus, firing_alerts, history_points
from fabfile.status.view import ASCII, as_json, show, sparkline


def test_sparkline_scales_and_shows_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], width=8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, None, 5], width=3) == "▁ ▁"
    assert sparkline([0, 7], chars=ASCII, width=2) == "_@"
    assert len(sparkline([float(i) for i in range(60)], width=30)) == 30


def test_history_points_on_a_grid_with_gaps() -> None:
    result = [{"values": [[100, "1"], [160, "2"], [280, "4"]]}]
    assert history_points(result, 100, 280, 60) == [1.0, 2.0, None, 4.0]
    assert history_points([], 100, 220, 60) == [None, None, None]


def test_firing_alerts_oldest_first_with_age() -> None:
    raw = [{"state": "firing", "activeAt": "2024-01-01T00:00:00Z",
            "labels": {"alertname": "BotRestarting", "severity": "warning"}, "annotations": {"summary": "s"}},
           {"state": "pending", "activeAt": "2024-01-01T00:00:00Z", "labels": {"alertname": "X"}}]
    got = firing_alerts(raw, 1704067200 + 90)
    assert got == [Alert("BotRestarting", "warning", 90.0, "s")]


def _status() -> HostStatus:
    return HostStatus("lab", "test", values={"connected": 1, "uptime_seconds": 7200, "users": 5,
                                             "users_p95_1h": 6, "requests_per_s": 0.2, "errors_per_s": 0,
                                             "last_notification_age_seconds": 300},
                      history={"users": [5, 5, 4, 6]},
                      alerts=[Alert("BotRestarting", "warning", 95, "restart")])


def test_plain_output_when_piped_has_no_escape_codes() -> None:
    buf = io.StringIO()
    show(Console(file=buf, force_terminal=False, width=120), [_status()])
    text = buf.getvalue()
    assert "\x1b[" not in text
    assert "connected" in text and "BotRestarting (warning) firing 95s" in text and "5m ago" in text


def test_no_color_on_a_terminal() -> None:
    buf = io.StringIO()
    show(Console(file=buf, force_terminal=True, no_color=True, width=120), [_status()])
    assert not re.search(r"\x1b\[(?:[0-9;]*;)?3[0-8][;m]", buf.getvalue())  # no colour (bold may stay)
    buf = io.StringIO()
    show(Console(file=buf, force_terminal=True, width=120), [_status()])
    assert re.search(r"\x1b\[(?:[0-9;]*;)?3[0-8][;m]", buf.getvalue())  # the same with colour


def test_json_is_the_same_data() -> None:
    doc = json.loads(as_json([_status()]))
    assert doc[0]["host"] == "lab" and doc[0]["values"]["users"] == 5
    assert doc[0]["alerts"][0]["name"] == "BotRestarting"


def test_each_configured_channel_has_its_line_as_verify_judges_it() -> None:
    st = _status()
    st.channels = [Channel("email", True, "last delivered 5m ago; no failure in 24 h", False),
                   Channel("webhook (webhook, heartbeat)", False, "FAILING: 3 failed request(s) in 24 h",
                           False)]
    buf = io.StringIO()
    show(Console(file=buf, force_terminal=False, width=160), [st])
    lines = [ln.strip() for ln in buf.getvalue().splitlines()]
    assert any(re.match(r"channel email\s+last delivered 5m ago; no failure in 24 h", ln) for ln in lines)
    assert any(re.match(r"channel webhook \(webhook, heartbeat\)\s+FAILING: 3 failed", ln) for ln in lines)
    assert json.loads(as_json([st]))[0]["channels"][1] == {
        "name": "webhook (webhook, heartbeat)", "ok": False, "detail": "FAILING: 3 failed request(s) in 24 h",
        "warning": False}
