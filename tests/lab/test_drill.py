"""`inv test-alert`, `silence`, `unsilence` against the real lab host (deployed once with sortie6).

Each test runs the CLI like a user and then looks at the host itself: `systemctl is-active rosey-bot`,
the mails in the guest's SMTP catcher, Alertmanager's alerts and silences.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest

from fabfile.alerting.api import iso, local_apis
from fabfile.lab import hooks
from tests.helpers import INV, REPO
from tests.rule_coverage import record_seen

from .deployed import Deployed, deployed_lab_fixture  # noqa: F401

# The lab host is the shared `lab_host` fixture (tests/lab_fixtures.py): ROSEY_LAB_HOSTS=a,b with
# ROSEY_INVENTORY moves this module to another VM together with every other lab test.


CRITICAL = "🚨 [CRITICAL] Rosey Bot: "
# how this module causes the rules it proves, in the words of the README's coverage table
RULE_CAUSES = {"BotDown": "`inv test-alert` on lab3: the bot stopped, every channel read"}


def apis(d: Deployed):
    return local_apis(d.lab.url(9090, ""), d.lab.url(9093, ""), d.auth, timeout=10)


def bot_active(d: Deployed) -> bool:
    return d.lab.run("systemctl is-active rosey-bot", check=False).stdout.strip() == "active"


def wait_quiet(d: Deployed, timeout: float = 300) -> None:
    """Bot running, target up, BotDown neither in Prometheus nor Alertmanager: where every drill starts."""
    a, end = apis(d), time.monotonic() + timeout
    d.lab.run("sudo systemctl start rosey-bot smtp-catcher")
    while time.monotonic() < end:
        try:
            ts = a.prometheus.targets("rosey-bot")
            if (ts and all(t["health"] == "up" for t in ts) and not a.prometheus.alerts("BotDown")
                    and not a.alertmanager.alerts({"alertname": "BotDown"})):
                return
        except Exception:
            pass
        time.sleep(3)
    raise AssertionError("lab host did not settle (BotDown still active)")


def mail_works_again(d: Deployed) -> None:
    """After a test stopped the mail catcher: one mail delivered again, so verify (of this and every later
    module on the shared host) sees the email channel recovered (a warning), not failing right now."""
    wait_quiet(d)
    p = d.inv("test-alert", "-H", d.host, "--synthetic")
    assert p.returncode == 0, p.stdout


def _notify_log(d: Deployed) -> str:
    """Alertmanager's own word on failed notifications, for a failure message."""
    r = d.lab.run("sudo journalctl -u alertmanager --no-pager -n 400 | grep -iE 'notify|retry|error' "
                  "| tail -20", check=False)
    return "\nalertmanager's journal:\n" + r.stdout


def all_mail(d: Deployed) -> bytes:
    return b"".join(m.raw for m in d.lab.mails())


@pytest.fixture
def quiet(deployed_lab: Deployed) -> Deployed:
    wait_quiet(deployed_lab)
    deployed_lab.lab.clear_mails()
    return deployed_lab


# the channels the lab host's `receivers` turn on, by the catcher's name for them
CHAT = {"slack": "slack", "discord": "discord", "webhook": "webhook", "pagerduty": "pagerduty",
        "teams": "teams-workflows"}


def channel_hooks(d: Deployed, before: set[str]) -> dict[str, list[hooks.Hook]]:
    """This host's requests at the shared HTTP catcher since `before`, by channel (the URL's token is the
    host's name; PagerDuty's path has none, its routing key says whose it is)."""
    key = hooks.routing_key(d.host)
    out: dict[str, list[hooks.Hook]] = {}
    for h in d.lab.shared_hooks():
        ours = h.json.get("routing_key") == key if h.channel == "pagerduty" else h.token == d.host
        if h.name not in before and ours:
            out.setdefault(h.channel, []).append(h)
    return out


def chat_channels(d: Deployed) -> list[str]:
    r = d.lab.settings.receivers
    return [CHAT[name] for name in CHAT if getattr(r, name) is not None]


