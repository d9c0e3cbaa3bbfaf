"""The message templates: alertmanager.yml names them and every chat block uses them, the file defines
everything the config calls, uses only functions Alertmanager 0.25 has, and PagerDuty's events URL is a
checked setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fabfile.config import layout, render
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.needed_secrets import required_secrets
from fabfile.lab import hooks

TMPL = render.NOTIFICATIONS_SOURCE.read_text()
# Go's builtins and the functions Alertmanager 0.25 registers (template/template.go DefaultFuncs)
FUNCS_025 = {"toUpper", "toLower", "title", "join", "match", "safeHtml", "reReplaceAll", "stringSlice",
             "len", "index", "printf", "print", "eq", "ne", "and", "or", "not", "template", "define", "if",
             "else", "end", "range"}


def render_with(tmp_path: Path, teams: str = "workflows", pagerduty: str = "{}"):
    (tmp_path / "hosts.yml").write_text(f"""
hosts:
  h:
    address: h.invalid
    alertmanager: {{version: 0.33.1}}
    receivers:
      email: {{to: [ops@example.com], from: am@example.com, smarthost: "smtp.example.com:587"}}
      slack: {{}}
      discord: {{}}
      webhook: {{}}
      pagerduty: {pagerduty}
      teams: {{kind: {teams}}}
      heartbeat: {{}}
""")
    inv = load_inventory(tmp_path / "hosts.yml")
    host = inv.host("h")
    _, secrets = hooks.lab_channels("h", 2527)
    secrets |= {"web_password": "pw"}
    return render.render_host(inv, host, {k: secrets[k] for k in required_secrets(host)}, hash_password=False)


def receivers(rendered) -> dict[str, dict]:
    doc = yaml.safe_load(rendered.files["alertmanager.yml"])
    return {r["name"]: r for r in doc["receivers"]}, doc


def test_every_chat_block_uses_the_templates(tmp_path: Path) -> None:
    by_name, doc = receivers(render_with(tmp_path))
    assert doc["templates"] == ["notifications.tmpl"]  # relative: next to alertmanager.yml, as deployed
    assert "notifications.tmpl" in layout.CONFIG_FILES
    assert layout.services_for("notifications.tmpl") == ("alertmanager",)
    slack = by_name["slack-critical"]["slack_configs"][0]
    assert slack["title"] == '{{ template "rosey.title" . }}'
    assert slack["text"] == '{{ template "rosey.text" . }}'
    assert slack["color"] == '{{ template "rosey.color" . }}'
    discord = by_name["discord-critical"]["discord_configs"][0]
    assert (discord["title"], discord["message"]) == (slack["title"], slack["text"])
    teams = by_name["teams-critical"]["msteamsv2_configs"][0]
    assert teams["title"] == slack["title"] and "summary" not in teams
    assert teams["text"] == '{{ template "rosey.text.teams" . }}'
    pd = by_name["pagerduty-critical"]["pagerduty_configs"][0]
    assert pd["description"] == slack["title"]
    assert pd["severity"] == '{{ template "rosey.pagerduty.severity" . }}'
    assert pd["details"]["message"] == slack["text"]
    assert "url" not in pd  # Alertmanager's default: PagerDuty's own https endpoint
    # email keeps its subject (the drill reads it)
    assert by_name["email-critical"]["email_configs"][0]["headers"]["Subject"].startswith("🚨 [CRITICAL]")


def test_the_connector_card_gets_a_summary_too(tmp_path: Path) -> None:
    by_name, _ = receivers(render_with(tmp_path, teams="connector"))
    card = by_name["teams-critical"]["msteams_configs"][0]
    assert card["summary"] == card["title"] == '{{ template "rosey.title" . }}'


def test_the_file_defines_what_the_config_calls_and_only_025_functions() -> None:
    defined = set(re.findall(r'{{-?\s*define "([^"]+)"', TMPL))
    called = set(re.findall(r'template "([^"]+)"', TMPL))
    from fabfile.config import receivers as table
    source = Path(table.__file__).read_text()  # the blocks' options name templates too
    called |= set(re.findall(r'template \\?"([^"\\]+)\\?"', source))
    assert called <= defined, called - defined
    code = " ".join(re.findall(r"{{(.*?)}}", re.sub(r"{{/\*.*?\*/}}", "", TMPL, flags=re.S), re.S))
    code = re.sub(r'"[^"]*"', "", code)  # string literals
    words = {w for w in re.findall(r"(?<![.\w$])([A-Za-z]\w*)", code)}
    assert words <= FUNCS_025, words - FUNCS_025
    for needed in ("runbook", "summary", "StartsAt", "env", "host", "CRITICAL", "WARNING", "RESOLVED"):
        assert needed in TMPL


@pytest.mark.parametrize(("url", "ok"), [
    ("https://events.pagerduty.com/v2/enqueue", True),
    ("https://events.eu.pagerduty.com/v2/enqueue", True),
    ("http://10.0.2.2:2527/pagerduty/v2/enqueue", True),  # the lab's catcher: a private address
    ("http://127.0.0.1:9/x", True),
    ("http://events.pagerduty.com/v2/enqueue", False),  # the routing key in clear over the internet
    ("http://8.8.8.8/v2/enqueue", False),
    ("ftp://x/y", False),
    ("https://", False),
])
def test_pagerduty_events_url(tmp_path: Path, url: str, ok: bool) -> None:
    if ok:
        by_name, _ = receivers(render_with(tmp_path, pagerduty=f"{{url: '{url}'}}"))
        assert by_name["pagerduty-critical"]["pagerduty_configs"][0]["url"] == url
        return
    with pytest.raises(InventoryError, match=r"receivers\.pagerduty\.url"):
        render_with(tmp_path, pagerduty=f"{{url: '{url}'}}")
