"""What several scenarios share: the pre-check helpers, the grace on every wait, the peer's turn."""

from __future__ import annotations

from pathlib import Path

from fabfile.alerting.api import Apis, parse_time
from fabfile.alerting.silences import describe, swallowing
from fabfile.config.clusters import CLUSTER_PEER_TIMEOUT
from fabfile.config.rules_file import Rule, RuleMissing, RulesFileError, load_rule
from fabfile.drill.bounds import Bounds
from fabfile.drill.contract import DrillRun
from fabfile.drill.errors import DrillFailed

RESTART_ECHO = "BotRestarting"  # fires after every restart of the bot, the drill's own included
GRACE = 30.0  # seconds on top of the computed bound before a wait gives up (the "bound + 30 s")
PRECHECK_TRIES = 3  # a health pre-check asks up to this often when the answer is slow (not refused)


def silence_problems(d: DrillRun, apis: Apis, labels: dict[str, str]) -> list[str]:
    """An active silence would swallow the alert: a pre-check failure (a warning with --force)."""
    hits = swallowing(apis.alertmanager, labels)
    if not hits:
        return []
    names = "; ".join(describe(s, apis.alertmanager.clock.now()) for s in hits)
    if d.force:
        d.say(f"WARNING: --force: silence(s) would swallow {labels['alertname']}: {names}")
        return []
    return [f"an active silence would swallow {labels['alertname']}: {names} "
            f"(remove it with `inv unsilence -H {d.host.name} --id ID`, or run with --force)"]


def rule_for_drill(path: Path, name: str) -> Rule:
    """The rule from the rules file; a missing or unreadable one fails the drill (not a crash)."""
    try:
        return load_rule(name, path)
    except RuleMissing as e:
        raise DrillFailed(f"{e}; the drill needs it") from None
    except RulesFileError as e:
        raise DrillFailed(str(e)) from None


def ended(alert: dict, server_now: float) -> bool:
    """Judged by the server's clock (Alertmanager's), never this machine's."""
    try:
        return parse_time(alert.get("endsAt") or "") <= server_now
    except ValueError:
        return False


PEER_TIMEOUT = CLUSTER_PEER_TIMEOUT  # the second member's wait before it sends
PEER_TURN = f"plus up to one --cluster.peer-timeout ({PEER_TIMEOUT:g}s)"


def judged(detection: float, bounds: Bounds, peer_turn: bool) -> str:
    """How a detection compares with the bound (and, where another member may deliver, its turn)."""
    if detection <= bounds.detect:
        return "within"
    if peer_turn and detection <= bounds.detect + PEER_TIMEOUT:
        return "within the bound + peer-timeout"
    return "OVER"
