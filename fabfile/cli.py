"""CLI plumbing shared by tasks.py and the lab tasks: `-H`, inventory lookup, clean exits."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, TextIO

from invoke import Context, Task, task
from invoke.exceptions import Exit

from fabfile.config import selection
from fabfile.config.inventory import Inventory, load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.settings import HostSettings
from fabfile.errors import UserError, quoted
from fabfile.output import Output

HOSTS_HELP = "hosts from hosts.yml, comma-separated: aliases, groups (or group:NAME), patterns like 'bot-*'"
DRY_HELP = "connect and show what would change, change nothing"


class HostTask(Task):
    """A task whose `hosts` argument is spelled `-H/--hosts`, as users type it (`inv sortie6 -H test`)."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if name == "hosts":
            opts["names"] = ["hosts", "H"]
            taken_names.add("H")
        return opts


def inventory_path(c: Context) -> str | None:
    """`ROSEY_INVENTORY` or invoke config `rosey.inventory`; None means the project's hosts.yml."""
    return os.environ.get("ROSEY_INVENTORY") or c.config.get("rosey", {}).get("inventory")


def load(c: Context) -> Inventory:
    try:
        return load_inventory(inventory_path(c))
    except InventoryError as e:
        raise Exit(f"error: {e}", code=2) from None


def select_hosts(c: Context, hosts: str | None, *, never_default_production: str = "",
                 notice_to: TextIO | None = None) -> tuple[Inventory, list[HostSettings]]:
    """`-H` or the inventory's default_hosts (then named in the first line, on `notice_to` or stdout).

    `never_default_production`: what the command is ("the drill"); it refuses a production host that -H did
    not name by its alias (picked by default_hosts, a group or a pattern).
    """
    inv = load(c)
    try:
        sel = selection.select(inv, hosts)
        if never_default_production:
            selection.refuse_unnamed_production(sel, never_default_production)
    except InventoryError as e:
        raise Exit(f"error: {e}", code=2) from None
    line = sel.notice()
    if line:
        Output(notice_to).line(line)
    return inv, sel.hosts


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad input raised inside a task (any UserError) into one line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise Exit(f"error: {e}", code=2) from None

    return wrapper


class FlagError(UserError):
    """A command-line flag with a value it cannot take."""


MAX_SECONDS_FLAG = 86400


def seconds_flag(flag: str, text: str) -> float:
    """A `--timeout`-like flag: seconds, 0 to a day ('' is 0, the default); else one line, exit 2."""
    t = str(text).strip()
    try:
        value = 0.0 if not t else float(t) if len(t) <= 24 else float("nan")
    except ValueError:
        value = float("nan")
    if not 0 <= value <= MAX_SECONDS_FLAG:  # also catches nan and inf
        raise FlagError(f"{flag} {quoted(text, 24)}: expected a number of seconds, 0 or more, at most "
                        f"{MAX_SECONDS_FLAG} (e.g. {flag} 300)")
    return value


def number_flag(flag: str, text: str | int, lo: int, hi: int, what: str) -> int:
    """A whole-number flag (`--parallel`, `--watch`, a port): Invoke would call int() on it and print a
    traceback for `abc`; here '' is 0 (the default), ASCII digits within [lo, hi], else one line, exit 2."""
    t = str(text).strip()
    if t in ("", "0") and lo <= 0:
        return 0
    if t.isascii() and t.isdigit() and len(t) <= 9 and lo <= int(t) <= hi:
        return int(t)
    raise FlagError(f"{flag} {quoted(text, 24)}: expected {what}, {max(lo, 1)} to {hi}"
                    + (" (0 or none: the default)" if lo <= 0 else ""))


def exit_with(code: int) -> None:
    """Hand a library exit code to Invoke (0: return normally)."""
    if code:
        raise Exit(code=code)


@user_errors
def run_steps(c: Context, hosts: str, steps: list[str], dry_run: bool = False, strict: bool = False,
              parallel: str | int = "") -> None:
    """What every step task does: select hosts, run the named steps on them in parallel, exit with it."""
    from fabfile.deploy.runner import run_named

    at_once = parallel_flag(parallel)
    inv, selected = select_hosts(c, hosts)
    exit_with(run_named(inv, selected, steps, dry_run=dry_run, strict=strict, parallel=at_once))


MAX_PARALLEL = 100  # threads, each with an SSH connection: more is no faster from one machine


def parallel_flag(value: str | int) -> int:
    """`--parallel N` of every fan-out task (steps, status): hosts at once, '' or 0 the default;
    `abc`, -1 or 10**9 is one line, exit 2 (via number_flag), not Invoke's int() traceback."""
    from fabfile.deploy.runner import DEFAULT_PARALLEL

    n = number_flag("--parallel", value, 0, MAX_PARALLEL,
                    f"a number of hosts at once (default {DEFAULT_PARALLEL})")
    return n or DEFAULT_PARALLEL


STRICT_HELP = "firing bot alerts fail verify too (default: a warning; the stack checks decide)"
PARALLEL_HELP = "hosts at once (default 10; 1 runs them one after another)"


def step_task(name: str, doc: str, names: list[str], *, dry_run: bool, strict: bool = False) -> Task:
    """An Invoke task `name` running the registry steps `names` on `-H` hosts.

    `--dry-run` when a step changes things, `--strict` when one judges alerts (verify), `--parallel` always.
    Invoke reads the options from the function's signature, so the body gets one built from the flags.
    """
    flags: dict[str, tuple[Any, str]] = {"hosts": ("", HOSTS_HELP)}
    if dry_run:
        flags["dry_run"] = (False, DRY_HELP)
    if strict:
        flags["strict"] = (False, STRICT_HELP)
    flags["parallel"] = ("", PARALLEL_HELP)

    def body(c: Context, **given: Any) -> None:
        opts = {k: given.get(k, default) for k, (default, _) in flags.items()}
        run_steps(c, opts["hosts"], names, opts.get("dry_run", False), strict=opts.get("strict", False),
                  parallel=opts["parallel"])

    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("c", keyword)]
        + [inspect.Parameter(k, keyword, default=default) for k, (default, _) in flags.items()])
    body.__name__ = body.__qualname__ = name.replace("-", "_")
    body.__doc__ = doc
    return task(klass=HostTask, help={k: text for k, (_, text) in flags.items()})(body)
