"""Lab hosts from the inventory (the only place the lab learns its ports and sizes)."""

from __future__ import annotations

from typing import Any

from fabfile.config.inventory import load_inventory
from fabfile.lab import privnet


def lab_settings(name: str = "lab", inventory: str | None = None) -> Any:
    inv = load_inventory(inventory)
    privnet.check_links(inv.hosts, inv.path.name)
    host = inv.host(name)
    if host.lab is None:
        raise ValueError(f"host {name!r} has no `lab_vm` section in hosts.yml: it is not a lab host")
    return host
