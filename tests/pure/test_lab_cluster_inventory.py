"""`inv lab.cluster-inventory`: the shipped lab hosts become one valid cluster; bad choices are one line."""

from __future__ import annotations

import pytest

from fabfile.config.inventory import DEFAULT_INVENTORY, load_inventory
from fabfile.lab import mailbox
from fabfile.lab.cluster_inventory import ClusterInventoryError, write_cluster_inventory

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
        assert h.receivers.email.auth_username == h.name  # the catcher tells the members' mails apart
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
