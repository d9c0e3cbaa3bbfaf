"""Test-facing handle on a running lab host: commands, the caught mail, the stand-in bot's state.

Used by the pytest fixture (`tests/lab_fixtures.py`) and by anyone scripting against the lab.
"""

from __future__ import annotations

import base64
import email
import email.policy
import shlex
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from fabfile.lab import hooks, mailbox
from fabfile.lab.guest_access import Result
from fabfile.lab.vm import LabVM

SPOOL = "/var/lib/smtp-catcher"


@dataclass(frozen=True)
class Mail:
    name: str  # `<arrival ns>-<seq>.eml`: sorts by arrival
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def recipients(self) -> list[str]:
        return [r.strip() for r in str(self.message.get("X-Catcher-Rcpt-To", "")).split(",") if r.strip()]

    @property
    def login(self) -> str:
        """The SMTP login the sender used ('' if none): which Alertmanager sent it, where each has its own."""
        return str(self.message.get("X-Catcher-Login", ""))

    @property
    def arrived(self) -> float:
        """When the catcher took it (epoch seconds, from the file name)."""
        return int(self.name.split("-", 1)[0]) / 1e9

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class LabHost:
    def __init__(self, vm: LabVM) -> None:
        self.vm = vm
        self.settings: Any = vm.settings
        self.name = vm.name

    def run(self, command: str, check: bool = True, timeout: float = 120, stdin: str | None = None) -> Result:
        return self.vm.run(command, check=check, timeout=timeout, stdin=stdin)

    def url(self, guest_port: int, path: str = "/") -> str:
        """The loopback URL of a forwarded guest port (e.g. 8001 -> http://127.0.0.1:18001/...)."""
        return f"http://127.0.0.1:{self.settings.lab.forwards[guest_port]}{path}"

    # ---- SMTP catcher ------------------------------------------------------------------------------------
    def mails(self) -> list[Mail]:
        """Every mail the guest's SMTP catcher holds, oldest first (one SSH round trip)."""
        script = (
            f"cd {SPOOL} && for f in $(ls -1 | grep '\\.eml$' | sort); do "
            'printf "%s " "$f"; base64 -w0 "$f"; echo; done'
        )
        out = self.run(script).stdout
        mails = []
        for line in out.splitlines():
            if line.strip():
                name, _, data = line.partition(" ")
                mails.append(Mail(name, base64.b64decode(data)))
        return mails

    def clear_mails(self) -> None:
        self.run(f"sudo find {SPOOL} -maxdepth 1 -name '*.eml' -delete")

    # ---- the shared catcher (on this machine; every lab VM delivers there with a `smarthost` below) -------
    @property
    def shared_smarthost(self) -> str:
        """`10.0.2.2:<mail_port>`: put it in `receivers.email.smarthost` to deliver to the shared catcher."""
        return mailbox.smarthost(self.settings.lab.mail_port)

    def shared_mails(self) -> list[Mail]:
        """Every mail the shared catcher holds (from any lab VM), oldest first; read from local files."""
        return [Mail(name, raw) for name, raw in mailbox.read_all(self.settings.lab.mail_port)]

    def clear_shared_mails(self) -> None:
        mailbox.clear(self.settings.lab.mail_port)

    # ---- the shared HTTP catcher (Slack, Discord, webhook, Teams, PagerDuty, heartbeat) ----------------
    def channels(self, teams_kind: str = "workflows") -> tuple[dict[str, Any], dict[str, str]]:
        """(`receivers` settings, secrets) that send every chat/HTTP channel of this host to the catcher."""
        return hooks.lab_channels(self.name, self.settings.lab.hooks_port, teams_kind=teams_kind)

    def shared_hooks(self) -> list[hooks.Hook]:
        """Every request the HTTP catcher holds (from any lab VM), oldest first; `Hook.text` reads it."""
        return hooks.read_all(self.settings.lab.hooks_port)

    def clear_shared_hooks(self) -> None:
        hooks.clear(self.settings.lab.hooks_port)

    # ---- the private network ---------------------------------------------------------------------------
    @property
    def private_address(self) -> str | None:
        return self.settings.lab.private_address

    def send_test_mail(
        self, subject: str, to: str = "oncall@lab.test", smarthost: str = "localhost:2525", login: str = "lab"
    ) -> None:
        """Send one mail from the guest to a catcher (default: its own), logging in like Alertmanager."""
        code = (
            "import smtplib,sys\n"
            "from email.message import EmailMessage\n"
            "m=EmailMessage(); m['From']='lab@lab.test'; m['To']=sys.argv[2]; m['Subject']=sys.argv[1]\n"
            "m.set_content('lab test mail')\n"
            "h,p=sys.argv[3].rsplit(':',1); s=smtplib.SMTP(h,int(p),timeout=10)\n"
            "s.login(sys.argv[4],'not-stored')\n"
            "s.send_message(m); s.quit()\n"
        )
        args = " ".join(shlex.quote(a) for a in (subject, to, smarthost, login))
        self.run(f"python3 -c {shlex.quote(code)} {args}")

    # ---- stand-in bot ------------------------------------------------------------------------------------
    def set_bot_state(self, **values: bool | int | float | str) -> dict:
        """Steer the running bot: connected=False, users=3, error_rate=0.5 (errors/s), request_rate=2.0."""
        args = " ".join(shlex.quote(f"{k}={_fmt(v)}") for k, v in values.items())
        return _json(self.run(f"rosey-bot-state {args}").stdout)

    def reset_bot_state(self) -> None:
        self.run("rosey-bot-state --reset")


def _fmt(value: bool | int | float | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _json(text: str) -> dict:
    import json

    return json.loads(text)
