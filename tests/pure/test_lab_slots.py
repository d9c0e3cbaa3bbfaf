"""At most MAX_VMS lab VMs at once across the suite's workers (tests/lab_slots.py): a third waits for a slot,
and a slot a VM gives back goes to the one waiting. Real `flock`s on files under a temporary lab cache."""

from __future__ import annotations

import threading
import time

import pytest

from tests import lab_slots


@pytest.fixture
def slots(tmp_path, monkeypatch):
    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(lab_slots, "MAX_VMS", 2)
    monkeypatch.setattr(lab_slots, "POLL", 0.02)
    yield lab_slots
    for name in lab_slots.held():
        lab_slots.give_back(name)


def test_a_third_vm_waits_until_one_of_two_stops(slots):
    said: list[str] = []
    assert slots.take("a", log=said.append) < 1 and slots.take("b", log=said.append) < 1
    assert slots.take("a", log=said.append) == 0  # one slot per VM, however often its lane asks
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (slots.take("c", log=said.append), got.set()))
    waiter.start()
    time.sleep(0.3)
    assert not got.is_set(), "a third VM started beside two"
    assert said == ["lab: c waits for a VM slot (2 VMs at most on this machine)"]
    slots.give_back("a")
    waiter.join(timeout=5)
    assert got.is_set() and slots.held() == ["b", "c"]
    assert said[-1].startswith("lab: c got a VM slot after ")


def test_a_lent_slot_lets_a_third_vm_start_while_the_lender_idles(slots, tmp_path):
    said: list[str] = []
    slots.take("a", log=said.append)
    slots.take("b", log=said.append)
    with slots.lending():
        assert slots.take("c", log=said.append) < 1  # beside the two idle ones
    assert slots.held() == ["a", "b", "c"]  # it keeps its slot after the lending ends
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (slots.take("d", log=said.append), got.set()))
    waiter.start()
    time.sleep(0.3)
    assert not got.is_set(), "a fourth VM started: the lent slot outlived its lending"
    slots.give_back("c")  # the slot the lent one used is free again, but lends nothing: still two at most
    time.sleep(0.3)
    assert not got.is_set()
    slots.give_back("a")
    waiter.join(timeout=5)
    assert got.is_set()
    (tmp_path / "vm-slots" / "lent").write_text("999999999")  # left by a lender that died: lends nothing
    assert slots._slots() == 2


def test_the_lanes_are_handed_out_pair_first_then_this_machine_then_the_lone_host(monkeypatch):
    from tests import lab_lanes
    from tests.conftest import lane_rank

    monkeypatch.setattr(lab_lanes, "NAMES", ["lab", "lab2", "lab3"])
    ids = ["tests/pure/test_x.py::t", "tests/lab/test_drill.py::t", "tests/lab/test_lab_cluster.py::t",
           "tests/local/test_y.py::t"]
    assert sorted(ids, key=lane_rank) == ["tests/lab/test_lab_cluster.py::t", "tests/pure/test_x.py::t",
                                          "tests/local/test_y.py::t", "tests/lab/test_drill.py::t"]
