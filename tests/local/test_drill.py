"""The drill, API clients and silences — pure parts, then against REAL local Prometheus/Alertmanager binaries.

The stack (tests/local/localstack.py) runs Debian's prometheus and prometheus-alertmanager on loopback with
1 s intervals and `for: 5s`, a stand-in bot served from this process and an aiosmtpd mail catcher. Only
"stop/start the bot" is local instead of systemd over SSH.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from fabfile.alerting import silences
from fabfile.alerting.api import ApiError, iso, local_apis, notify_counts, parse_metrics, parse_time
from fabfile.config.durations import parse_duration
from fabfile.config.rules_file import load_rule
from fabfile.deploy.steps.base import StepContext
from fabfile.drill import echo
from fabfile.drill.bounds import ALERT, Bounds, bounds_for
from fabfile.drill.notifications import receiver_integrations
from fabfile.drill.runner import report, run_drill
from fabfile.drill.scenarios.synthetic import SYNTHETIC
from fabfile.drill.target import parse_notify_errors
from fabfile.masking import Masker
from fabfile.output import Progress
from tests.helpers import fixture_inventory

from .localstack import PASSWORD, USER, LocalTarget, start_stack

# ---------------------------------------------------------------- pure


def test_echo_silence_lasts_the_rule_window() -> None:
    assert echo.rule_window('resets(bot_uptime_seconds{job="rosey-bot"}[5m]) > 0') == 300
    assert echo.rule_window("max_over_time(x[1h:5m]) > rate(y[90s])") == 3600
    assert echo.rule_window("up == 0") == 0
    rule = load_rule("BotRestarting")  # the shipped rule
    assert echo.echo_seconds(rule, 15, 15) == 300 + 15 + 30 + echo.MARGIN


def test_matchers_parse_all_four_operators() -> None:
    m = [silences.parse_matcher(t) for t in ("alertname=BotDown", "env!=prod", "job=~rosey.*", 'sev!~"info"')]
    assert [(x.name, x.op, x.value) for x in m] == [
        ("alertname", "=", "BotDown"), ("env", "!=", "prod"), ("job", "=~", "rosey.*"), ("sev", "!~", "info")]
    assert m[2].api() == {"name": "job", "value": "rosey.*", "isRegex": True, "isEqual": True}
    labels = {"alertname": "BotDown", "env": "test", "job": "rosey-bot", "sev": "critical"}
    assert all(x.matches(labels) for x in m)
    assert not silences.parse_matcher("job=~rosey").matches(labels)  # anchored like Alertmanager


@pytest.mark.parametrize("bad", ["BotDown", "=x", "a==b", "a=~(", "1a=b", "a="])
def test_bad_matchers_say_how_to_write_them(bad: str) -> None:
    with pytest.raises(silences.SilenceError) as e:
        silences.parse_matcher(bad)
    assert "matcher" in str(e.value)


def test_durations() -> None:
    assert silences.parse_duration("2h") == 7200
    assert silences.parse_duration("1h30m") == 5400
    for bad in ("", "2x", "h", "0m"):
        with pytest.raises(silences.SilenceError):
            silences.parse_duration(bad)
    assert parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5


def test_metrics_parsing_sums_over_extra_labels() -> None:
    text = """# HELP x
