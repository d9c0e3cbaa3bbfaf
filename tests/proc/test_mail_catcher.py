"""The shared SMTP catcher as the lab runs it (pidfile, own spool, loopback): a mail sent with AUTH LOGIN as
Alertmanager sends it is kept with the sender's login name and never its password."""

from __future__ import annotations

import base64
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from fabfile.alerting.api import free_port
from fabfile.lab import mailbox
from fabfile.lab.live_host import Mail


def _send(port: int, login: str, password: str, subject: str) -> None:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "alertmanager@lab.test", "oncall@lab.test", subject
    m.set_content("lab test mail")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo()
        # AUTH LOGIN by hand, as Go's client (Alertmanager) does it
        for arg in ("LOGIN", base64.b64encode(login.encode()).decode()):
            code, _ = s.docmd("AUTH", arg) if arg == "LOGIN" else s.docmd(arg)
            assert code == 334
        assert s.docmd(base64.b64encode(password.encode()).decode())[0] == 235
        s.send_message(m)


def test_the_shared_catcher_keeps_who_sent_each_mail_and_no_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "run").mkdir(parents=True)
    port = free_port()
    mailbox.ensure_running(port)
    try:
        _send(port, "lab2", "not-Stored-7", "from lab2")
        _send(port, "lab", "not-Stored-7", "from lab")
        end = time.monotonic() + 10
        while len(mailbox.read_all(port)) < 2 and time.monotonic() < end:
            time.sleep(0.1)
        mails = [Mail(n, raw) for n, raw in mailbox.read_all(port)]
    finally:
        mailbox.stop(port)
    assert [(m.subject, m.login) for m in mails] == [("from lab2", "lab2"), ("from lab", "lab")]
    assert mails[0].arrived <= mails[1].arrived and abs(mails[1].arrived - time.time()) < 60
    spool = b"".join(p.read_bytes() for p in mailbox.spool(port).iterdir())
    assert b"not-Stored-7" not in spool and base64.b64encode(b"not-Stored-7") not in spool
    assert mailbox.running_pid(port) is None
