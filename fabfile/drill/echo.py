"""The drill's own echo: restarting the bot trips BotRestarting for as long as its rule's range window still
holds a sample from before the stop. The drill silences exactly that alert on exactly the restarted instance
until the window has passed, so nobody is paged for what the drill did; BotDown and every other alert (and
BotRestarting on any other instance) stay loud.

Why a silence, not an inhibit rule or a drill label on the bot: it needs no change to the deployed config, it
is visible in Alertmanager's UI and `inv status` (who, why, until when), and it expires by itself even if the
drill is killed. Alertmanager sends no resolved mail for an alert whose firing was never notified, so the
echo stays quiet at its end too.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from fabfile.alerting import silences
from fabfile.alerting.api import AlertmanagerApi
from fabfile.config.durations import parse_duration
from fabfile.config.rules_file import Rule

ECHO_ALERT = "BotRestarting"
COMMENT = "created by the alert drill"
MARGIN = 30.0  # seconds: Prometheus' resolve message and clock skew between scrape, evaluation and silence
_RANGE_RE = re.compile(r"\[(\w+)(?::\w*)?\]")


def rule_window(expr: str) -> float:
    """The longest range selector in a PromQL expression (`[5m]` -> 300); 0 when it has none."""
    out = 0.0
    for m in _RANGE_RE.finditer(expr):
        try:
            out = max(out, parse_duration(m.group(1)))
        except ValueError:
            continue
    return out


def echo_seconds(rule: Rule, scrape: float, evaluation: float) -> float:
    """From the restart until the alert has resolved in Alertmanager: the pre-stop sample leaves the window
    (at most `window` after now), `for:`, one scrape and two evaluations, plus a margin."""
    return rule_window(rule.expr) + rule.for_ + scrape + 2 * evaluation + MARGIN


@dataclass(frozen=True)
class EchoSilence:
    id: str
    matchers: tuple[silences.Matcher, ...]
    ends: float  # server clock, epoch seconds

    def line(self) -> str:
        until = time.strftime("%H:%M:%S UTC", time.gmtime(self.ends))
        ms = " ".join(map(str, self.matchers))
        return (f"note: silence {self.id} [{ms}] until {until} ('{COMMENT}'): {ECHO_ALERT} is the expected "
                f"echo of this drill's restart; BotDown and every other alert still notify")


def hush(am: AlertmanagerApi, rule: Rule, target_labels: dict[str, str], scrape: float,
         evaluation: float) -> EchoSilence:
    """Create the silence: alertname plus the restarted target's job and instance, nothing broader."""
    matchers = (silences.Matcher("alertname", rule.name),
                *(silences.Matcher(k, target_labels[k]) for k in ("job", "instance") if target_labels.get(k)))
    seconds = echo_seconds(rule, scrape, evaluation)
    sid = silences.create(am, list(matchers), seconds, COMMENT)
    return EchoSilence(sid, matchers, am.server_now() + seconds)