alertmanager_notifications_total{integration="email"} 4
alertmanager_notifications_failed_total{integration="email",code="5xx"} 1
alertmanager_notifications_failed_total{integration="email",code="other"} 2
alertmanager_notification_requests_total{integration="email"} 9
alertmanager_notification_requests_failed_total{integration="email"} 3
alertmanager_notifications_total{integration="slack"} 0
"""
    c = notify_counts(parse_metrics(text))
    assert c["email"].total == 4 and c["email"].failed == 3 and c["email"].succeeded_requests == 6
    assert c["slack"].total == 0


def test_rule_and_bounds_come_from_the_deployed_rules_and_inventory() -> None:
    rule = load_rule(ALERT)
    assert rule.name == "BotDown" and rule.labels["severity"] == "critical"
    host = fixture_inventory().host("lab")
    b = bounds_for(host, rule)
    assert b.rule_for == rule.for_ and b.group_wait == parse_duration(host.alertmanager.group_wait)
    assert b.detect == b.scrape + b.rule_for + b.group_wait + b.evaluation


def test_notify_error_lines_are_parsed() -> None:
    log = ('ts=x level=warn component=dispatcher receiver=email-critical integration=email[0] '
           'msg="Notify attempt failed, will retry later" attempts=1 '
           'err="establish connection to server: dial tcp 127.0.0.1:2525: connect: connection refused"\n'
           'ts=y level=info msg="unrelated"\n')
    assert parse_notify_errors(log) == [
        "email-critical/email[0]: establish connection to server: dial tcp 127.0.0.1:2525: connect: "
        "connection refused"]


def test_progress_uses_carriage_return_only_on_a_tty() -> None:
    tty, plain = io.StringIO(), io.StringIO()
    for p in (Progress(tty, tty=True), Progress(plain, tty=False)):
        p.show("phase A", 1, 10)
        p.show("phase A", 2, 10)
        p.show("phase B", 3, 10)
        p.clear()
    assert "\r" in tty.getvalue() and "\n" not in tty.getvalue()
    assert "\r" not in plain.getvalue() and plain.getvalue().count("\n") == 2  # once per phase


def test_receiver_integrations_counts_configs() -> None:
    cfg = {"receivers": [{"name": "r", "email_configs": [{"send_resolved": True}, {"send_resolved": False}],
                          "webhook_configs": [{"send_resolved": True}]}]}
    assert receiver_integrations(cfg, "r") == {"email": 2, "webhook": 1}
    assert receiver_integrations(cfg, "r", resolved=True) == {"email": 1, "webhook": 1}
    assert receiver_integrations(cfg, "nope") == {}


# ---------------------------------------------------------------- real local binaries

needs_binaries = pytest.mark.servers  # Debian's daemons (tests/conftest.py: skip locally, fail in CI)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    s = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def quiet(stack):
    stack.wait_quiet()
    yield stack
    stack.smtp.start()
    stack.bot.start()


class Out:
    """Collects what the drill prints, and checks that no secret is in it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stream = io.StringIO()

    def ctx(self) -> StepContext:
        return StepContext(inventory=fixture_inventory(), secrets={"web_password": PASSWORD},
                           masker=Masker([PASSWORD]), log=self.lines.append)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + self.stream.getvalue()


def drill(stack, out: Out, target=None, **kw):
    r = run_drill(stack.host(), out.ctx(), target=target or LocalTarget(stack),
                  rules_path=stack.rules_path, stream=out.stream, tty=False, **kw)
    report(r, out.lines.append)
    assert PASSWORD not in out.text
    return r


@needs_binaries
def test_api_clients_against_real_servers(quiet) -> None:
    apis = quiet.apis()
    assert apis.prometheus.healthy() and apis.alertmanager.healthy()
    t = apis.prometheus.targets("rosey-bot")
    assert t[0]["health"] == "up" and t[0]["labels"]["env"] == "test"
    assert apis.prometheus.query('bot_connected{job="rosey-bot"}')[0]["value"][1] == "1"
    assert apis.prometheus.external_labels() == {"cluster": "rosey-bot"}
    assert apis.prometheus.alertmanagers()
    assert "email-critical" in [r["name"] for r in apis.alertmanager.config()["receivers"]]
    assert "email" in apis.alertmanager.notify_counts()
    wrong = local_apis(apis.prometheus.base_url, apis.alertmanager.base_url, (USER, "wrong-pw-123"))
    with pytest.raises(ApiError, match="401 unauthorized"):
        wrong.alertmanager.status()
    down = local_apis("http://127.0.0.1:1", "http://127.0.0.1:1", (USER, PASSWORD))
    with pytest.raises(ApiError) as e:
        down.prometheus.alerts()
    assert PASSWORD not in str(e.value) and "\n" not in str(e.value)


