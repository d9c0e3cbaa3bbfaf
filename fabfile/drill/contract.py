"""What the drill's runner and its scenarios share, so neither imports the other: the `Scenario` protocol a
scenario implements, the `DrillRun` it is handed (what it may ask of the running drill), the `Expectation` it
returns and the `DrillResult` its `make_whole` amends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fabfile.alerting.api import Apis
from fabfile.config.inventory import HostSettings
from fabfile.deploy.steps.base import StepContext
from fabfile.drill.bounds import Bounds
from fabfile.drill.target import Target
from fabfile.drill.timeline import Timeline


@dataclass(frozen=True)
class Expectation:
    """The alert a scenario expects delivered: its name, labels to find it by, and whose Alertmanager
    delivers it (`target`; None: the drilled host's own)."""

    alert: str
    labels: dict[str, str]
    target: Target | None = None
    others: tuple[Target, ...] = ()  # the cluster's other Alertmanagers: a notification sent by any counts
    whose: str = "Alertmanager"  # how the progress lines name the target's Alertmanager



@dataclass
class DrillResult:
    ok: bool
    message: str
    timeline: Timeline
    bounds: Bounds | None = None
    bot_active: bool | None = None  # None: the bot was never touched
    details: list[str] = field(default_factory=list)

    @property
    def detection(self) -> float | None:
        return self.timeline.between("stop", "notified")


class DrillRun(Protocol):
    """What a scenario may use of the running drill (`runner.Drill` is the one implementation)."""

    t: Target  # the drilled host
    host: HostSettings
    ctx: StepContext
    peers: dict[str, Target]  # the cluster's other members by alias (clustered hosts only)
    force: bool
    timeout: float | None
    poll: float
    timeline: Timeline

    def say(self, text: str) -> None: ...
    def wait(self, phase: str, deadline: float, t_start: float, check: Callable[[Apis], Any],
             target: Target | None = None) -> Any: ...
    def ensure_running(self, unit: str, active: Callable[[], bool], start: Callable[[], None]) -> bool: ...


class Scenario(Protocol):
    """One way of breaking something and proving the alert about it reaches people.

    `prepare` runs the pre-checks and must break nothing; from `break_it` on, `broken` is True and the
    runner calls `make_whole` whatever happens (with signals only noted, not obeyed).
    """

    bounds: Bounds | None
    broken: bool
    restoring: str  # "making sure X is running", said when a signal arrives during make_whole
    firing_budget: float  # seconds from break_it to the notification
    resolve_budget: float  # seconds from restore to the resolved notification

    def prepare(self, d: DrillRun) -> Expectation: ...
    def break_it(self, d: DrillRun) -> None: ...
    def until_alerting(self, d: DrillRun, deadline: float, t0: float) -> None: ...
    def restore(self, d: DrillRun) -> None: ...
    def until_cleared(self, d: DrillRun, deadline: float, t0: float) -> None: ...
    def make_whole(self, d: DrillRun, result: DrillResult) -> None: ...
    def verdict(self, tl: Timeline) -> str: ...
