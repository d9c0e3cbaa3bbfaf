"""The drill's delivery check (`NotificationWatch.sent`) against a scripted Alertmanager: what it counts as
ours. Alertmanager's counters are per integration, so another group's mail can land in the same second as
ours would; the check must not take it for ours before our group can have been flushed."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from fabfile.alerting.api import NotifyCounts
from fabfile.drill.errors import DrillFailed
from fabfile.drill.notifications import NotificationWatch

CONFIG = {"receivers": [{"name": "mail", "email_configs": [{"to": "ops@x", "send_resolved": True}]}]}


class FakeAlertmanager:
    def __init__(self) -> None:
        self.sent = 0
        self.groups: list[dict] = []

    def notify_counts(self) -> dict[str, NotifyCounts]:
        return {"email": NotifyCounts(self.sent, 0, self.sent, 0)}

    def json(self, method: str, path: str, **kw) -> list[dict]:
        return self.groups

    def config(self) -> dict:
        return CONFIG


def _group(name: str) -> dict:
    return {"receiver": {"name": "mail"}, "labels": {"alertname": name},
            "alerts": [{"labels": {"alertname": name}}]}


def _watch() -> tuple[NotificationWatch, FakeAlertmanager, SimpleNamespace]:
    am = FakeAlertmanager()
    apis = SimpleNamespace(alertmanager=am)
    target = SimpleNamespace(apis=lambda: apis, notify_errors=lambda since: [])
    return NotificationWatch(target, str, fail_grace=10.0), am, apis


def test_a_mail_of_another_group_before_ours_can_be_flushed_is_not_ours() -> None:
    watch, am, apis = _watch()
    am.groups = [_group("PrometheusAlertmanagerUnreachable")]  # firing at the baseline
    base = watch.baseline(apis)
    am.groups = [_group("BotDown")]  # ours arrives; the other one expires in the same second...
    am.sent += 1  # ...and its resolve is mailed
    check = watch.sent({"email": 1}, base, "BotDown", not_before=time.monotonic() + 0.3)
    assert check(apis) is None  # one more email, but not ours: our group is still in its group_wait
    time.sleep(0.35)
    assert check(apis) is None  # and it stays someone else's once the group_wait is over
    am.sent += 1  # ours
    assert check(apis) is not None


def test_without_a_lower_bound_any_new_mail_on_the_integration_counts() -> None:
    watch, am, apis = _watch()
    base = watch.baseline(apis)
    am.groups = [_group("BotDown")]
    check = watch.sent({"email": 1}, base, "BotDown")
    assert check(apis) is None
    am.sent += 1
    assert check(apis) is not None


def test_a_new_unrelated_group_raises_the_count_waited_for() -> None:
    watch, am, apis = _watch()
    base = watch.baseline(apis)
    am.groups = [_group("BotDown"), _group("HighErrorRate")]
    check = watch.sent({"email": 1}, base, "BotDown")
    am.sent += 1  # one mail: HighErrorRate's or ours, nobody can tell
    assert check(apis) is None
    am.sent += 1
    assert check(apis) is not None


def test_a_group_mailed_while_ours_waits_is_not_awaited_again() -> None:
    """Another group came while the drill waited for its alert (the rule's `for`) and is mailed during our
    group_wait: that mail is neither ours nor one to wait for after it."""
    watch, am, apis = _watch()
    base = watch.baseline(apis)
    am.groups = [_group("BotDown"), _group("BotErrorsHigh")]
    check = watch.sent({"email": 1}, base, "BotDown", not_before=time.monotonic() + 0.3)
    assert check(apis) is None
    am.sent += 1  # BotErrorsHigh's mail, inside our group_wait
    assert check(apis) is None
    time.sleep(0.35)
    assert check(apis) is None
    am.sent += 1  # ours
    assert check(apis) is not None


def test_a_group_that_comes_after_ours_is_still_awaited() -> None:
    watch, am, apis = _watch()
    base = watch.baseline(apis)
    am.groups = [_group("BotDown")]
    check = watch.sent({"email": 1}, base, "BotDown", not_before=time.monotonic() + 0.3)
    assert check(apis) is None
    am.groups = [_group("BotDown"), _group("HighErrorRate")]  # arrives after ours: flushed after ours
    time.sleep(0.35)
    am.sent += 1  # one mail: HighErrorRate's or ours, nobody can tell
    assert check(apis) is None
    am.sent += 1
    assert check(apis) is not None


def test_a_given_up_notification_names_the_error_line_that_reaches_the_journal_late(monkeypatch) -> None:
    """The counter says "given up" before Alertmanager's log line is in the journal: the log is read again
    (a few times) until the line is there, so the drill shows Alertmanager's own error."""
    import pytest

    from fabfile.drill import notifications
    from fabfile.drill.errors import DrillFailed

    monkeypatch.setattr(notifications, "LOG_READ_PAUSE", 0.0)
    watch, am, apis = _watch()
    reads = iter([[], [], ["mail/email[0]: dial tcp 127.0.0.1:2525: connect: connection refused"]])
    watch.t = SimpleNamespace(apis=lambda: apis, notify_errors=lambda since: next(reads))
    base = watch.baseline(apis)
    am.groups = [_group("BotDown")]
    am.notify_counts = lambda: {"email": NotifyCounts(1, 1, 3, 3)}  # one attempt, given up after 3 tries
    check = watch.sent({"email": 1}, base, "BotDown")
    with pytest.raises(DrillFailed, match="connection refused"):
        check(apis)
    # a log that never has the line: said so, after the last read
    reads = iter([[]] * notifications.LOG_READS)
    with pytest.raises(DrillFailed, match="no error line found"):
        watch.sent({"email": 1}, base, "BotDown")(apis)


class TwoChannels(FakeAlertmanager):
    """Email and a webhook: the webhook's requests fail, the email's succeed once `mailed`."""

    def __init__(self) -> None:
        super().__init__()
        self.hook_failed = 0

    def notify_counts(self) -> dict[str, NotifyCounts]:
        return {"email": NotifyCounts(self.sent, 0, self.sent, 0),
                "webhook": NotifyCounts(self.hook_failed, 0, self.hook_failed, self.hook_failed)}


def test_a_failing_integration_is_reported_once_the_others_are_settled_naming_both() -> None:
    """The report says which channel failed AND which got it: a failing webhook does not end the wait before
    the mail is known to be delivered (or failing too)."""
    am = TwoChannels()
    apis = SimpleNamespace(alertmanager=am)
    target = SimpleNamespace(apis=lambda: apis,
                             notify_errors=lambda since: ["hook/webhook[0]: unexpected status code 500"])
    watch = NotificationWatch(target, str, fail_grace=0.0)
    base = watch.baseline(apis)
    am.groups = [_group("BotDown")]
    check = watch.sent({"email": 1, "webhook": 1}, base, "BotDown")
    am.hook_failed = 2
    assert check(apis) is None  # the webhook is failing, but the email is not known yet
    am.sent = 1
    with pytest.raises(DrillFailed) as e:
        check(apis)
    assert str(e.value) == ("notifications are FAILING for integration 'webhook' (2 failed request(s), 0 "
                            "notification(s) given up): hook/webhook[0]: unexpected status code 500 "
                            "(delivered: email)")
