"""`inv lab.cluster-inventory`: the shipped lab hosts become one valid cluster; bad choices are one line."""

from __future__ import annotations

import pytest

from fabfile.config.inventory import DEFAULT_INVENTORY, load_inventory
from fabfile.lab import mailbox
from fabfile.lab.cluster_inventory import ClusterInventoryError, write_cluster_inventory
from tests.helpers import inv as run_inv

LAB_PAIR = [h.name for h in load_inventory(DEFAULT_INVENTORY).hosts.values()
            if h.lab is not None and h.lab.private_address][:2]


def test_the_shipped_lab_pair_becomes_one_valid_cluster(tmp_path) -> None:
    out = write_cluster_inventory(load_inventory(DEFAULT_INVENTORY), LAB_PAIR, tmp_path / "c.yml",
                                  heartbeat="1m")
    a, b = (out.host(n) for n in LAB_PAIR)
    assert a.cluster is not None and [p.name for p in a.cluster.peers] == [b.name]
    assert [p.address for p in a.cluster.peers] == [b.lab.private_address]  # the private link
    for h in (a, b):
        assert h.peer_address == h.lab.private_address
        assert h.alertmanager.group_interval == "30s"
        assert h.receivers.email.smarthost == mailbox.smarthost(h.lab.mail_port)
        assert h.receivers.heartbeat is not None and h.receivers.heartbeat.repeat_interval == "1m"
    # everything else is the inventory as it was
    assert {n: h.bot_port for n, h in out.hosts.items()} == {
        n: h.bot_port for n, h in load_inventory(DEFAULT_INVENTORY).hosts.items()}


@pytest.mark.parametrize(("names", "expected"), [
    (["lab"], "a cluster needs at least two lab hosts"),
    (["lab", "test"], "hosts.yml: hosts.test: not a lab host with lab_vm.private_address"),
])
def test_bad_choices_write_nothing(tmp_path, names, expected) -> None:
    with pytest.raises(ClusterInventoryError, match=expected):
        write_cluster_inventory(load_inventory(DEFAULT_INVENTORY), names, tmp_path / "c.yml")
    assert list(tmp_path.iterdir()) == []


def test_the_task_writes_it_and_says_what_next(tmp_path) -> None:
    p = run_inv("lab.cluster-inventory", "--out", str(tmp_path / "pair.yml"))
    assert p.returncode == 0, p.stdout
    assert "inv test-alert -H" in p.stdout and "--scenario host-down" in p.stdout
    assert load_inventory(tmp_path / "pair.yml").host(LAB_PAIR[0]).cluster is not None
    bad = run_inv("lab.cluster-inventory", "-H", LAB_PAIR[0], "--out", str(tmp_path / "x.yml"))
    assert bad.returncode == 2 and bad.stdout.strip().splitlines()[-1].startswith("error: a cluster needs")
