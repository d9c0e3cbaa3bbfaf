"""The lab host: disposable Debian VMs (QEMU/TCG) that stand in for the bot's servers.

A plug-in: no other package imports it (only `inv lab.*` through tasks.py, the tests and the benches do).
What it adds to the others it registers here, through interfaces they own, so importing any lab module is
enough: its hosts' SSH host keys are pinned to the key generated with the image, and its VMs are the drill's
power switches (`inv test-alert --scenario host-down -H lab`).
"""

from __future__ import annotations

from typing import Any

from fabfile.drill.power import PowerSwitch, register_power_switch
from fabfile.lab.keys import host_key_pin
from fabfile.ssh.host_keys import register_pinned_keys


def _lab_vm(host: Any) -> PowerSwitch | None:
    """A lab host's VM (imported only when one is asked for); None for any other host."""
    if getattr(host, "lab", None) is None:
        return None
    from fabfile.lab.vm import LabVM

    return LabVM(host)


register_pinned_keys(host_key_pin)
register_power_switch(_lab_vm)
