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
from tests.helpers import INV, REPO

from .deployed import Deployed, deployed_lab_fixture  # noqa: F401

# The lab host is the shared `lab_host` fixture (tests/lab_fixtures.py): ROSEY_LAB_HOSTS=a,b with
# ROSEY_INVENTORY moves this module to another VM together with every other lab test.


CRITICAL = "🚨 [CRITICAL] Rosey Bot: "


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


def all_mail(d: Deployed) -> bytes:
    return b"".join(m.raw for m in d.lab.mails())


@pytest.fixture
def quiet(deployed_lab: Deployed) -> Deployed:
    wait_quiet(deployed_lab)
    deployed_lab.lab.clear_mails()
    return deployed_lab


def test_full_drill_within_bound_with_mails_and_no_secret(quiet: Deployed) -> None:
    d = quiet
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
    wait_quiet(d)


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
    assert p.returncode == 0, p.stdout
    assert re.search(r"^\[\S+\]\s+WARN\s.*BotRestarting", p.stdout, re.M), p.stdout
    s = d.inv("verify", "-H", d.host, "--strict")
    assert s.returncode == 1, s.stdout
    want = r"verify: FAILED — \d+ of \d+ checks failed: bot alert \(--strict: bot alerts fail too\)"
    assert re.search(want, s.stdout), s.stdout
    assert re.search(r"^\[\S+\]\s+WARN\s.*BotRestarting", s.stdout, re.M), s.stdout
    d.assert_no_secret(p.stdout + s.stdout)
