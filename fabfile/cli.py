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
from fabfile.errors import UserError
from fabfile.output import Output

HOSTS_HELP = "host alias(es) from hosts.yml, comma-separated (e.g. test,prod)"
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

    `never_default_production`: what the command is ("the drill"); it refuses a production host that only
    the default selected.
    """
    inv = load(c)
    try:
        sel = selection.select(inv, hosts)
        if never_default_production:
            selection.refuse_default_production(sel, never_default_production)
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


def seconds_flag(flag: str, text: str) -> float:
    """A `--timeout`-like flag: seconds >= 0 ('' is 0, the default); anything else is one line, exit 2."""
    try:
        value = float(text) if str(text).strip() else 0.0
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):  # also catches nan
        raise FlagError(f"{flag} {text!r}: expected a number of seconds, 0 or more (e.g. {flag} 300)")
    return value


def exit_with(code: int) -> None:
    """Hand a library exit code to Invoke (0: return normally)."""
    if code:
        raise Exit(code=code)


def run_steps(c: Context, hosts: str, steps: list[str], dry_run: bool = False, strict: bool = False,
              parallel: int = 0) -> None:
    """What every step task does: select hosts, run the named steps on them in parallel, exit with it."""
    from fabfile.deploy.runner import DEFAULT_PARALLEL, run_named

    if parallel < 0:
        raise Exit(f"error: --parallel {parallel}: expected a number of hosts at once, 1 or more "
                   f"(0: the default, {DEFAULT_PARALLEL})", code=2)
    inv, selected = select_hosts(c, hosts)
    exit_with(run_named(inv, selected, steps, dry_run=dry_run, strict=strict,
                        parallel=parallel or DEFAULT_PARALLEL))


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
    flags["parallel"] = (0, PARALLEL_HELP)

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
