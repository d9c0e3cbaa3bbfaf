"""What each chat/HTTP service accepts, how it answers, and what a person reads in it. Pure functions.

The HTTP catcher (fabfile/lab/hook_catcher.py) plays the receiving end of Slack, Discord, Teams, PagerDuty,
a generic webhook and a heartbeat service. A request in a shape the real service would refuse is answered
as that service answers it (a 4xx), so Alertmanager counts a failed notification, and `readable` turns an
accepted one into the text a person would see in that service, so tests read the message, not the JSON.

Formats, as documented by each service (and as Alertmanager's notify/<name> packages send them):
- Slack incoming webhook: JSON with `text`, `attachments` or `blocks`; 200 `ok`, 400 `invalid_payload` or
  `no_text` (https://api.slack.com/messaging/webhooks, .../reference/messaging/attachments).
- Discord webhook: `content` (<= 2000) and/or `embeds` (<= 10; title 256, description 4096, <= 25 fields of
  name 256 / value 1024, footer 2048, author 256, all embeds together 6000); 204 (200 with `?wait=true`),
  400 with `{"code": 50006|50035, ...}` (https://discord.com/developers/docs/resources/webhook).
- Alertmanager's webhook (`version: "4"`): https://prometheus.io/docs/alerting/latest/configuration/.
- Teams Workflows (msteamsv2): `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}`; 202.
- Teams connector (msteams, legacy): a MessageCard with `text` or `summary`; 200 `1`.
- PagerDuty Events API v2 (/v2/enqueue): 32-character `routing_key`, `event_action` trigger/acknowledge/
  resolve, `dedup_key` (<= 255), a trigger's `payload` with `summary` (<= 1024), `source`, `severity`;
  202 `{"status": "success", ...}`, 400 `{"status": "invalid event", "errors": [...]}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CHANNELS = ("slack", "discord", "webhook", "teams-workflows", "teams-connector", "pagerduty", "heartbeat")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass(frozen=True)
class Answer:
    """The service's answer to one request, and why it refused it (empty: accepted)."""

    status: int
    body: str
    content_type: str = "text/plain"
    problems: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.problems


def _json_answer(status: int, doc: Any, problems: list[str] | tuple[str, ...] = ()) -> Answer:
    return Answer(status, json.dumps(doc), "application/json", tuple(problems))


