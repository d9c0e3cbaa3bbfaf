"""Which hosts a command runs on: the `-H` list (hosts, groups, patterns), or the inventory's `default_hosts`.

The brief's users type `inv test-alert` without `-H`; a default makes that work. Because a default (or a
group, or a pattern) is easy to misjudge, every command says which hosts it picked in its first line, and the
drill (which stops the bot) never takes a production host that -H did not name: not from the default, not
swept in by a group or a pattern. Production is drilled only when `-H` writes its alias out.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.config.host_patterns import resolve
from fabfile.config.inventory import Inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.settings import HostSettings

PRODUCTION_ENV = "production"


@dataclass(frozen=True)
class Selection:
    hosts: list[HostSettings]
    defaulted: bool  # taken from default_hosts, not from -H
    source: str  # the inventory's file name, for the notice
    named: frozenset[str] = frozenset()  # aliases -H wrote out (not reached through a group or pattern)
    expanded_by: tuple[str, ...] = ()  # the groups and patterns of -H ("group prod", "pattern 'bot-*'")

    def notice(self) -> str | None:
        """The first line when the user did not list the hosts one by one; None when -H named each."""
        names = ",".join(h.name for h in self.hosts)
        if self.defaulted:
            return f"hosts: {names} (default_hosts in {self.source}; -H NAME to choose others)"
        if self.expanded_by:
            return f"hosts: {names} ({', '.join(self.expanded_by)} in {self.source})"
        return None


def select(inv: Inventory, spec: str | None) -> Selection:
    """`-H` wins; without it the inventory's default_hosts; without those, the one-line 'no host given'."""
    where = inv.path.name
    if (spec or "").strip() or not inv.default_hosts:
        r = resolve(spec or "", inv.hosts, inv.groups, where)
        return Selection([inv.hosts[a] for a in r.names], defaulted=False, source=where, named=r.named,
                         expanded_by=r.expanded_by)
    return Selection([inv.hosts[a] for a in inv.default_hosts], defaulted=True, source=where)


def refuse_unnamed_production(sel: Selection, what: str) -> None:
    """`what` (the drill) never runs on a production host that -H did not name by its alias."""
    prod = [h.name for h in sel.hosts if h.env == PRODUCTION_ENV and h.name not in sel.named]
    if not prod:
        return
    if sel.defaulted:
        raise InventoryError(
            f"{sel.source}: default_hosts selects {', '.join(prod)} (env {PRODUCTION_ENV}); {what} never "
            f"runs on production by default — name it with -H {','.join(prod)} if you mean it; "
            "nothing was changed")
    raise InventoryError(
        f"{sel.source}: {', '.join(sel.expanded_by)} selects {', '.join(prod)} (env {PRODUCTION_ENV}); "
        f"{what} never runs on a production host a group or pattern swept in — add -H ...,{','.join(prod)} "
        "if you mean it, or leave it out; nothing was changed")
