#!/usr/bin/python3
"""Lab SMTP catcher: accepts every mail on 127.0.0.1:2525 and keeps it as one .eml file per message.

AUTH PLAIN/LOGIN is accepted with any credentials over plain text (Alertmanager authenticates; Go's SMTP
client allows that only towards localhost, hence guest-local). Passwords are never stored or logged; the
login name is kept in an `X-Catcher-Login` header (which sender delivered).
Files are named `<arrival ns>-<seq>.eml` under /var/lib/smtp-catcher, so a plain sort gives arrival order.
"""

import asyncio
import itertools
import os
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

SPOOL = os.environ.get("SMTP_CATCHER_DIR", "/var/lib/smtp-catcher")
_seq = itertools.count()
warnings.filterwarnings("ignore", message="Session.login_data")  # aiosmtpd internals, noise


def accept_any(server, session, envelope, mechanism, auth_data) -> AuthResult:
    # only the login name is kept (it tells which sender delivered); the password is dropped unseen
    login = getattr(auth_data, "login", b"")
    session.lab_login = login.decode("utf-8", "replace") if isinstance(login, bytes) else str(login or "")
    return AuthResult(success=True, handled=True)


class Keep:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        name = f"{time.time_ns():020d}-{next(_seq):04d}.eml"
        headers = (
            f"X-Catcher-Mail-From: {envelope.mail_from}\r\n"
            f"X-Catcher-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Catcher-Login: {getattr(session, 'lab_login', '')}\r\n"
        )
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        tmp = os.path.join(SPOOL, "." + name)
        with open(tmp, "wb") as handle:
            handle.write(headers.encode() + data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(SPOOL, name))
        return "250 Message accepted for delivery"


class LabSMTP(SMTP):
    # aiosmtpd's LOGIN prompts ("User Name\0") are not the "Username:"/"Password:" that real servers send and
    # Go's client (Alertmanager) expects ("unexpected server challenge"): speak like the real ones.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class LabController(Controller):
    def factory(self) -> SMTP:
        return LabSMTP(self.handler, **self.SMTP_kwargs)


def main() -> None:
    controller = LabController(
        Keep(),
        hostname="127.0.0.1",
        port=int(os.environ.get("SMTP_CATCHER_PORT", "2525")),
        authenticator=accept_any,
        auth_require_tls=False,
    )
    controller.start()
    print(f"smtp-catcher on {controller.hostname}:{controller.port}, spool {SPOOL}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