def parse_json(body: bytes) -> tuple[Any, str | None]:
    """(document, None) or (None, why it is not a JSON object)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return None, f"body is not JSON: {e}"
    if not isinstance(doc, dict):
        return None, f"body is a JSON {type(doc).__name__}, not an object"
    return doc, None


def _str(doc: dict[str, Any], key: str, where: str, problems: list[str], *, required: bool = False,
         limit: int | None = None) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            problems.append(f"{where}{key} is missing")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}{key} must be a string, got {type(value).__name__}")
        return ""
    if required and not value.strip():
        problems.append(f"{where}{key} is empty")
    if limit is not None and len(value) > limit:
        problems.append(f"{where}{key} has {len(value)} characters, more than {limit}")
    return value


def _list_of_dicts(doc: dict[str, Any], key: str, where: str, problems: list[str]) -> list[dict[str, Any]]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        problems.append(f"{where}{key} must be a list of objects")
        return []
    return value


# ---------------------------------------------------------------- validation, per service


def check_slack(doc: dict[str, Any]) -> Answer:
    problems: list[str] = []
    _str(doc, "text", "", problems)
    attachments = _list_of_dicts(doc, "attachments", "", problems)
    blocks = _list_of_dicts(doc, "blocks", "", problems)
    if len(attachments) > 100:
        problems.append(f"{len(attachments)} attachments, more than 100")
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks, more than 50")
    for i, a in enumerate(attachments):
        for key in ("title", "text", "pretext", "fallback", "color"):
            _str(a, key, f"attachments[{i}].", problems)
        for j, f in enumerate(_list_of_dicts(a, "fields", f"attachments[{i}].", problems)):
            _str(f, "title", f"attachments[{i}].fields[{j}].", problems)
            _str(f, "value", f"attachments[{i}].fields[{j}].", problems)
    for i, b in enumerate(blocks):
        _str(b, "type", f"blocks[{i}].", problems, required=True)
    if problems:
        return Answer(400, "invalid_payload", problems=tuple(problems))
    if not readable_slack(doc).strip():
        return Answer(400, "no_text", problems=("nothing to show: text, attachments and blocks are empty",))
    return Answer(200, "ok")


def check_discord(doc: dict[str, Any], wait: bool = False) -> Answer:
    problems: list[str] = []
    content = _str(doc, "content", "", problems, limit=2000)
    embeds = _list_of_dicts(doc, "embeds", "", problems)
    if len(embeds) > 10:
        problems.append(f"{len(embeds)} embeds, more than 10")
    total = 0
    for i, e in enumerate(embeds):
        w = f"embeds[{i}]."
        total += len(_str(e, "title", w, problems, limit=256)) + len(_str(e, "description", w, problems,
                                                                           limit=4096))
        color = e.get("color")
        if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
            problems.append(f"{w}color must be an integer 0..16777215, got {color!r}")
        fields = _list_of_dicts(e, "fields", w, problems)
        if len(fields) > 25:
            problems.append(f"{w}fields: {len(fields)}, more than 25")
        for j, f in enumerate(fields):
            total += len(_str(f, "name", f"{w}fields[{j}].", problems, required=True, limit=256))
            total += len(_str(f, "value", f"{w}fields[{j}].", problems, required=True, limit=1024))
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            if isinstance(e.get(key), dict):
                total += len(_str(e[key], sub, f"{w}{key}.", problems, limit=limit))
    if total > 6000:
        problems.append(f"the embeds hold {total} characters together, more than 6000")
    if problems:
        return _json_answer(400, {"message": "Invalid Form Body", "code": 50035}, problems)
    if not content.strip() and not embeds:
        return _json_answer(400, {"message": "Cannot send an empty message", "code": 50006},
                            ("neither content nor embeds",))
    if wait:
        return _json_answer(200, {"id": "0", "content": content, "embeds": embeds})
    return Answer(204, "")


def check_webhook(doc: dict[str, Any]) -> Answer:
    """Alertmanager's webhook JSON, version 4 (also what the heartbeat receiver posts)."""
    problems: list[str] = []
    if doc.get("version") != "4":
        problems.append(f"version must be \"4\", got {doc.get('version')!r}")
    for key in ("groupKey", "receiver", "externalURL"):
        _str(doc, key, "", problems, required=key != "externalURL")
    if doc.get("status") not in ("firing", "resolved"):
        problems.append(f"status must be firing or resolved, got {doc.get('status')!r}")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        if not isinstance(doc.get(key), dict):
            problems.append(f"{key} must be an object")
    alerts = _list_of_dicts(doc, "alerts", "", problems)
    if not alerts:
        problems.append("alerts is empty or missing")
    for i, a in enumerate(alerts):
        w = f"alerts[{i}]."
        if a.get("status") not in ("firing", "resolved"):
            problems.append(f"{w}status must be firing or resolved")
        labels = a.get("labels")
        if not isinstance(labels, dict) or not labels.get("alertname"):
            problems.append(f"{w}labels must be an object with an alertname")
        if not isinstance(a.get("annotations"), dict):
            problems.append(f"{w}annotations must be an object")
        for key in ("startsAt", "endsAt", "fingerprint"):
            _str(a, key, w, problems, required=True)
    if problems:
        return Answer(400, "bad request", problems=tuple(problems))
    return Answer(200, "")


