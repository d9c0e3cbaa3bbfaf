"""The shared HTTP catcher for every chat/HTTP channel, next to the shared mail catcher (mailbox.py).

One on the control machine's 127.0.0.1:<lab_vm.hooks_port>, reached by every lab VM at 10.0.2.2 like the
mail catcher: the first `lab.up` starts it, the last `lab.down` stops it (by its pidfile). It keeps every
request as a file (fabfile/lab/hook_catcher.py); this module reads them back for tests, as a person would
read the message (`Hook.text`), and gives a lab host the URLs and keys that deliver there (`lab_channels`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabfile.lab import paths, procs
from fabfile.lab.hook_formats import readable
from fabfile.lab.mailbox import GUEST_ADDRESS

PROJECT_ROOT = paths.PACKAGE_DIR.parent.parent


@dataclass(frozen=True)
class Hook:
    """One request the catcher received, with its verdict."""

    name: str  # spool file name: sorts by arrival
    channel: str  # slack, discord, webhook, teams-workflows, teams-connector, pagerduty, heartbeat, unknown
    token: str  # the path's secret part (which host's URL was used)
    status: int  # what the catcher answered
    accepted: bool
    problems: tuple[str, ...]
    body: str

    @property
    def text(self) -> str:
        """What a person reads in that service ('' for a path no service has)."""
        return readable(self.channel, self.body.encode()) if self.channel != "unknown" else ""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def parse_record(name: str, text: str) -> Hook:
    r = json.loads(text)
    return Hook(name, r["channel"], r["token"], r["status"], r["accepted"], tuple(r["problems"]), r["body"])


# the catcher writes `.<name>` and renames it into place: a dot file is a record still being written
RECORDS = "[!.]*.json"


def read_spool(spool: Path) -> list[Hook]:
    """Every kept request, oldest first (a record cleared while this reads is skipped)."""
    out = []
    for p in sorted(spool.glob(RECORDS)):
        try:
            out.append(parse_record(p.name, p.read_text()))
        except FileNotFoundError:
            continue
    return out


def spool(port: int) -> Path:
    path = paths.cache_dir() / "hooks" / str(port)
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_all(port: int) -> list[Hook]:
    return read_spool(spool(port))


def clear(port: int) -> None:
    for path in spool(port).glob(RECORDS):
        path.unlink(missing_ok=True)


def daemon_argv() -> tuple[str, ...]:
    return (sys.executable, "-m", "fabfile.lab.hook_catcher")


def daemon_env(spool_dir: Path, port: int) -> dict[str, str]:
    return {"HOOK_CATCHER_DIR": str(spool_dir), "HOOK_CATCHER_PORT": str(port),
            "PYTHONPATH": str(PROJECT_ROOT)}


def daemon(port: int) -> procs.LocalDaemon:
    """The catcher as a pidfile-tracked process: `.ensure_running()`, `.stop()`, `.running_pid()`."""
    return procs.LocalDaemon(
        "shared HTTP catcher", paths.cache_dir() / "run", f"hooks-{port}", port, daemon_argv(),
        marker="fabfile.lab.hook_catcher", env=daemon_env(spool(port), port),
        hint=" (lab_vm.hooks_port in hosts.yml)")


def set_failing(port: int, channel: str, status: int | None, token: str = "") -> None:
    """Make `channel` answer `status` to every request (None: answer as the service again); with `token`,
    only to requests for that token (one lab host's URL)."""
    path = f"{channel}/{token}" if token else channel
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_control/fail/{path}",
                                 data=str(status or "").encode(), method="PUT" if status else "DELETE")
    with urllib.request.urlopen(req, timeout=5):
        pass


def routing_key(host: str) -> str:
    """A PagerDuty routing key shaped like a real one (32 characters), one per lab host."""
    return hashlib.sha256(f"rosey-lab {host}".encode()).hexdigest()[:32]


def lab_channels(host: str, port: int, *, address: str = GUEST_ADDRESS,
                 teams_kind: str = "workflows") -> tuple[dict[str, Any], dict[str, str]]:
    """(`receivers` settings, secrets) that send each channel of lab host `host` to the catcher.

    The path's token is the host name, so a test sees which host delivered. Discord and Teams need
    alertmanager.version 0.28.0 or newer on that host (receivers.py `since`).
    """
    base = f"http://{address}:{port}"
    teams = "teams-workflows" if teams_kind == "workflows" else "teams-connector"
    settings: dict[str, Any] = {"slack": {"channel": "#alerts"}, "discord": {}, "webhook": {},
                                "pagerduty": {"url": f"{base}/pagerduty/v2/enqueue"},
                                "teams": {"kind": teams_kind}, "heartbeat": {}}
    secrets = {"slack_webhook_url": f"{base}/slack/{host}", "discord_webhook_url": f"{base}/discord/{host}",
               "webhook_url": f"{base}/webhook/{host}", "pagerduty_routing_key": routing_key(host),
               "teams_webhook_url": f"{base}/{teams}/{host}", "heartbeat_url": f"{base}/heartbeat/{host}"}
    return settings, secrets