@needs_binaries
def test_silence_blocks_the_drill_unless_forced_and_unsilence_removes_it(quiet) -> None:
    am = quiet.apis().alertmanager
    me = "tester@drill-test"
    pm = silences.parse_matcher
    sid = silences.create(am, [pm("alertname=BotDown"), pm("env=~te.*")], 600, "maintenance", created_by=me)
    other = silences.create(am, [pm("alertname=Other")], 600, "not mine", created_by="x@y")
    try:
        assert [s["id"] for s in silences.swallowing(am, {"alertname": "BotDown", "env": "test"})] == [sid]
        out, target = Out(), LocalTarget(quiet)
        r = drill(quiet, out, target)
        assert not r.ok and "silence would swallow BotDown" in r.message and sid in r.message
        assert target.stops == 0 and quiet.bot.active  # refused before touching the bot
        gone = silences.remove(am, all_mine=True, created_by=me)
        assert [s["id"] for s in gone] == [sid]
        assert not silences.swallowing(am, {"alertname": "BotDown", "env": "test"})
        assert other in [s["id"] for s in am.silences("active")]  # somebody else's stays
        with pytest.raises(silences.SilenceError, match="no active silence"):
            silences.remove(am, [sid])
    finally:
        for s in am.silences("active"):
            am.expire_silence(s["id"])


@needs_binaries
def test_synthetic_drill_notifies_resolves_and_leaves_nothing_firing(quiet) -> None:
    before = len(quiet.smtp.mails)
    out = Out()
    r = drill(quiet, out, synthetic=True)
    assert r.ok, out.text
    names = [n for n, _ in r.timeline.events]
    assert names == ["posted", "in alertmanager", "notified", "resolved", "resolved-notified"]
    subjects = quiet.smtp.subjects()[before:]
    assert subjects == [f"[CRITICAL] Rosey Bot: {SYNTHETIC}"] * 2  # firing + resolved, critical route
    assert f"(mail: '{subjects[0]}')" in out.text  # the drill named the subject that actually arrived
    assert not quiet.apis().alertmanager.alerts({"alertname": SYNTHETIC})
    mails = b"".join(quiet.smtp.mails[before:])
    assert PASSWORD.encode() not in mails


@needs_binaries
def test_full_drill_detects_within_bound_and_restarts_the_bot(quiet) -> None:
    before = len(quiet.smtp.mails)
    out = Out()
    r = drill(quiet, out)
    assert r.ok, out.text
    names = [n for n, _ in r.timeline.events]
    for a, b in zip(["stop", "firing", "notified", "started", "resolved", "resolved-notified"],
                    ["firing", "notified", "started", "resolved", "resolved-notified", None], strict=True):
        assert a in names and (b is None or names.index(a) < names.index(b))
    assert r.detection is not None and r.detection <= r.bounds.detect + 30
    assert r.bot_active is True and quiet.bot.active
    assert "expected bound: scrape 1s + for 5s + group_wait 1s + evaluation 1s = 8s" in out.text
    subjects = quiet.smtp.subjects()[before:]
    assert subjects.count("[CRITICAL] Rosey Bot: BotDown") == 2  # firing and resolved
    print("\n".join(out.lines))
    # the drill's own echo: BotRestarting fires for real, but only into the drill's silence
    am, prom = quiet.apis().alertmanager, quiet.apis().prometheus
    mine = [x for x in am.silences("active") if x["comment"] == echo.COMMENT]
    assert len(mine) == 1 and mine[0]["id"] in out.text
    instance = prom.targets("rosey-bot")[0]["labels"]["instance"]
    assert {str(silences.Matcher.from_api(m)) for m in mine[0]["matchers"]} == {
        'alertname="BotRestarting"', 'job="rosey-bot"', f'instance="{instance}"'}
    end = time.monotonic() + 30
    while time.monotonic() < end and not am.alerts({"alertname": "BotRestarting"}):
        time.sleep(0.5)
    held = am.alerts({"alertname": "BotRestarting"})
    assert held and held[0]["status"]["silencedBy"] == [mine[0]["id"]]
    time.sleep(3)  # group_wait 1s: a notification would be out by now
    assert not [x for x in quiet.smtp.subjects()[before:] if "BotRestarting" in x]
    # anything else stays loud: the same silence does not match BotDown or another instance's restart
    assert not silences.silence_matches(mine[0], {**held[0]["labels"], "alertname": "BotDown"})
    assert not silences.silence_matches(mine[0], {**held[0]["labels"], "instance": "other:8001"})


@needs_binaries
def test_failing_smtp_is_reported_with_integration_and_error_and_bot_restarted(quiet) -> None:
    quiet.smtp.stop()
    out, target = Out(), LocalTarget(quiet)
    r = drill(quiet, out, target, fail_grace=3)
    assert not r.ok
    assert "FAILING for integration 'email'" in r.message and "connection refused" in r.message, r.message
    assert r.bot_active is True and quiet.bot.active and target.start_calls == 1


