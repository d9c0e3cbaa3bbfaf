"""The rule proofs' exactly-once judge (tests/lab/test_rule_proofs.py) on made-up arrivals: a copy passes
only as Alertmanager's documented at-least-once after a member's restart, never from one sender twice."""

from __future__ import annotations

import pytest

from tests.lab.test_rule_proofs import Message, _not_once

BACK = {"lab2": 100.0}  # lab2's Alertmanager started again at t=100


def _msgs(*seq: tuple[str, str, float]) -> list[Message]:
    return [Message("email", "RemoteWriteFailing", state, host, "", at=at) for state, host, at in seq]


@pytest.mark.parametrize("seq", [
    # lab2 got the firing alert after lab's resolve: its own firing, then its own resolve
    (("firing", "lab", 50), ("resolved", "lab", 150), ("firing", "lab2", 160), ("resolved", "lab2", 220)),
    # lab2 had not learnt lab's firing: both resolve
    (("firing", "lab", 50), ("firing", "lab2", 120), ("resolved", "lab2", 200), ("resolved", "lab", 215)),
    (("firing", "lab", 50), ("resolved", "lab", 150), ("resolved", "lab2", 165)),
])
def test_a_restarted_members_own_copy_is_allowed(seq) -> None:
    bad, copies = _not_once(_msgs(*seq), BACK, 0.0)
    assert bad == [] and len(copies) == 1
    assert "from lab2 at +" in copies[0]


@pytest.mark.parametrize("seq", [
    # one Alertmanager twice (an SMTP retry, a lost notification log): never allowed
    (("firing", "lab", 50), ("firing", "lab", 80), ("resolved", "lab", 150)),
    (("firing", "lab2", 150), ("resolved", "lab2", 200), ("resolved", "lab2", 230)),
    # the copy came before lab2 was started again: not the restart's
    (("firing", "lab", 50), ("firing", "lab2", 60), ("resolved", "lab", 150), ("resolved", "lab2", 160)),
    # the last word a firing: the channel is left believing it still fires
    (("firing", "lab", 50), ("resolved", "lab", 150), ("firing", "lab2", 160)),
    # a sender nobody restarted, or one the catcher could not tell
    (("firing", "lab", 50), ("firing", "lab3", 120), ("resolved", "lab", 200)),
    (("firing", "", 50), ("firing", "lab2", 120), ("resolved", "lab2", 200)),
])
def test_any_other_copy_fails(seq) -> None:
    bad, copies = _not_once(_msgs(*seq), BACK, 0.0)
    assert copies == [] and len(bad) == 1


def test_once_each_is_neither() -> None:
    assert _not_once(_msgs(("firing", "lab", 50), ("resolved", "lab2", 150)), BACK, 0.0) == ([], [])
