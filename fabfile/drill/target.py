"""Where the drill runs: the `Target` protocol, and `SshTarget`, the real server (the bot via systemd, errors
from the journal, the APIs through SSH tunnels). Tests swap in a local target; the drill logic stays put.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from fabfile.alerting.api import ApiError, Apis, open_apis
from fabfile.config.settings import HostSettings
from fabfile.deploy.steps.base import StepContext
from fabfile.drill.errors import why
from fabfile.ssh.session import HostSession, new_session

BOT_UNIT = "rosey-bot"


class Target(Protocol):
    """Where the drill runs: how to reach the APIs, control the bot, and read Alertmanager's errors."""

    def apis(self) -> Apis: ...
    def reconnect(self) -> None: ...
    def stop_bot(self) -> None: ...
    def start_bot(self) -> None: ...
    def bot_active(self) -> bool: ...
    def notify_errors(self, since: float) -> list[str]: ...
    def extra_prechecks(self) -> list[str]: ...
    def close(self) -> None: ...


_ERR_RE = re.compile(r'err="((?:[^"\\]|\\.)*)"')
_RECV_RE = re.compile(r"receiver=(\S+)")
_INTEG_RE = re.compile(r"integration=(\S+)")


def parse_notify_errors(log: str) -> list[str]:
    """Alertmanager log lines about failed notifications -> 'receiver/integration: error', newest last."""
    out = []
    for line in log.splitlines():
        if "Notify" not in line or ("failed" not in line and "canceled" not in line):
            continue
        err = _ERR_RE.search(line)
        recv, integ = _RECV_RE.search(line), _INTEG_RE.search(line)
        who = "/".join(m.group(1).strip('"') for m in (recv, integ) if m)
        text = err.group(1).replace('\\"', '"') if err else line.strip()
        item = f"{who}: {text}" if who else text
        if item not in out:
            out.append(item)
    return out[-3:]


class SshTarget:
    """The real thing: APIs through SSH tunnels, the bot via `sudo systemctl`, errors from the journal.

    A lost SSH connection is not fatal: `reconnect()` drops the connection and its tunnels and the next
    call opens fresh ones (the connection is lazy).
    """

    def __init__(self, open_host: Callable[[], HostSession], host: HostSettings, ctx: StepContext) -> None:
        self.open_host, self.host, self.ctx = open_host, host, ctx
        self._session: HostSession | None = None
        self._stack: contextlib.ExitStack | None = None
        self._apis: Apis | None = None

    @classmethod
    def of(cls, host: HostSettings, ctx: StepContext) -> SshTarget:
        """The host over SSH, each (re)connection a new session with the context's secrets and masker."""
        return cls(lambda: new_session(host, ctx.secrets, ctx.masker), host, ctx)

    @property
    def conn(self) -> HostSession:
        if self._session is None:
            self._session = self.open_host()
        return self._session

    def apis(self) -> Apis:
        if self._apis is None:
            from fabfile.ssh.transport import ensure_open

            stack = contextlib.ExitStack()
            try:
                ensure_open(self.conn)  # one handshake, whichever of the drill's threads asks first
                self._apis = stack.enter_context(
                    open_apis(self.conn.conn, self.host, self.ctx.secrets, self.ctx.masker))
            except Exception as e:
                with contextlib.suppress(Exception):
                    stack.close()
                msg = f"cannot open SSH tunnels to {self.host.name}: {why(e)}"
                raise ApiError(self.ctx.masker(msg)) from None
            self._stack = stack
        return self._apis

    def close(self) -> None:
        stack, conn = self._stack, self._session
        self._stack = self._apis = self._session = None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    reconnect = close  # the next call connects again

    def _run(self, script: str, what: str) -> Any:
        from fabfile.ssh.transport import run

        return run(self.conn, script, what=what, masker=self.ctx.masker, timeout=60)

    def stop_bot(self) -> None:
        self._run(f"systemctl stop {BOT_UNIT}", f"stop {BOT_UNIT}")

    def start_bot(self) -> None:
        self._run(f"systemctl start {BOT_UNIT}", f"start {BOT_UNIT}")

    def bot_active(self) -> bool:
        return self.unit_active(BOT_UNIT)

    # the monitoring itself (MonitoringDown); unit names come from the layout, never from user input
    def stop_units(self, units: tuple[str, ...]) -> None:
        self._run(f"systemctl stop {' '.join(units)}", f"stop {' '.join(units)}")

    def start_units(self, units: tuple[str, ...]) -> None:
        self._run(f"systemctl start {' '.join(units)}", f"start {' '.join(units)}")

    def unit_active(self, unit: str) -> bool:
        from fabfile.ssh.transport import run

        res = run(self.conn, f"systemctl is-active {unit}", sudo=False, check=False, timeout=30)
        return res.stdout.strip() == "active"

    def notify_errors(self, since: float) -> list[str]:
        from fabfile.ssh.transport import run

        ago = max(1, int(time.time() - since) + 5)
        res = run(self.conn, f"journalctl -u alertmanager --since '-{ago}s' --no-pager -o cat | tail -n 300",
                  check=False, timeout=30)
        return [self.ctx.masker(x) for x in parse_notify_errors(res.stdout)]

    def extra_prechecks(self) -> list[str]:
        """verify's checklist (one SSH command), minus what a drill does not depend on: the firewall, and
        other alerts firing (BotDown already firing is checked separately)."""
        from fabfile.config import render
        from fabfile.deploy.steps import verify

        try:
            rendered = render.render_host(self.ctx.inventory, self.host, self.ctx.secrets,
                                          hash_password=False)  # receivers only
            receivers = verify.expected_receivers(rendered.files["alertmanager.yml"])
            checks = verify.evaluate(self.host, verify.gather(self.conn, self.host, self.ctx), receivers)
        except Exception as e:
            return [self.ctx.masker(f"verify could not run: {why(e)}")]
        skip = {"firewall", verify.ALERTS_CHECK}
        return [self.ctx.masker(f"verify: {c.name}: {c.detail}") for c in checks
                if not c.passed and c.name not in skip]