@pytest.mark.proves("BotDown")
def test_full_drill_within_bound_with_mails_and_no_secret(quiet: Deployed) -> None:
    d = quiet
    before = {h.name for h in d.lab.shared_hooks()}
    p = d.inv("test-alert", "-H", d.lab.name)
    assert p.returncode == 0
    m = re.search(r"detection \(stop → notified\): ([\d.]+)s; expected bound: .* = ([\d.]+)s", p.stdout)
    assert m, "no detection line in the output"
    detection, bound = float(m.group(1)), float(m.group(2))
    assert detection <= bound + 30
    for event in ("stop", "firing", "notified", "started", "resolved", "resolved-notified"):
        assert re.search(rf"^\s+{re.escape(event)}\s+\+", p.stdout, re.M), event
    assert bot_active(d)
    # The restart trips BotRestarting: the drill silenced exactly that alert on this instance, and says so.
    m = re.search(r"^note: silence (\S+) \[alertname=\"BotRestarting\" job=\"rosey-bot\" "
                  r"instance=\"[^\"]+\"\] until .* \('created by the alert drill'\)", p.stdout, re.M)
    assert m, "no echo-silence note in the output"
    mails = [x for x in d.lab.mails() if x.subject == CRITICAL + "BotDown"]
    assert len(mails) == 2  # firing, then resolved: one mail each per address (no default-route copy)
    assert not [x for x in d.lab.mails() if "BotRestarting" in x.subject]
    assert "resolved" in mails[-1].body.lower()
    d.assert_no_secret(p.stdout)
    d.assert_no_secret(all_mail(d).decode("utf-8", "replace"))
    # every chat/HTTP channel of the host's route got BotDown firing then resolved, once each, in a shape its
    # service accepts, saying what a person needs: alert, host, env, summary, runbook
    wanted = chat_channels(d)
    assert wanted, f"{d.host} has no chat channel in hosts.yml: this test would prove nothing"
    end = time.monotonic() + 60  # the resolved messages go out with the mail's flush; allow a slow one
    while time.monotonic() < end:
        got = channel_hooks(d, before)
        if all(len([h for h in got.get(c, []) if "BotDown" in h.text]) >= 2 for c in wanted):
            break
        time.sleep(3)
    got = channel_hooks(d, before)
    for channel in wanted:
        bot_down = [h for h in got.get(channel, []) if "BotDown" in h.text]
        assert all(h.accepted for h in got.get(channel, [])), [h.problems for h in got.get(channel, [])]
        assert len(bot_down) == 2, f"{channel}: {len(bot_down)} BotDown messages, want firing + resolved"
        firing, resolved = (h.text for h in bot_down)
        env = f"env={d.lab.settings.env}" if channel == "webhook" else f"env: {d.lab.settings.env}"
        for part in (d.host, env, "Rosey bot is disconnected", "systemctl restart rosey-bot"):
            assert part in firing, f"{channel}: {part!r} not in the firing message:\n{firing}"
        if channel == "pagerduty":
            assert firing.startswith("trigger critical") and resolved.startswith("resolve")
            assert bot_down[0].json["dedup_key"] == bot_down[1].json["dedup_key"]
        elif channel == "webhook":
            assert "[firing]" in firing and "[resolved]" in resolved
        else:
            assert "CRITICAL" in firing and "RESOLVED" in resolved
        for h in bot_down:
            d.assert_no_secret(h.text)
    # for the run's summary (tests/rule_coverage.py): the drill times the stop → first notification
    for channel in ("email", *wanted):
        record_seen("BotDown", channel, "firing", detection if channel == "email" else None)
        record_seen("BotDown", channel, "resolved", None)


