"""The shared HTTP catcher as the lab runs it: started by its pidfile on loopback, real requests in, the
real services' answers out, every request in the spool in arrival order with its verdict."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.lab import hooks
from tests.helpers import hook_catcher


@pytest.fixture
def port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    with hook_catcher(tmp_path, monkeypatch) as p:
        yield p


def post(port: int, path: str, doc: object, method: str = "POST") -> tuple[int, str]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


GOOD = {
    "/slack/lab": ({"text": "BotDown on lab"}, 200, "ok"),
    "/discord/lab": ({"embeds": [{"title": "BotDown", "description": "on lab"}]}, 204, ""),
    "/teams-workflows/lab": ({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.2",
                    "body": [{"type": "TextBlock", "text": "BotDown"}]}}]}, 202, ""),
    "/teams-connector/lab": ({"@type": "MessageCard", "text": "BotDown"}, 200, "1"),
    "/pagerduty/v2/enqueue": ({"routing_key": hooks.routing_key("lab"), "event_action": "trigger",
                               "dedup_key": "k", "payload": {"summary": "BotDown", "source": "lab",
                                                             "severity": "critical"}}, 202, None),
}


def test_good_shapes_are_answered_like_the_services_and_kept_in_order(port: int) -> None:
    for path, (doc, status, text) in GOOD.items():
        got = post(port, path, doc)
        assert got[0] == status, path
        if text is not None:
            assert got[1] == text, path
    assert json.loads(post(port, "/pagerduty/v2/enqueue", GOOD["/pagerduty/v2/enqueue"][0])[1])["status"] \
        == "success"
    kept = hooks.read_all(port)
    assert [h.channel for h in kept] == ["slack", "discord", "teams-workflows", "teams-connector",
                                         "pagerduty", "pagerduty"]
    assert all(h.accepted and h.token in ("lab", "") for h in kept)
    assert kept[0].text == "BotDown on lab" and kept[1].text == "BotDown\non lab"
    hooks.clear(port)
    assert hooks.read_all(port) == []


def test_wrong_shapes_are_refused_and_recorded_as_failures(port: int) -> None:
    assert post(port, "/slack/lab", {"text": ""}) == (400, "no_text")
    assert post(port, "/slack/lab", b"payload=not-json")[0] == 400
    status, text = post(port, "/discord/lab", {"content": "x" * 2001})
    assert status == 400 and json.loads(text)["code"] == 50035
    status, text = post(port, "/pagerduty/v2/enqueue", {"routing_key": "short", "event_action": "trigger"})
    assert status == 400 and json.loads(text)["status"] == "invalid event"
    assert post(port, "/webhook/lab", {"version": "3"})[0] == 400
    assert post(port, "/nowhere/lab", {"text": "x"})[0] == 404  # a wrong URL is kept too
    kept = hooks.read_all(port)
    assert [h.channel for h in kept] == ["slack", "slack", "discord", "pagerduty", "webhook", "unknown"]
    assert not any(h.accepted for h in kept)
    assert all(h.problems for h in kept)
    assert "2001 characters" in kept[2].problems[0]


def test_a_channel_made_to_fail_fails_until_healed(port: int) -> None:
    hooks.set_failing(port, "slack", 500)
    assert post(port, "/slack/lab", {"text": "x"}) == (500, "forced failure")
    assert post(port, "/discord/lab", {"content": "x"})[0] == 204  # only that channel
    hooks.set_failing(port, "slack", None)
    assert post(port, "/slack/lab", {"text": "x"}) == (200, "ok")
    assert [h.accepted for h in hooks.read_all(port)] == [False, True, True]


def test_heartbeat_takes_a_ping_and_alertmanagers_post(port: int) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/heartbeat/lab")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert post(port, "/heartbeat/lab", {"no": "alerts"})[0] == 400
    assert [h.accepted for h in hooks.read_all(port)] == [True, False]


def test_one_hosts_url_made_to_fail_leaves_the_other_hosts_alone(port: int) -> None:
    hooks.set_failing(port, "webhook", 503, token="lab")
    doc = {"version": "4", "groupKey": "g", "receiver": "r", "status": "firing", "groupLabels": {},
           "commonLabels": {}, "commonAnnotations": {},
           "alerts": [{"status": "firing", "labels": {"alertname": "X"}, "annotations": {},
                       "startsAt": "t", "endsAt": "t", "fingerprint": "f"}]}
    assert post(port, "/webhook/lab", doc) == (503, "forced failure")
    assert post(port, "/webhook/lab2", doc)[0] == 200
    hooks.set_failing(port, "webhook", None, token="lab")
    assert post(port, "/webhook/lab", doc)[0] == 200
    assert [(h.token, h.accepted) for h in hooks.read_all(port)] == [("lab", False), ("lab2", True),
                                                                     ("lab", True)]
