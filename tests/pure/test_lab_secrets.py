"""The lab's secrets file (fabfile/lab/keys.py `ensure_secrets`): made once, private, and each lab host's
chat/HTTP channel secrets added when missing, without touching what is there."""

from __future__ import annotations

import stat

import yaml

from fabfile.config.inventory import load_inventory
from fabfile.config.secrets import load_secrets
from fabfile.lab import hooks, keys
from tests.helpers import REPO


def test_a_lab_host_gets_its_channel_secrets_and_the_rest_is_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path))
    path = keys.ensure_secrets()
    first = yaml.safe_load(path.read_text())
    assert set(first) == {"smtp_password", "web_password"}
    keys.ensure_secrets("lab3", 2527)
    keys.ensure_secrets("lab", 2527)
    doc = yaml.safe_load(path.read_text())
    assert {k: doc[k] for k in first} == first  # the passwords made first are kept
    assert doc["hosts"]["lab3"] == hooks.lab_channels("lab3", 2527)[1]
    assert doc["hosts"]["lab"]["slack_webhook_url"].endswith("/slack/lab")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.stat().st_mtime_ns
    keys.ensure_secrets("lab3", 2527)  # nothing missing: the file is not written again
    assert path.stat().st_mtime_ns == before
    assert not list(tmp_path.glob("secrets.yml.new"))


def test_the_shipped_lab3_finds_every_secret_lab_up_writes(tmp_path, monkeypatch) -> None:
    """hosts.yml turns lab3's channels on; what `lab.up -H lab3` writes is all its deploy needs."""
    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path))
    path = keys.ensure_secrets("lab3", 2527)
    inv = load_inventory(REPO / "hosts.yml")
    host = inv.host("lab3")
    monkeypatch.setattr(type(inv), "secrets_path", lambda self, h: path)
    got = load_secrets(inv, host)
    assert got["slack_webhook_url"] == "http://10.0.2.2:2527/slack/lab3"
    assert got["pagerduty_routing_key"] == hooks.routing_key("lab3")
    assert host.receivers.pagerduty.url == "http://10.0.2.2:2527/pagerduty/v2/enqueue"
