"""Power switches: how the drill pulls a host's plug and boots it again (`--scenario host-down`).

The drill owns this interface and knows no implementation: whatever can power a host registers a factory
here (the lab registers its QEMU VMs when `fabfile.lab` is imported, as tasks.py does for `inv lab.*`), so
production code never imports the lab. A host no factory claims has no switch, and host-down refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fabfile.config.inventory import HostSettings


class PowerSwitch(Protocol):
    """What host-down needs of a machine: pull the plug, and boot it again (seconds until it runs)."""

    def power_off(self) -> bool: ...
    def power_on(self) -> float: ...


SwitchFactory = Callable[[HostSettings], PowerSwitch | None]  # None: not a host this factory can power

_factories: list[SwitchFactory] = []


def register_power_switch(factory: SwitchFactory) -> None:
    """Offer switches for the hosts `factory` claims; registering the same factory again changes nothing."""
    if factory not in _factories:
        _factories.append(factory)


def power_switch(host: HostSettings) -> PowerSwitch | None:
    """The first registered switch that claims `host`, or None."""
    for factory in _factories:
        switch = factory(host)
        if switch is not None:
            return switch
    return None

