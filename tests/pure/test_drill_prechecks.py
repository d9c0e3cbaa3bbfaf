"""The drill's pre-check on an alert already active: a pending one left by an evaluation before the target's
first scrape is waited out (one evaluation), anything else fails the pre-check as before."""

from __future__ import annotations

import time
from types import SimpleNamespace

from fabfile.drill.bounds import Bounds
from fabfile.drill.scenarios.bot_down import BotDown

PENDING = [{"labels": {"alertname": "BotDown"}, "state": "pending"}]
FIRING = [{"labels": {"alertname": "BotDown"}, "state": "firing"}]


class _Prometheus:
    def __init__(self, answers: list[list[dict]]) -> None:
        self.answers, self.asked = answers, 0

    def alerts(self, name: str | None = None) -> list[dict]:
        self.asked += 1
        return self.answers[min(self.asked - 1, len(self.answers) - 1)]


def _run(answers: list[list[dict]], evaluation: float = 1.0) -> tuple[list[dict], list[str], int, float]:
    said: list[str] = []
    scenario = BotDown()
    scenario.bounds = Bounds(scrape=1, evaluation=evaluation, rule_for=60, group_wait=1, group_interval=2)
    prom = _Prometheus(answers)
    apis = SimpleNamespace(prometheus=prom)
    d = SimpleNamespace(poll=0.05, say=said.append)
    rule = SimpleNamespace(name="BotDown")
    t0 = time.monotonic()
    left = scenario.pending_left_over(d, apis, rule, prom.alerts("BotDown"))
    return left, said, prom.asked, time.monotonic() - t0


def test_a_pending_alert_that_clears_at_the_next_evaluation_is_waited_out():
    left, said, asked, _ = _run([PENDING, PENDING, []])
    assert left == [] and asked == 3
    assert said == ["BotDown is pending while the target is up (evaluated before its first scrape?); "
                    "waiting up to 6s for the next evaluation"]


def test_a_pending_alert_that_stays_is_left_for_the_pre_check_after_one_evaluation():
    left, said, _, took = _run([PENDING], evaluation=0.2)
    assert left == PENDING and said
    assert 5.2 <= took < 8  # one evaluation plus 5 s, then judged


def test_a_firing_alert_is_not_waited_for():
    left, said, asked, took = _run([FIRING, []])
    assert left == FIRING and said == [] and asked == 1 and took < 0.5
