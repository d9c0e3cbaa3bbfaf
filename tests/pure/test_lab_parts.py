"""Lab pieces that need no VM: apt sources derivation, the stand-in bot's state and metrics (seconds)."""

from __future__ import annotations

import importlib
import json
import sys
import time

import pytest

from fabfile.lab import aptsrc, paths


def test_deb822_sources_give_the_mirror_and_skip_disabled_entries():
    text = (
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://other.invalid/debian\nSuites: trixie\nEnabled: no\n"
    )
    sources = aptsrc._parse_deb822(text)
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://mirror.invalid/debian", ("bookworm", "bookworm-updates"))
    ]


def test_one_line_sources_are_parsed():
    text = "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://m.invalid/debian bookworm main contrib\n"
    (source,) = aptsrc._parse_one_line(text)
    assert (source.uri, source.suites, source.components, source.signed_by) == (
        "http://m.invalid/debian", ("bookworm",), ("main", "contrib"), "/k.gpg",
    )  # fmt: skip


@pytest.fixture
def bot_lib(monkeypatch):
    monkeypatch.syspath_prepend(str(paths.GUEST_DIR / "rosey-bot"))
    for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
        monkeypatch.delitem(sys.modules, name)
    yield importlib.import_module("lib.state"), importlib.import_module("lib.server")
    for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
        monkeypatch.delitem(sys.modules, name)


def test_bot_counters_follow_the_steering_file(bot_lib, tmp_path):
    state_mod, server = bot_lib
    state_file = tmp_path / "state.json"
    bot = state_mod.BotState(str(state_file), "lab")
    first = bot.snapshot()
    assert server.health_status(first) == "healthy" and first["connected"] is True
    state_file.write_text(json.dumps({"connected": False, "users": 9, "error_rate": 100}))
    bot.snapshot()
    time.sleep(0.2)
    later = bot.snapshot()
    assert later["errors_total"] >= 15 and later["users"] == 9
    assert server.health_status(later) == "unhealthy"
    metrics = server.render_metrics(later)
    names = [line.split()[0] for line in metrics.splitlines() if not line.startswith("#")]
    assert names == [
        "bot_connected", "bot_uptime_seconds", "bot_users", "bot_requests_total", "bot_errors_total",
    ]  # fmt: skip
    assert "bot_connected 0" in metrics and "{" not in metrics
    state_file.unlink()
    reset = bot.snapshot()
    assert reset["connected"] is True and reset["errors_total"] >= later["errors_total"]
