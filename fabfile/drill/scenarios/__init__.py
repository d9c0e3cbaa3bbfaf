"""The scenario registry: every drill scenario, its `--scenario` name, one-line help, and what it needs.

Each scenario is one module here implementing `contract.Scenario`; the runner (`runner.Drill`) drives them
all through the same delivery path. tasks.py takes `--scenario`'s help from this list and the runner takes
its validation from it, so a new scenario is one module plus one line here (as deploy steps are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabfile.config.inventory import HostSettings, Inventory
from fabfile.drill.contract import Scenario
from fabfile.drill.power import power_switch
from fabfile.drill.scenarios.bot_down import BotDown
from fabfile.drill.scenarios.host_down import HostDown
from fabfile.drill.scenarios.monitoring_down import MonitoringDown
from fabfile.drill.scenarios.synthetic import Synthetic, chosen_alert
from fabfile.errors import UserError


@dataclass(frozen=True)
class ScenarioSpec:
    name: str  # what users type: `inv test-alert --scenario NAME`
    help: str  # its clause in `--scenario`'s help
    factory: Callable[[Path | None], Scenario]  # the rules file (None: the project's) -> a fresh scenario
    cluster: bool = False  # needs a peer: the host in a `clusters:` entry, or nobody would notice
    power: bool = False  # needs a power switch for the host (see drill/power.py: the lab's VMs)


def _synthetic(rules_path: Path | None) -> Scenario:
    return Synthetic()  # posts its own alert: no rule to read


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec("bot-down", "stop the bot, BotDown must notify; always started again", BotDown),
    ScenarioSpec("synthetic", "post a labelled test alert to Alertmanager; the bot is untouched (also "
                 "--synthetic)", _synthetic),
    ScenarioSpec("monitoring-down", "clustered hosts: stop this host's Prometheus+Alertmanager, the peer "
                 "must notify MonitoringPeerDown; always started again", MonitoringDown, cluster=True),
    ScenarioSpec("host-down", "clustered lab hosts: power the VM off, the peer must notify; booted again",
                 HostDown, cluster=True, power=True),
)
BY_NAME = {s.name: s for s in SCENARIOS}
DEFAULT = "bot-down"  # `inv test-alert` without --scenario
SYNTHETIC = "synthetic"  # what `--synthetic` stands for


def names() -> list[str]:
    return [s.name for s in SCENARIOS]


def help_text() -> str:
    """`--scenario`'s help, from the registry."""
    return "; ".join(f"{s.name}{' (default)' if s.name == DEFAULT else ''}: {s.help}" for s in SCENARIOS)


def chosen(scenario: str = "", synthetic: bool = False) -> ScenarioSpec:
    """The one path from the flags to a scenario: `--scenario NAME`, `--synthetic` (its alias), or the
    default. An unknown name or two different choices: a UserError naming what is allowed."""
    if synthetic and scenario and scenario != SYNTHETIC:
        raise UserError(f"--synthetic is --scenario {SYNTHETIC}: not with --scenario {scenario}")
    name = scenario or (SYNTHETIC if synthetic else DEFAULT)
    if name not in BY_NAME:
        raise UserError(f"--scenario {name}: unknown; one of {', '.join(names())}")
    return BY_NAME[name]


def with_alert(spec: ScenarioSpec, alert: str, severity: str) -> Callable[[Path | None], Scenario]:
    """The scenario's factory, with `--alert`/`--severity` (synthetic only) checked against the rules file
    the drill deploys: a UserError naming the flag before anything connects."""
    if not alert and not severity:
        return spec.factory
    if spec.name != SYNTHETIC:
        raise UserError(f"--alert/--severity go with --synthetic (the test alert it posts); not with "
                        f"--scenario {spec.name}")
    labels = chosen_alert(alert, severity)
    return lambda rules_path: Synthetic(labels)


def refuse_unfit(spec: ScenarioSpec, inventory: Inventory, hosts: Sequence[HostSettings]) -> None:
    """Before anything is touched: every host has what the scenario needs, or a UserError naming them."""
    agents = [h.name for h in hosts if h.prometheus.agent]
    if agents:  # no rules evaluated there and no alert sent from there: the drill would prove nothing
        raise UserError(f"{', '.join(agents)}: prometheus.mode is agent, so its alert rules run on the "
                        f"central store it writes to, not on the host; drill that store's alerting instead "
                        f"(README 'Agent mode'); nothing was touched")
    if spec.cluster:
        alone = [h.name for h in hosts if h.cluster is None]
        if alone:
            raise UserError(f"--scenario {spec.name}: {', '.join(alone)} not in a `clusters:` entry of "
                            f"{inventory.path.name}; without a peer nobody would notice (see README)")
    if spec.power:
        real = [h.name for h in hosts if power_switch(h) is None]
        if real:
            raise UserError(f"--scenario {spec.name}: {', '.join(real)} not a lab host (it powers off a "
                            f"lab VM); on a real server use --scenario monitoring-down")