def test_default_route_subject(quiet: Deployed) -> None:
    """BotDown is critical and routes to email-critical only; the default route's subject is checked with a
    labelled warning-level test alert sent through Alertmanager's API."""
    d, a = quiet, apis(quiet)
    labels = {"alertname": "RoseyMonitoringTest", "severity": "warning", "env": d.lab.settings.env,
              "cluster": "rosey-bot", "drill": "true"}
    a.alertmanager.post_alerts([{"labels": labels, "annotations": {"summary": "DRILL default route"}}])
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and not any(
                x.subject == "[Rosey Bot] RoseyMonitoringTest" for x in d.lab.mails()):
            time.sleep(3)
        assert any(x.subject == "[Rosey Bot] RoseyMonitoringTest" for x in d.lab.mails())
    finally:  # endsAt by the guest's clock (Date headers), safely past: this machine's may be ahead
        a.alertmanager.post_alerts([{"labels": labels, "endsAt": iso(a.alertmanager.server_past())}])


def test_synthetic_passes_and_leaves_nothing_firing(quiet: Deployed) -> None:
    d = quiet
    p = d.inv("test-alert", "-H", d.lab.name, "--synthetic")
    assert p.returncode == 0 and "synthetic drill passed" in p.stdout
    assert not apis(d).alertmanager.alerts({"alertname": "RoseyMonitoringTest"})
    subjects = [x.subject for x in d.lab.mails()]
    assert subjects.count(CRITICAL + "RoseyMonitoringTest") >= 2
    d.assert_no_secret(p.stdout)


def test_silence_blocks_drill_and_unsilence_removes_it(quiet: Deployed) -> None:
    d = quiet
    am = apis(d).alertmanager
    before = {s["id"] for s in am.silences(None)}
    try:
        p = d.inv("silence", "-H", d.lab.name, "--duration", "10m", "--comment", "drill test",
                  "alertname=BotDown")
        assert p.returncode == 0
        m = re.search(r"silence (\S+) for 10m", p.stdout)
        assert m, "no silence id in the output"
        sid = m.group(1)
        p = d.inv("test-alert", "-H", d.lab.name)
        assert p.returncode != 0 and "silence would swallow BotDown" in p.stdout and sid in p.stdout
        assert "stopped rosey-bot" not in p.stdout and bot_active(d)
        p = d.inv("unsilence", "-H", d.lab.name, "--id", sid)
        assert p.returncode == 0 and f"expired {sid}" in p.stdout
        assert not [s for s in am.silences("active") if s["id"] == sid]
    finally:  # whatever failed above, no silence of ours outlives the test (it would block the next drills)
        for s in am.silences(None):
            if s["id"] not in before and s.get("status", {}).get("state") in ("active", "pending"):
                am.expire_silence(s["id"])


def test_interrupted_drill_restarts_the_bot(quiet: Deployed) -> None:
    d = quiet
    proc = subprocess.Popen([*INV, "test-alert", "-H", d.lab.name], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    watchdog = threading.Timer(300, proc.kill)  # a drill that hangs before stopping the bot must not hang us
    watchdog.start()
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            out.append(line)
            if line.startswith("stopped rosey-bot"):
                break
        else:
            proc.wait(timeout=30)
            pytest.fail(f"the drill never printed 'stopped rosey-bot' (exit {proc.returncode}); its output:\n"
                        + "".join(out))
        time.sleep(5)  # mid-wait
        assert not bot_active(d), "rosey-bot still active 5 s after the drill said it stopped it"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=240)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    text = "".join(out) + rest
    print(text)
    assert proc.returncode != 0 and "interrupted by SIGINT" in text
    assert "rosey-bot: active" in text and bot_active(d)
    d.assert_no_secret(text)


