"""pytest plugin: lab hosts (real QEMU VMs) for the lab tests. Registered from tests/conftest.py.

`lab_host` / `lab_host2` (module-scoped): the `lab` / `lab2` host of hosts.yml, restored from the golden
snapshot (a clean guest every module), always stopped afterwards. Anything started here is also stopped at
session end, by PID from its pidfile; nothing is ever killed by name.

`ROSEY_LAB_HOSTS=a,b` (with `ROSEY_INVENTORY` naming an inventory that defines them) makes the fixtures use
other lab hosts, so a test run does not reset the `lab`/`lab2` VMs someone uses on the same machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fabfile.lab.live_host import LabHost
from fabfile.lab.settings import lab_settings
from fabfile.lab.vm import LabVM

_started: dict[str, LabVM] = {}
_NAMES = (os.environ.get("ROSEY_LAB_HOSTS") or "lab,lab2").split(",")


def start_lab_host(name: str) -> LabHost:
    """A clean lab host: stops whatever runs under that name, then restores the golden snapshot."""
    vm = LabVM(lab_settings(name, os.environ.get("ROSEY_INVENTORY")))
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
