"""pytest plugin: lab hosts (real QEMU VMs) for the lab tests. Registered from tests/conftest.py.

`lab_host` / `lab_host2` (module-scoped): the `lab` / `lab2` host of hosts.yml, restored from the golden
snapshot (a clean guest every module), always stopped afterwards. Anything started here is also stopped at
session end, by PID from its pidfile; nothing is ever killed by name.

`ROSEY_LAB_HOSTS=a,b` (with `ROSEY_INVENTORY` naming an inventory that defines them) makes the fixtures use
other lab hosts, so a test run does not reset the `lab`/`lab2` VMs someone uses on the same machine. So a lab
test takes its host's name from the fixture (`lab_host.name`) and its inventory from `lab_inventory_path()`,
never spelled out (tests/pure/test_lab_tests_follow_the_override.py checks that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.config.inventory import DEFAULT_INVENTORY, Inventory, load_inventory
from fabfile.lab.live_host import LabHost
from fabfile.lab.settings import lab_settings
from fabfile.lab.vm import LabVM

_started: dict[str, LabVM] = {}
_NAMES = (os.environ.get("ROSEY_LAB_HOSTS") or "lab,lab2").split(",")


def lab_inventory_path() -> Path:
    """The inventory the lab tests use: `ROSEY_INVENTORY`, else the project's hosts.yml (as the CLI does)."""
    return Path(os.environ.get("ROSEY_INVENTORY") or DEFAULT_INVENTORY)


def lab_inventory() -> Inventory:
    return load_inventory(lab_inventory_path())


def start_lab_host(name: str) -> LabHost:
    """A clean lab host: stops whatever runs under that name, then restores the golden snapshot."""
    vm = LabVM(lab_settings(name, str(lab_inventory_path())))
    vm.down()
    _started[name] = vm
    vm.up(fresh=False, log=lambda msg: print(msg, flush=True))
    return LabHost(vm)


def stop_lab_host(name: str) -> None:
    vm = _started.pop(name, None)
    if vm is not None:
        vm.down()


def _lab_fixture(name: str) -> Iterator[LabHost]:
    try:
        yield start_lab_host(name)
    finally:
        stop_lab_host(name)


@pytest.fixture(scope="module")
def lab_host() -> Iterator[LabHost]:
    yield from _lab_fixture(_NAMES[0])


@pytest.fixture(scope="module")
def lab_host2() -> Iterator[LabHost]:
    yield from _lab_fixture(_NAMES[1])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in list(_started):
        stop_lab_host(name)