def check_teams_workflows(doc: dict[str, Any]) -> Answer:
    problems: list[str] = []
    if doc.get("type") != "message":
        problems.append(f"type must be \"message\", got {doc.get('type')!r}")
    attachments = _list_of_dicts(doc, "attachments", "", problems)
    if not attachments:
        problems.append("attachments is empty or missing")
    for i, a in enumerate(attachments):
        w = f"attachments[{i}]."
        if a.get("contentType") != ADAPTIVE_CARD:
            problems.append(f"{w}contentType must be {ADAPTIVE_CARD}, got {a.get('contentType')!r}")
        card = a.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            problems.append(f"{w}content must be an AdaptiveCard object")
            continue
        _str(card, "version", f"{w}content.", problems, required=True)
        body = _list_of_dicts(card, "body", f"{w}content.", problems)
        for j, element in enumerate(body):
            _str(element, "type", f"{w}content.body[{j}].", problems, required=True)
    if not problems and not readable_teams_workflows(doc).strip():
        problems.append("the card shows no text")
    if problems:
        return _json_answer(400, {"error": {"code": "InvalidRequestContent",
                                            "message": "The request content is not valid"}}, problems)
    return Answer(202, "")


def check_teams_connector(doc: dict[str, Any]) -> Answer:
    problems: list[str] = []
    if "MessageCard" not in (doc.get("@type"), doc.get("type")):
        problems.append("@type must be MessageCard")
    for key in ("title", "summary", "text", "themeColor"):
        _str(doc, key, "", problems)
    if not problems and not (str(doc.get("text") or "").strip() or str(doc.get("summary") or "").strip()):
        return Answer(400, "Summary or Text is required.", problems=("neither text nor summary",))
    if problems:
        return Answer(400, "Bad payload received by generic incoming webhook.", problems=tuple(problems))
    return Answer(200, "1")


def check_pagerduty(doc: dict[str, Any]) -> Answer:
    problems: list[str] = []
    key = _str(doc, "routing_key", "", problems, required=True)
    if key and len(key) != 32:
        problems.append(f"routing_key must be 32 characters, got {len(key)}")
    action = doc.get("event_action")
    if action not in PAGERDUTY_ACTIONS:
        problems.append(f"event_action must be one of {', '.join(PAGERDUTY_ACTIONS)}, got {action!r}")
    dedup = _str(doc, "dedup_key", "", problems, required=action in ("acknowledge", "resolve"), limit=255)
    payload = doc.get("payload")
    if action == "trigger" or payload is not None:
        if not isinstance(payload, dict):
            problems.append("payload must be an object")
        else:
            _str(payload, "summary", "payload.", problems, required=True, limit=1024)
            _str(payload, "source", "payload.", problems, required=True)
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                problems.append(f"payload.severity must be one of {', '.join(PAGERDUTY_SEVERITIES)}, "
                                f"got {payload.get('severity')!r}")
    if problems:
        return _json_answer(400, {"status": "invalid event", "message": "Event object is invalid",
                                  "errors": problems}, problems)
    return _json_answer(202, {"status": "success", "message": "Event processed",
                              "dedup_key": dedup or "generated"})


def check(channel: str, body: bytes, query: dict[str, str] | None = None) -> Answer:
    """The service's answer to a POST of `body` to `channel`."""
    doc, why = parse_json(body)
    if doc is None:
        answers = {"slack": Answer(400, "invalid_payload"),
                   "discord": _json_answer(400, {"message": "400: Bad Request", "code": 0}),
                   "pagerduty": _json_answer(400, {"status": "invalid event",
                                                   "message": "Event object is invalid"})}
        bad = answers.get(channel, Answer(400, "bad request"))
        return Answer(bad.status, bad.body, bad.content_type, (str(why),))
    if channel == "discord":
        return check_discord(doc, wait=(query or {}).get("wait") == "true")
    return _CHECKS[channel](doc)


_CHECKS = {"slack": check_slack, "webhook": check_webhook, "heartbeat": check_webhook,
           "teams-workflows": check_teams_workflows, "teams-connector": check_teams_connector,
           "pagerduty": check_pagerduty}


# ---------------------------------------------------------------- what a person reads


def _lines(*parts: Any) -> str:
    return "\n".join(str(p) for p in parts if isinstance(p, str | int | float) and str(p).strip())


def _block_text(block: dict[str, Any]) -> str:
    out = []
    text = block.get("text")
    if isinstance(text, dict):
        out.append(text.get("text"))
    for f in block.get("fields") or []:
        if isinstance(f, dict):
            out.append(f.get("text"))
    for e in block.get("elements") or []:
        if isinstance(e, dict):
            out.append(e.get("text") if not isinstance(e.get("text"), dict) else e["text"].get("text"))
    return _lines(*out)


