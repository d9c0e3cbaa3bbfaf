"""The HTTP catcher's judgement: each service's documented format accepted, the wrong shapes refused the
way the service refuses them, and the text a person would read in each."""

from __future__ import annotations

import json

import pytest

from fabfile.lab import hooks
from fabfile.lab.hook_formats import check, readable


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


SLACK = {"channel": "#alerts", "text": "", "attachments": [
    {"title": "🚨 CRITICAL: BotDown", "text": "Host: lab · env: test\nRunbook: restart it", "color": "danger",
     "fallback": "BotDown", "fields": [{"title": "env", "value": "test", "short": True}]}]}
AM_WEBHOOK = {"version": "4", "groupKey": "{}:{alertname=\"BotDown\"}", "truncatedAlerts": 0,
              "status": "firing", "receiver": "webhook-critical", "groupLabels": {"alertname": "BotDown"},
              "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
              "alerts": [{"status": "firing", "labels": {"alertname": "BotDown", "host": "lab"},
                          "annotations": {"summary": "Rosey bot is disconnected", "runbook": "restart"},
                          "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                          "generatorURL": "", "fingerprint": "abc"}]}
CARD = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.2", "body": [
            {"type": "TextBlock", "text": "🚨 CRITICAL: BotDown"},
            {"type": "Container",
             "items": [{"type": "FactSet", "facts": [{"title": "env", "value": "test"}]}]}]}}]}
PD = {"routing_key": "a" * 32, "event_action": "trigger", "dedup_key": "d" * 64,
      "payload": {"summary": "BotDown on lab", "source": "lab", "severity": "critical",
                  "custom_details": {"runbook": "restart"}}}


def test_slack_accepts_alertmanagers_shape_and_reads_attachments() -> None:
    answer = check("slack", body(SLACK))
    assert (answer.status, answer.body, answer.accepted) == (200, "ok", True)
    text = readable("slack", body(SLACK))
    assert text.splitlines() == ["🚨 CRITICAL: BotDown", "Host: lab · env: test", "Runbook: restart it",
                                 "env: test"]


@pytest.mark.parametrize(("doc", "answer"), [
    ({"text": "", "attachments": []}, "no_text"),  # a template that renders to nothing: Slack refuses it
    ({"attachments": [{"title": 5}]}, "invalid_payload"),
    ({"blocks": [{"text": {"type": "mrkdwn", "text": "x"}}]}, "invalid_payload"),  # a block without type
])
def test_slack_refuses_what_slack_refuses(doc: dict, answer: str) -> None:
    got = check("slack", body(doc))
    assert (got.status, got.body, got.accepted) == (400, answer, False)


def test_slack_reads_blocks_and_fallback_only_when_nothing_else() -> None:
    doc = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*BotDown*"}}],
           "attachments": [{"fallback": "only this"}]}
    assert readable("slack", body(doc)).splitlines() == ["only this", "*BotDown*"]


def test_not_json_is_refused_by_every_channel() -> None:
    for channel in ("slack", "discord", "webhook", "teams-workflows", "teams-connector", "pagerduty"):
        got = check(channel, b"title=x")
        assert got.status == 400 and not got.accepted and "not JSON" in got.problems[0]


def test_discord_limits() -> None:
    ok = {"content": "", "embeds": [{"title": "t" * 256, "description": "d" * 4096, "color": 0xFF0000}]}
    assert check("discord", body(ok)).status == 204
    assert check("discord", body(ok), {"wait": "true"}).status == 200
    too_long = [
        {"content": "c" * 2001},
        {"embeds": [{"title": "t" * 257}]},
        {"embeds": [{"description": "d" * 4097}]},
        {"embeds": [{"title": "x"}] * 11},
        {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
        {"embeds": [{"fields": [{"name": "", "value": "v"}]}]},
        {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]},  # 6001 together
        {"embeds": [{"title": "x", "color": "red"}]},
    ]
    for doc in too_long:
        got = check("discord", body(doc))
        assert got.status == 400 and json.loads(got.body)["code"] == 50035, doc
    empty = check("discord", body({"content": ""}))
    assert (empty.status, json.loads(empty.body)["code"]) == (400, 50006)


def test_discord_reads_content_and_embeds() -> None:
    doc = {"content": "hi", "embeds": [{"title": "T", "description": "D",
                                        "fields": [{"name": "host", "value": "lab"}]}]}
    assert readable("discord", body(doc)).splitlines() == ["hi", "T", "D", "host: lab"]