@needs_binaries
def test_interrupt_mid_wait_still_restarts_the_bot(quiet) -> None:
    out, target = Out(), LocalTarget(quiet)
    found = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN under nohup
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        r = drill(quiet, out, target)
    finally:
        timer.cancel()
    assert not r.ok and r.message.startswith("interrupted by SIGINT")
    assert target.stops == 1 and quiet.bot.active and r.bot_active is True
    assert {s: signal.getsignal(s) for s in found} == found  # handlers restored to what they were


@needs_binaries
def test_lost_connection_and_failing_start_are_retried_then_reported(quiet) -> None:
    class Flaky(LocalTarget):
        def __init__(self, stack, failures: int) -> None:
            super().__init__(stack)
            self.failures, self.reconnects = failures, 0

        def stop_bot(self) -> None:
            super().stop_bot()
            raise ConnectionResetError("SSH connection lost")

        def start_bot(self) -> None:
            if self.failures > 0:
                self.failures -= 1
                raise EOFError("still no SSH")
            super().start_bot()

        def reconnect(self) -> None:
            self.reconnects += 1

    out, t = Out(), Flaky(quiet, failures=2)
    r = drill(quiet, out, t)
    assert not r.ok and "SSH connection lost" in r.message
    assert r.bot_active is True and quiet.bot.active and t.reconnects >= 2

    quiet.wait_quiet()
    out, t = Out(), Flaky(quiet, failures=99)
    r = drill(quiet, out, t, restart_budget=3)
    assert not r.ok and r.bot_active is False
    assert "could NOT be confirmed running" in r.message and "!!!" in out.text
    quiet.bot.start()


@needs_binaries
def test_timeout_override_fails_cleanly_and_restarts(quiet) -> None:
    out = Out()
    t0 = time.monotonic()
    r = drill(quiet, out, timeout=2)
    assert not r.ok and "timed out after 2s waiting for: Prometheus: BotDown firing" in r.message
    assert time.monotonic() - t0 < 20 and quiet.bot.active


def test_parse_time_handles_nanoseconds() -> None:
    assert parse_time("2024-01-01T00:00:00.123456789Z") == pytest.approx(1704067200.123456789)


def test_bounds_text() -> None:
    assert Bounds(15, 15, 60, 10, 10).detect == 100


def test_silence_cli_refuses_bad_input_before_connecting() -> None:
    inv = fixture_inventory()
    with pytest.raises(silences.SilenceError):
        silences.cli_silence(inv, [inv.host("lab")], "alertname", "2h", "x")
    with pytest.raises(silences.SilenceError):
        silences.cli_silence(inv, [inv.host("lab")], "alertname=BotDown", "2 hours", "x")


# ---------------------------------------------------------------- clocks: the server's, never ours


def test_server_clock_bounds_narrow_from_date_headers() -> None:
    from fabfile.alerting.api import ServerClock

    c = ServerClock()
    assert not c.known and c.bounds() == (0.0, 0.0)
    # Server 30.4 s ahead; answers taking 0.1 s; `Date` truncated to the second.
    for local in (1000.0, 1000.3, 1000.75, 1001.2):
        server = local + 30.4
        c.observe(format_datetime(datetime.fromtimestamp(int(server), UTC), usegmt=True), local - 0.05,
                  local + 0.05)
    lo, hi = c.bounds()
    assert lo <= 30.4 < hi and hi - lo < 0.6
    c.observe("not a date", 0, 0)  # ignored
    c.observe(format_datetime(datetime.fromtimestamp(5000, UTC), usegmt=True), 5000, 5000.01)  # stepped
    assert c.bounds()[0] == pytest.approx(-0.01)  # the newest answer wins over contradicting history


