"""What every step takes and returns, so tasks, sortie6 and tests treat all steps alike.

The shape of a step: read the server's state in one probe, decide in pure Python, then (unless
`ctx.dry_run`, which returns "changed" with details of what would be written/run) apply in one script
and confirm. A `RemoteError` (transport, sudo) is left to propagate: the runner turns it into this
step's masked "failed" line. Catch it only to add something the message lacks.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from fabfile.config.certs import issue_pending, pending
from fabfile.config.inventory import Inventory
from fabfile.config.settings import HostSettings
from fabfile.masking import Masker
from fabfile.ssh.session import HostSession

Status = Literal["ok", "changed", "failed"]


@dataclass
class StepContext:
    inventory: Inventory
    secrets: dict[str, str]
    dry_run: bool = False
    strict: bool = False  # verify: firing bot alerts fail too (--strict), not only the stack checks
    log: Callable[[str], None] = print  # the runner passes a printer that prefixes the host name
    masker: Masker = field(default_factory=Masker)
    # what the run's read-ahead found for the later steps this step declares (StepSpec.sees), by step name;
    # set by the runner before each step: a step sees another's read only when it says so
    later: dict[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass
class StepResult:
    step: str
    status: Status
    summary: str = ""  # one line: what changed / why it failed (already masked)
    details: list[str] = field(default_factory=list)  # extra lines: diffs, rules, checks

    @property
    def failed(self) -> bool:
        return self.status == "failed"


Step = Callable[[HostSession, HostSettings, StepContext], StepResult]


def certificates(host: HostSettings, ctx: StepContext) -> list[str]:
    """For the steps whose files carry TLS material (deploy-configs, install-services): on a real run, make
    the certificates the loaded secrets hold placeholders for (the only place a deploy writes to the PKI
    beside the secrets file); in a dry run, only say so. One line each, for the step's details."""
    if ctx.dry_run:
        return [f"would issue {note}" for note in pending(ctx.secrets)]
    issued = issue_pending(ctx.inventory, host, ctx.secrets)
    if issued:
        ctx.masker.extend(ctx.secrets.values())
    return [f"issued {note}" for note in issued]


def file_diff(path: str, old: str | None, new: str) -> list[str]:
    """Dry-run detail: a unified diff from the server's file (None: absent) to the rendered one."""
    diff = difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                fromfile=f"{path} (server)" if old is not None else "/dev/null",
                                tofile=f"{path} (rendered)")
    return [line.rstrip("\n") for line in diff]