def test_webhook_version_4() -> None:
    assert check("webhook", body(AM_WEBHOOK)).status == 200
    assert check("heartbeat", body(AM_WEBHOOK)).accepted
    for broken in ({**AM_WEBHOOK, "version": "3"}, {**AM_WEBHOOK, "alerts": []},
                   {**AM_WEBHOOK, "alerts": [{**AM_WEBHOOK["alerts"][0], "labels": {}}]},
                   {k: v for k, v in AM_WEBHOOK.items() if k != "status"}):
        got = check("webhook", body(broken))
        assert got.status == 400 and got.problems
    text = readable("webhook", body(AM_WEBHOOK))
    assert "[firing] alertname=BotDown host=lab" in text and "runbook: restart" in text


def test_teams_workflows_card() -> None:
    assert check("teams-workflows", body(CARD)).status == 202
    assert readable("teams-workflows", body(CARD)).splitlines() == ["🚨 CRITICAL: BotDown", "env: test"]
    wrong_type = {**CARD, "attachments": [{**CARD["attachments"][0], "contentType": "application/json"}]}
    connector_card = {"@type": "MessageCard", "text": "x"}
    for doc in (wrong_type, connector_card, {**CARD, "type": "card"}):
        got = check("teams-workflows", body(doc))
        assert got.status == 400 and got.problems


def test_teams_connector_card() -> None:
    doc = {"@context": "http://schema.org/extensions", "type": "MessageCard", "title": "T", "summary": "S",
           "text": "body", "themeColor": "8C1A1A"}
    got = check("teams-connector", body(doc))
    assert (got.status, got.body) == (200, "1")
    assert readable("teams-connector", body(doc)).splitlines() == ["T", "body"]
    got = check("teams-connector", body({"type": "MessageCard", "title": "T"}))
    assert (got.status, got.body) == (400, "Summary or Text is required.")


def test_pagerduty_events_v2() -> None:
    got = check("pagerduty", body(PD))
    assert got.status == 202 and json.loads(got.body)["status"] == "success"
    assert readable("pagerduty", body(PD)).splitlines() == [
        "trigger critical: BotDown on lab", f"dedup_key: {'d' * 64}", "source: lab", "runbook: restart"]
    resolve = {"routing_key": "a" * 32, "event_action": "resolve", "dedup_key": "d"}
    assert check("pagerduty", body(resolve)).status == 202
    bad = [{**PD, "routing_key": "short"}, {**PD, "event_action": "fire"},
           {**PD, "payload": {**PD["payload"], "severity": "page"}},
           {**PD, "payload": {**PD["payload"], "summary": "s" * 1025}},
           {**PD, "payload": {**PD["payload"], "source": ""}},
           {k: v for k, v in resolve.items() if k != "dedup_key"}]
    for doc in bad:
        got = check("pagerduty", body(doc))
        assert got.status == 400 and json.loads(got.body)["status"] == "invalid event", doc


def test_spool_record_reads_back_as_a_person_would() -> None:
    record = {"channel": "slack", "token": "lab", "method": "POST", "path": "/slack/lab", "query": {},
              "content_type": "application/json", "status": 200, "accepted": True, "problems": [],
              "body": json.dumps(SLACK)}
    hook = hooks.parse_record("0001-0000-slack.json", json.dumps(record))
    assert hook.accepted and hook.token == "lab" and hook.text.startswith("🚨 CRITICAL: BotDown")


def test_lab_channels_point_every_secret_at_the_catcher() -> None:
    settings, secrets = hooks.lab_channels("lab", 2527)
    assert set(settings) == {"slack", "discord", "webhook", "pagerduty", "teams", "heartbeat"}
    assert settings["pagerduty"]["url"] == "http://10.0.2.2:2527/pagerduty/v2/enqueue"
    assert secrets["slack_webhook_url"] == "http://10.0.2.2:2527/slack/lab"
    assert len(secrets["pagerduty_routing_key"]) == 32
    assert hooks.lab_channels("lab2", 2527)[1]["pagerduty_routing_key"] != secrets["pagerduty_routing_key"]
    _, connector = hooks.lab_channels("lab", 2527, teams_kind="connector")
    assert connector["teams_webhook_url"].endswith("/teams-connector/lab")
