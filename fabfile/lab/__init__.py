"""The lab host: disposable Debian VMs (QEMU/TCG) that stand in for the bot's servers.

Deploy steps never import this package; only `inv lab.*`, the tests and the benches do.
"""
