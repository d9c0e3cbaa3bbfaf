"""`inv status`'s reading (fabfile/status/collect.py) against real Prometheus + Alertmanager servers."""

from __future__ import annotations

import time

import pytest

from fabfile.alerting import silences
from fabfile.status.collect import collect

from .localstack import start_stack
from .test_drill import needs_binaries


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    s = start_stack(tmp_path_factory.mktemp("status"))
    try:
        s.wait_quiet()
        yield s
    finally:
        s.stop()


@needs_binaries
def test_status_reads_the_bot_silences_and_alerts(stack) -> None:
    apis = stack.apis()
    time.sleep(3)  # a few scrapes for the history
    st = collect(apis, "local", "test", {"email": ["email"], "webhook": ["webhook", "heartbeat"]})
    assert st.ok, st.error  # the real Prometheus takes the deliveries queries (facts/deliveries.py)
    assert [(c.name, c.ok, c.detail) for c in st.channels] == [
        ("email", True, "nothing delivered in 24 h; no failure in 24 h"),
        ("webhook (webhook, heartbeat)", True, "nothing delivered in 24 h; no failure in 24 h")]
    assert st.values["connected"] == 1 and st.values["users"] == 5
    assert st.values["uptime_seconds"] and st.values["uptime_seconds"] > 0
    assert 5.0 in st.history["users"] and len(st.history["users"]) == 61
    assert st.alerts == [] and st.silences == []
    nothing = [silences.parse_matcher("alertname=Nothing")]
    sid = silences.create(apis.alertmanager, nothing, 600, "status test")
    stack.bot.stop()
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not [a for a in collect(apis, "local", "test").alerts
                                              if a.name == "BotDown"]:
            time.sleep(1)
        st = collect(apis, "local", "test")
        assert [a.name for a in st.alerts] == ["BotDown"] and st.alerts[0].severity == "critical"
        assert st.alerts[0].summary == "Rosey bot is disconnected" and st.alerts[0].age_seconds >= 0
        assert st.values["connected"] is None  # nothing scraped: no sample, not "1"
        assert [(s.id, s.comment) for s in st.silences] == [(sid, "status test")]
        assert 550 < st.silences[0].ends_in_seconds <= 600
    finally:
        apis.alertmanager.expire_silence(sid)
        stack.bot.start()
