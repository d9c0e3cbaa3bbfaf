"""`inv lab.cluster-inventory` in a new process on the shipped lab hosts (the rest:
tests/pure/test_lab_cluster_inventory.py)."""

from __future__ import annotations

from fabfile.config.inventory import load_inventory
from tests.helpers import inv as run_inv
from tests.pure.test_lab_cluster_inventory import LAB_PAIR


def test_the_task_writes_it_and_says_what_next(tmp_path) -> None:
    p = run_inv("lab.cluster-inventory", "--out", str(tmp_path / "pair.yml"))
    assert p.returncode == 0, p.stdout
    assert "inv test-alert -H" in p.stdout and "--scenario host-down" in p.stdout
    assert load_inventory(tmp_path / "pair.yml").host(LAB_PAIR[0]).cluster is not None
    bad = run_inv("lab.cluster-inventory", "-H", LAB_PAIR[0], "--out", str(tmp_path / "x.yml"))
    assert bad.returncode == 2 and bad.stdout.strip().splitlines()[-1].startswith("error: a cluster needs")
