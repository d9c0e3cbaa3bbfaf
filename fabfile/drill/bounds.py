"""What the inventory and the alert rules promise, in seconds: the drill's deadlines are computed from these,
never guessed, so a slow path is reported against the bound it broke.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.config.durations import parse_duration
from fabfile.config.rules_file import Rule
from fabfile.config.settings import HostSettings

ALERT = "BotDown"


@dataclass(frozen=True)
class Bounds:
    """What the inventory and the rule promise, in seconds."""

    scrape: float
    evaluation: float
    rule_for: float
    group_wait: float
    group_interval: float

    @property
    def detect(self) -> float:
        """stop -> notified: a failed scrape, `for`, the first group flush, plus one evaluation tick."""
        return self.scrape + self.rule_for + self.group_wait + self.evaluation

    @property
    def resolve(self) -> float:
        """start -> resolved notification: a good scrape, an evaluation, the next group flush."""
        return self.scrape + self.evaluation + self.group_interval

    def detect_text(self) -> str:
        return (f"scrape {self.scrape:g}s + for {self.rule_for:g}s + group_wait {self.group_wait:g}s "
                f"+ evaluation {self.evaluation:g}s = {self.detect:g}s")


def bounds_for(host: HostSettings, rule: Rule) -> Bounds:
    p, a = host.prometheus, host.alertmanager
    evaluation = rule.group_interval or parse_duration(p.evaluation_interval)
    return Bounds(parse_duration(p.scrape_interval), evaluation, rule.for_, parse_duration(a.group_wait),
                  parse_duration(a.group_interval))
