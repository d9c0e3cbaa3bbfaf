"""The lab host: disposable Debian VMs (QEMU/TCG) that stand in for the bot's servers.

A plug-in: no other package imports it (only `inv lab.*` through tasks.py, the tests and the benches do).
What it adds to the others it registers here, through interfaces they own, so importing any lab module is
enough: its hosts' SSH host keys are pinned to the key generated with the image.
"""

from fabfile.lab.keys import host_key_pin
from fabfile.ssh.host_keys import register_pinned_keys

register_pinned_keys(host_key_pin)