def test_after_a_drill_sortie6_passes_with_the_bot_warning_and_strict_verify_fails(quiet: Deployed) -> None:
    """The restart every drill ends with trips BotRestarting for 5 minutes: a bot alert, so sortie6 still
    passes (a WARN line), and only `verify --strict` fails on it."""
    d, a = quiet, apis(quiet)
    if not a.prometheus.alerts("BotRestarting"):  # this module's drills ran long enough ago: restart again
        d.lab.run("sudo systemctl restart rosey-bot", check=True)
    end = time.monotonic() + 120
    while not [x for x in a.prometheus.alerts("BotRestarting") if x.get("state") == "firing"]:
        assert time.monotonic() < end, "BotRestarting never fired after the bot restarted"
        time.sleep(3)
    p = d.inv("sortie6", "-H", d.host)
    assert p.returncode == 0, p.stdout + _notify_log(d)
    assert re.search(r"^\[\S+\]\s+WARN\s.*BotRestarting", p.stdout, re.M), p.stdout
    s = d.inv("verify", "-H", d.host, "--strict")
    assert s.returncode == 1, s.stdout
    # it runs before the tests that stop the mail catcher, so only the bot alert fails it
    want = r"verify: FAILED — 1 of \d+ checks failed: bot alert \(--strict: (bot alerts|warnings) fail too\)"
    assert re.search(want, s.stdout), s.stdout
    assert re.search(r"^\[\S+\]\s+WARN\s.*BotRestarting", s.stdout, re.M), s.stdout
    d.assert_no_secret(p.stdout + s.stdout)


def test_smtp_catcher_down_is_reported_and_bot_restarted(quiet: Deployed) -> None:
    d = quiet
    d.lab.run("sudo systemctl stop smtp-catcher")
    try:
        p = d.inv("test-alert", "-H", d.lab.name)
        assert p.returncode != 0
        assert "FAILING for integration 'email'" in p.stdout
        assert "connection refused" in p.stdout  # Alertmanager's own error, from its journal
        assert bot_active(d) and "rosey-bot: active" in p.stdout
        d.assert_no_secret(p.stdout)
    finally:
        d.lab.run("sudo systemctl start smtp-catcher")
    mail_works_again(d)


def test_synthetic_chosen_alert_goes_its_real_route_and_a_failing_channel_is_named(quiet: Deployed) -> None:
    """`--synthetic --alert NAME --severity SEV` on the deployed host: a rule's alert with the chosen severity
    goes the critical route (email and every chat channel here), is delivered and resolved; with the mail
    catcher down the report names the failing integration and the task exits 1. A bad name is refused before
    connecting."""
    d = quiet
    p = d.inv("test-alert", "-H", d.host, "--synthetic", "--alert", "HighErrorRate", "--severity", "critical")
    assert p.returncode == 0, p.stdout
    routed = re.search(r"^HighErrorRate routed to (.*?)(?: \(mail: .*)?; waiting", p.stdout, re.M)
    assert routed, p.stdout
    integrations = {"slack": "slack", "discord": "discord", "webhook": "webhook", "pagerduty": "pagerduty",
                    "teams": "msteamsv2"}  # Alertmanager's integration names, by the inventory's
    chat = [n for n in integrations if getattr(d.lab.settings.receivers, n) is not None]
    for receiver, integration in [("email", "email"), *((n, integrations[n]) for n in chat)]:
        assert f"{receiver}-critical ({integration})" in routed.group(1), routed.group(0)
    want = {"email", *(integrations[n] for n in chat)}
    for line in ("delivered by Alertmanager: ", "resolved notification delivered by Alertmanager: "):
        said = re.search(rf"^{line}(.*)$", p.stdout, re.M)
        assert said and set(said.group(1).split(", ")) == want, (line, want, p.stdout)
    assert [x.subject for x in d.lab.mails()].count(CRITICAL + "HighErrorRate") == 2  # firing, resolved
    assert not apis(d).alertmanager.alerts({"alertname": "HighErrorRate", "drill": "true"})
    bad = d.inv("test-alert", "-H", d.host, "--synthetic", "--alert", "HighErrorRte")
    assert bad.returncode == 2 and "--alert HighErrorRte: no alert rule of that name" in bad.stdout
    d.lab.run("sudo systemctl stop smtp-catcher")
    try:
        p = d.inv("test-alert", "-H", d.host, "--synthetic", "--alert", "CriticalErrorRate")
        assert p.returncode == 1, p.stdout
        assert "FAILED: notifications are FAILING for integration 'email'" in p.stdout
        d.assert_no_secret(p.stdout)
    finally:
        d.lab.run("sudo systemctl start smtp-catcher")
    mail_works_again(d)
