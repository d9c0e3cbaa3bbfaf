"""The lab tier's two lanes (tests/lab_lanes.py): which module runs where, and that the lanes' hosts exist
in hosts.yml and never share a VM or a port."""

from __future__ import annotations

import re

import pytest

from fabfile.config.inventory import DEFAULT_INVENTORY, load_inventory
from tests import lab_lanes
from tests.conftest import lane
from tests.helpers import REPO

LAB_MODULES = sorted((REPO / "tests" / "lab").glob("test_*.py"))


def test_only_the_pair_lane_uses_the_second_host_or_the_private_link() -> None:
    """A module outside PAIR_MODULES that asked for `lab_host2` would start `lab2` while the pair's lane uses
    it (a restore from the snapshot under a running cluster); one that reads its host's private peer would
    find none on the lone `lab3`."""
    pattern = re.compile(r"\blab_host2\b|\bprivate_(?:peer|address)\b")
    uses_pair = {p.name for p in LAB_MODULES if pattern.search(p.read_text())}
    assert {"test_lab_cluster.py", "test_lab_host.py"} <= uses_pair, "the scan is broken"
    assert uses_pair <= set(lab_lanes.PAIR_MODULES)
    assert set(lab_lanes.PAIR_MODULES) <= {p.name for p in LAB_MODULES}


def test_lanes_by_module_and_tier(monkeypatch) -> None:
    monkeypatch.setattr(lab_lanes, "NAMES", ["lab", "lab2", "lab3"])
    assert lane("tests/lab/test_lab_cluster.py::test_status_on_both_hosts") == "lab-pair"
    assert lane("tests/lab/test_lab_two_hosts.py::test_x") == "lab-pair"
    assert lane("tests/lab/test_drill.py::test_x") == "lab"
    assert lane("tests/pure/test_lab_cluster.py::test_x") == "this-machine"  # same file name, other tier
    assert lane("tests/local/test_x.py::test_y") == "this-machine"
    assert lab_lanes.lone_name() == "lab3"
    # two hosts named (ROSEY_LAB_HOSTS=a,b): one lab lane on those two, as before the split
    monkeypatch.setattr(lab_lanes, "NAMES", ["a", "b"])
    assert lane("tests/lab/test_lab_cluster.py::test_status_on_both_hosts") == "lab"
    assert lab_lanes.lone_name() == "a"


@pytest.fixture(scope="module")
def lab_hosts():
    inv = load_inventory(DEFAULT_INVENTORY)
    return {name: inv.host(name) for name in ("lab", "lab2", "lab3")}


def test_the_default_lab_hosts_are_a_linked_pair_and_a_lone_host(lab_hosts) -> None:
    a, b, lone = (lab_hosts[n].lab for n in ("lab", "lab2", "lab3"))
    assert (a.private_peer, b.private_peer) == ("lab2", "lab")
    assert lone.private_peer is None and lone.private_address is None  # nothing of the pair's link


def test_lab_hosts_share_no_port_but_the_machine_wide_servers(lab_hosts) -> None:
    ports: dict[int, str] = {}
    for name, host in lab_hosts.items():
        for port in (host.ssh.port, *host.lab.forwards.values()):
            assert port not in ports, f"{name} and {ports[port]} both use 127.0.0.1:{port}"
            ports[port] = name
    # one release server and one shared mail catcher for every lab host: started by the first, stopped by
    # the last (fabfile/lab/vm.py, under one lock)
    assert len({h.lab.releases_port for h in lab_hosts.values()}) == 1
    assert len({h.lab.mail_port for h in lab_hosts.values()}) == 1
