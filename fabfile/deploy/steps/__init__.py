"""The step registry: every deployment step, its task name, one-line help, and whether it changes things.

Each step is `step(session, host, ctx) -> StepResult` (see base.py for the shape; `session`: the host's
ssh.session.HostSession). tasks.py builds one task per entry (with `--dry-run` when `changes`), and sortie6
runs them in this order, so a new step is one module plus one line here. What a step reads from the server
is one function of its module, `reads(host, ctx) -> Read` (install's two steps: `reads_prometheus`,
`reads_alertmanager`), the one its entry names; the snippets behind it come from fabfile/facts or private
helpers. A step reads only its own state; what a later step's read found reaches it only when its entry
says `sees=` (as `ctx.later`). Imported directly: an ImportError inside a step fails loudly at startup
instead of looking like an unfinished feature at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fabfile.config.settings import HostSettings
from fabfile.deploy.steps import configs, firewall, install, services, verify
from fabfile.deploy.steps.base import Step, StepContext
from fabfile.ssh.probe import Read


@dataclass(frozen=True)
class StepSpec:
    name: str  # the task and step name users see: `inv install-prometheus`, `install-prometheus: ok`
    run: Step
    help: str  # the task's docstring (`inv --list`)
    changes: bool = True  # changes the server: the task takes --dry-run
    strict: bool = False  # judges firing alerts: the task takes --strict (bot alerts fail too)
    reads: Callable[[HostSettings, StepContext], Read] | None = None  # its first probe, for the read-ahead
    # later steps whose read-ahead answers this one is handed (ctx.later), to act on what they will do
    sees: tuple[str, ...] = ()


STEPS: tuple[StepSpec, ...] = (
    StepSpec("install-prometheus", install.install_prometheus,
             "Install prometheus + promtool at the inventory's version (checksum-verified).",
             reads=install.reads_prometheus, sees=("install-alertmanager",)),
    StepSpec("install-alertmanager", install.install_alertmanager,
             "Install alertmanager + amtool at the inventory's version (checksum-verified).",
             reads=install.reads_alertmanager, sees=("install-prometheus",)),
    StepSpec("deploy-configs", configs.deploy_configs,
             "Upload, validate on the server, activate atomically and reload only what changed.",
             reads=configs.reads),
    StepSpec("install-services", services.install_services,
             "Install the hardened systemd units, enable and start them, wait until healthy.",
             reads=services.reads),
    StepSpec("firewall", firewall.firewall,
             "ufw: keep SSH open, open 9090/9093 only to the inventory's admin sources.",
             reads=firewall.reads),
    StepSpec("verify", verify.verify,
             "The runbook's validation checklist as a pass/fail report (exit 0 ok, 1 a check failed, "
             "2 bad input).", changes=False, strict=True, reads=verify.reads),
)
BY_NAME = {s.name: s for s in STEPS}

SORTIE6 = tuple(s.name for s in STEPS)  # the whole deployment, in registry order
SORTIE6_HELP = "The whole deployment: install, configs, services, firewall, then verify; hosts in parallel."


def reads_of(names: Sequence[str]) -> list[Callable[[HostSettings, StepContext], Read]]:
    """The read-ahead functions of these steps (those that declare one), in order."""
    return [r for n in names if n in BY_NAME and (r := BY_NAME[n].reads) is not None]


def sees_of(name: str) -> list[tuple[str, Callable[[HostSettings, StepContext], Read]]]:
    """(name, read function) of the steps whose read-ahead answers step `name` declares it sees."""
    spec = BY_NAME.get(name)
    return [(o, r) for o in (spec.sees if spec else ()) if (r := BY_NAME[o].reads) is not None]


def named(names: Sequence[str]) -> list[tuple[str, Step]]:
    """(name, function) for each step name; KeyError names an unknown step."""
    return [(n, BY_NAME[n].run) for n in names]