@needs_binaries
def test_alertmanager_ignores_a_resolve_stamped_in_its_future(quiet) -> None:
    """Why the drill never stamps endsAt with this machine's "now": 0.5 s ahead of the server is enough for
    Alertmanager to keep the earlier posting's later end — HTTP 200, alert still active."""
    am = quiet.apis().alertmanager
    labels = {"alertname": "ClockSkewProof", "drill": "true"}
    start = am.server_now() - 1
    am.post_alerts([{"labels": labels, "startsAt": iso(start), "endsAt": iso(start + 3600)}])
    try:
        am.post_alerts([{"labels": labels, "startsAt": iso(start), "endsAt": iso(am.clock.now() + 0.5)}])
        time.sleep(1.5)
        held = am.alerts(labels)
        assert held and parse_time(held[0]["endsAt"]) == pytest.approx(start + 3600, abs=0.01)
    finally:
        am.post_alerts([{"labels": labels, "startsAt": iso(start), "endsAt": iso(am.server_past())}])
    assert not am.alerts(labels)


@needs_binaries
@pytest.mark.parametrize("skew", [30.0, -30.0])
def test_synthetic_drill_does_not_trust_this_machines_clock(quiet, monkeypatch, skew: float) -> None:
    """This machine's clock 30 s ahead of / behind the server's: times are taken from Alertmanager's."""
    monkeypatch.setattr("fabfile.alerting.api.local_now", lambda: time.time() + skew)
    out = Out()
    r = drill(quiet, out, synthetic=True)
    assert r.ok, out.text
    assert [n for n, _ in r.timeline.events][-1] == "resolved-notified"
    assert not quiet.apis().alertmanager.alerts({"alertname": SYNTHETIC})


@needs_binaries
def test_silence_is_active_at_once_with_this_machines_clock_ahead(quiet, monkeypatch) -> None:
    monkeypatch.setattr("fabfile.alerting.api.local_now", lambda: time.time() + 120)
    am = quiet.apis().alertmanager
    sid = silences.create(am, [silences.parse_matcher("alertname=Nothing")], 600, "skew", created_by="t@x")
    try:
        s = next(x for x in am.silences(None) if x["id"] == sid)
        assert s["status"]["state"] == "active"  # with our clock's "now" it would be pending for 2 minutes
        assert parse_time(s["endsAt"]) == pytest.approx(time.time() + 600, abs=5)
    finally:
        am.expire_silence(sid)


@needs_binaries
def test_rejected_resolve_is_reported_not_waited_out(quiet, monkeypatch) -> None:
    """A resolve Alertmanager refuses (here a real 400: endsAt before startsAt) ends the drill at once,
    saying so — and the clean-up still tries to resolve the test alert."""
    from fabfile.alerting.api import AlertmanagerApi

    real_post = AlertmanagerApi.post_alerts
    posts: list[str] = []

    def post(self: AlertmanagerApi, alerts: list[dict]) -> None:
        posts.append(alerts[0]["endsAt"])
        if len(posts) == 2:  # the resolve: break it the way a skewed clock would
            alerts = [{**alerts[0], "endsAt": iso(parse_time(alerts[0]["startsAt"]) - 60)}]
        real_post(self, alerts)

    monkeypatch.setattr(AlertmanagerApi, "post_alerts", post)
    out = Out()
    t0 = time.monotonic()
    r = drill(quiet, out, synthetic=True)
    assert not r.ok and "Alertmanager rejected the resolve of RoseyMonitoringTest" in r.message, out.text
    assert "HTTP 400" in r.message and "server clock" in r.message
    assert time.monotonic() - t0 < 20
    assert len(posts) == 3  # the clean-up resolve went out too ...
    assert not quiet.apis().alertmanager.alerts({"alertname": SYNTHETIC})  # ... and worked


@needs_binaries
def test_synthetic_drill_clears_an_earlier_runs_leftover_and_still_gets_its_mail(quiet) -> None:
    """A test alert left firing (a killed run) was already notified: re-posting the same alert would be
    deduplicated. The drill resolves the leftover and posts a new one (its own drill_run)."""
    from fabfile.alerting.silences import me

    am = quiet.apis().alertmanager
    start = am.server_now() - 1
    old = {"alertname": SYNTHETIC, "severity": "critical", "env": "test", "job": "rosey-drill",
           "instance": me(), "drill": "true", "drill_run": "killed00", "cluster": "rosey-bot"}
    am.post_alerts([{"labels": old, "startsAt": iso(start), "endsAt": iso(start + 3600)}])
    out = Out()
    r = drill(quiet, out, synthetic=True)
    assert r.ok, out.text
    assert "left active by an earlier run (drill_run=killed00)" in out.text
    assert not am.alerts({"alertname": SYNTHETIC})
