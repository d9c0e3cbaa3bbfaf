"""Clustered hosts' rendered configs pass the real promtool/amtool checks (what `inv render` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config import render
from fabfile.config.checks import validate_rendered
from fabfile.config.inventory import load_inventory
from fabfile.config.secrets import load_secrets_issuing

HOSTS = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  alertmanager: {group_interval: 30s}
hosts:
  test: {address: t.example.com, peer_address: 10.0.0.1, env: test, alertmanager: {version: 0.25.0}}
  prod: {address: p.example.com, peer_address: 10.0.0.2, env: production}
clusters:
  rosey: [test, prod]
"""


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("alias", ["test", "prod"])
def test_clustered_configs_pass_promtool_and_amtool(tmp_path: Path, alias: str, tls: bool) -> None:
    (tmp_path / "hosts.yml").write_text(HOSTS.replace("defaults:\n", "defaults:\n  web: {tls: true}\n")
                                        if tls else HOSTS)
    (tmp_path / "secrets.yml").write_text("web_password: pw-one-a\n"
                                           "hosts:\n  prod: {web_password: pw-two-b}\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    host = inv.host(alias)
    r = render.render_host(inv, host, load_secrets_issuing(inv, host))
    lines: list[str] = []
    verdicts = validate_rendered(r, host, lambda s: s, echo=lines.append)
    assert verdicts and not [v for v in verdicts if v.failed], lines
    assert "peer-alertmanager" in r.files["prometheus.yml"]
    assert ("scheme: https" in r.files["prometheus.yml"]) is tls
