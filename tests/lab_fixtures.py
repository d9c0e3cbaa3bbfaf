"""pytest plugin: lab hosts (real QEMU VMs) for the lab tests. Registered from tests/conftest.py.

`lab_host` / `lab_host2` (module-scoped): a lab host of hosts.yml, restored from the golden snapshot (a clean
guest every module), always stopped afterwards. The lab tier runs in two lanes at once (tests/lab_lanes.py):
`lab_host` is `lab` in a module of the pair's lane and `lab3` elsewhere; `lab_host2` is `lab2`, for the
pair's modules only. `shared_lab_host` is the exception: the host under the shared deployment
(tests/lab/deployed.py), kept running from one module to the next until a module asks for a clean guest (the
modules that share it run last: see `pytest_collection_modifyitems`). Anything started here is also stopped
at session end, by PID from its pidfile; nothing is ever killed by name.

`ROSEY_LAB_HOSTS=a,b,c` (with `ROSEY_INVENTORY` naming an inventory that defines them) makes the fixtures
use other lab hosts, so a test run does not reset the lab VMs someone uses on the same machine. So a
lab test takes its host's name from the fixture (`lab_host.name`) and its inventory from
`lab_inventory_path()`, never spelled out (tests/pure/test_lab_tests_follow_the_override.py checks that).
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
from tests import lab_slots
from tests.lab_lanes import BOTH_VMS_FIRST, PAIR_MODULES, lone_name
from tests.lab_lanes import NAMES as _NAMES

_started: dict[str, LabVM] = {}
_last_both_vms: dict[str, str | None] = {}  # the pair's last module holding both VMs (set at collection)
_shared: dict[str, LabVM] = {}  # the VM a shared deployment stands on, while nobody has restored it since


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
    lab_slots.take(name, log=lambda msg: print(msg, flush=True))  # at most MAX_VMS VMs at once, all lanes
    vm.up(fresh=False, log=lambda msg: print(msg, flush=True))
    return LabHost(vm)


def stop_lab_host(name: str, keep_slot: bool = False) -> None:
    """Stop the VM; its slot goes back too unless `keep_slot` (the pair's lane between its both-VM modules:
    the other lane, waiting, would take it and hold it for its whole shared deployment)."""
    vm = _started.pop(name, None)
    try:
        if vm is not None:
            vm.down()
    finally:
        if not keep_slot:
            lab_slots.give_back(name)


def lane_host(module: str) -> str:
    """The one-VM host of a module's lane: the pair's first host in the pair's lane, else the lone host."""
    return _NAMES[0] if module in PAIR_MODULES and len(_NAMES) > 2 else lone_name()


def shared_lab_host(name: str = "") -> tuple[LabHost, bool]:
    """The shared deployment's host, and whether it is new: the running one if nothing restored it since."""
    name = name or lone_name()
    vm = _started.get(name)
    if vm is not None and _shared.get(name) is vm and vm.is_running():
        return LabHost(vm), False
    host = start_lab_host(name)
    _shared[name] = _started[name]
    return host, True


def uses_shared_deployment(item: pytest.Item) -> bool:
    return "deployed_lab" in getattr(item, "fixturenames", ())


# Among the modules on the shared deployment, these go first and last: `inv status` reads the history (24 h of
# notification failures, sparklines), which the drills fill with stopped bots, failed mails and restarts.
SHARED_FIRST, SHARED_LAST = ("test_operator.py",), ("test_drill.py",)


@pytest.hookimpl(trylast=True)  # after conftest.py marked the tiers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules on the shared deployment run after the lab modules that restore clean guests, so one deploy
    serves them all (SHARED_FIRST first, SHARED_LAST last), and the modules holding both VMs before every
    other; otherwise the order (tiers, modules, tests) is kept. Then the lanes in the order xdist hands them
    out (conftest.LANE_ORDER)."""
    module = {id(it): it.nodeid.split("::")[0] for it in items}
    shared = {module[id(it)] for it in items if uses_shared_deployment(it)}

    def rank(it: pytest.Item) -> tuple[bool, bool, int]:
        name = module[id(it)].rsplit("/", 1)[-1]
        return (module[id(it)] in shared, name not in BOTH_VMS_FIRST,
                0 if name in SHARED_FIRST else 2 if name in SHARED_LAST else 1)

    lab_places = [i for i, it in enumerate(items) if it.get_closest_marker("lab")]
    lab_items = [items[i] for i in lab_places]
    lab_items.sort(key=rank)  # stable: keeps each module's own order
    for slot, item in zip(lab_places, lab_items, strict=True):
        items[slot] = item
    # then the lanes in the order xdist hands them out (stable: each lane keeps the order above)
    from tests.conftest import lane_rank

    items.sort(key=lambda it: lane_rank(it.nodeid))
    both = [it.path.name for it in items if it.get_closest_marker("lab") and it.path.name in BOTH_VMS_FIRST]
    _last_both_vms["module"] = both[-1] if both else None


def _lab_fixture(name: str, module: str) -> Iterator[LabHost]:
    # a both-VM module followed by another keeps its slots, so the pair is never split by the other lane
    keep = module in BOTH_VMS_FIRST and module != _last_both_vms.get("module")
    try:
        yield start_lab_host(name)
    finally:
        stop_lab_host(name, keep_slot=keep)


@pytest.fixture(scope="module")
def lab_host(request: pytest.FixtureRequest) -> Iterator[LabHost]:
    module = request.node.path.name
    yield from _lab_fixture(lane_host(module), module)


@pytest.fixture(scope="module")
def lab_host2(request: pytest.FixtureRequest) -> Iterator[LabHost]:
    yield from _lab_fixture(_NAMES[1], request.node.path.name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in list(_started):
        stop_lab_host(name)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared deployment's VM after the last test on it: it would only slow the tiers that follow."""
    if uses_shared_deployment(item) and (nextitem is None or not uses_shared_deployment(nextitem)):
        for name, vm in list(_shared.items()):
            if _started.get(name) is vm:
                stop_lab_host(name)
            _shared.pop(name, None)