def readable_slack(doc: dict[str, Any]) -> str:
    """The message Slack shows: text, each attachment's pretext/title/text/fields (its fallback when it
    has none of those), and the blocks' texts."""
    out = [doc.get("text")]
    for a in doc.get("attachments") or []:
        shown = [a.get("pretext"), a.get("title"), a.get("text")]
        shown += [f"{f.get('title', '')}: {f.get('value', '')}" for f in a.get("fields") or []
                  if isinstance(f, dict)]
        if not _lines(*shown).strip():
            shown.append(a.get("fallback"))
        out += shown
    out += [_block_text(b) for b in doc.get("blocks") or [] if isinstance(b, dict)]
    return _lines(*out)


def readable_discord(doc: dict[str, Any]) -> str:
    out = [doc.get("content")]
    for e in doc.get("embeds") or []:
        out += [e.get("title"), e.get("description")]
        out += [f"{f.get('name', '')}: {f.get('value', '')}" for f in e.get("fields") or []]
        footer = e.get("footer")
        out.append(footer.get("text") if isinstance(footer, dict) else None)
    return _lines(*out)


def _card_text(element: Any) -> list[Any]:
    """Texts of an Adaptive Card element and its children (Containers, ColumnSets, FactSets)."""
    if isinstance(element, list):
        return [t for e in element for t in _card_text(e)]
    if not isinstance(element, dict):
        return []
    kind = element.get("type")
    if kind == "TextBlock":
        return [element.get("text")]
    if kind == "FactSet":
        return [f"{f.get('title', '')}: {f.get('value', '')}" for f in element.get("facts") or []]
    if kind == "RichTextBlock":
        return ["".join(i.get("text", "") for i in element.get("inlines") or [] if isinstance(i, dict))]
    return [t for key in ("items", "columns", "body") for t in _card_text(element.get(key))]


def readable_teams_workflows(doc: dict[str, Any]) -> str:
    return _lines(*[t for a in doc.get("attachments") or [] if isinstance(a, dict)
                    for t in _card_text(a.get("content"))])


def readable_teams_connector(doc: dict[str, Any]) -> str:
    out = [doc.get("title"), doc.get("text")]
    for s in doc.get("sections") or []:
        out += [s.get("activityTitle"), s.get("text")]
        out += [f"{f.get('name', '')}: {f.get('value', '')}" for f in s.get("facts") or []]
    if not _lines(*out):
        out.append(doc.get("summary"))
    return _lines(*out)


def readable_pagerduty(doc: dict[str, Any]) -> str:
    """What an incident shows: summary, severity, the action, dedup key, source and the details."""
    payload = doc.get("payload") or {}
    out = [f"{doc.get('event_action')} {payload.get('severity', '')}: {payload.get('summary', '')}",
           f"dedup_key: {doc.get('dedup_key', '')}", f"source: {payload.get('source', '')}"]
    details = payload.get("custom_details")
    if isinstance(details, dict):
        out += [f"{k}: {v}" for k, v in details.items()]
    return _lines(*out)


def readable_webhook(doc: dict[str, Any]) -> str:
    out = []
    for a in doc.get("alerts") or []:
        labels = a.get("labels") or {}
        out.append(f"[{a.get('status')}] " + " ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        out += [f"{k}: {v}" for k, v in sorted((a.get("annotations") or {}).items())]
        out.append(f"startsAt: {a.get('startsAt')}")
    return _lines(*out)


READABLE = {"slack": readable_slack, "discord": readable_discord, "webhook": readable_webhook,
            "heartbeat": readable_webhook, "teams-workflows": readable_teams_workflows,
            "teams-connector": readable_teams_connector, "pagerduty": readable_pagerduty}


def readable(channel: str, body: bytes) -> str:
    """What a person reads in `channel` for this request body ('' when it is not a JSON object)."""
    doc, _ = parse_json(body)
    return READABLE[channel](doc) if doc is not None else ""
