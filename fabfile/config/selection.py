"""Which hosts a command runs on: the `-H` list, or the inventory's `default_hosts` when `-H` is absent.

The brief's users type `inv test-alert` without `-H`; a default makes that work. Because a default is easy
to forget, every command says which hosts it picked in its first line, and the drill (which stops the bot)
never takes a production host from the default: production is drilled only when `-H` names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.config.inventory import Inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.settings import HostSettings

PRODUCTION_ENV = "production"


@dataclass(frozen=True)
class Selection:
    hosts: list[HostSettings]
    defaulted: bool  # taken from default_hosts, not from -H
    source: str  # the inventory's file name, for the notice

    def notice(self) -> str | None:
        """The first line of a command run on the default hosts; None when -H named them."""
        if not self.defaulted:
            return None
        names = ",".join(h.name for h in self.hosts)
        return f"hosts: {names} (default_hosts in {self.source}; -H NAME to choose others)"


def select(inv: Inventory, spec: str | None) -> Selection:
    """`-H` wins; without it the inventory's default_hosts; without those, the one-line 'no host given'."""
    if (spec or "").strip() or not inv.default_hosts:
        return Selection(inv.select(spec), defaulted=False, source=inv.path.name)
    return Selection(inv.select(",".join(inv.default_hosts)), defaulted=True, source=inv.path.name)


def refuse_default_production(sel: Selection, what: str) -> None:
    """`what` (the drill) never runs on a production host picked by default: -H must name it."""
    prod = [h.name for h in sel.hosts if h.env == PRODUCTION_ENV]
    if sel.defaulted and prod:
        raise InventoryError(
            f"{sel.source}: default_hosts selects {', '.join(prod)} (env {PRODUCTION_ENV}); {what} never "
            f"runs on production by default — name it with -H {','.join(prod)} if you mean it; "
            "nothing was changed")
