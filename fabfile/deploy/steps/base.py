"""What every step takes and returns, so tasks, sortie6 and tests treat all steps alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from fabric import Connection

from fabfile.config.inventory import HostSettings, Inventory
from fabfile.ssh.masking import Masker

Status = Literal["ok", "changed", "failed"]


@dataclass
class StepContext:
    inventory: Inventory
    secrets: dict[str, str]
    dry_run: bool = False
    strict: bool = False  # verify: firing bot alerts fail too (--strict), not only the stack checks
    log: Callable[[str], None] = print  # the runner passes a printer that prefixes the host name
    masker: Masker = field(default_factory=Masker)


@dataclass
class StepResult:
    step: str
    status: Status
    summary: str = ""  # one line: what changed / why it failed (already masked)
    details: list[str] = field(default_factory=list)  # extra lines: diffs, rules, checks

    @property
    def failed(self) -> bool:
        return self.status == "failed"


Step = Callable[[Connection, HostSettings, StepContext], StepResult]
