"""The lab host: disposable Debian VMs (QEMU/TCG) that stand in for the bot's servers.

Deploy steps never import this package; only `inv lab.*`, the tests and the benches do. Loading it plugs
the lab VMs into the drill as power switches (`inv test-alert --scenario host-down -H lab`).
"""

from __future__ import annotations

from typing import Any

from fabfile.drill.power import PowerSwitch, register_power_switch


def _lab_vm(host: Any) -> PowerSwitch | None:
    """A lab host's VM (imported only when one is asked for); None for any other host."""
    if getattr(host, "lab", None) is None:
        return None
    from fabfile.lab.vm import LabVM

    return LabVM(host)


register_power_switch(_lab_vm)
