"""Issue 30 §7: secrets are one line, long enough to mask, never shown as their bcrypt hash, written 0600 by
`inv render --out`, and no two host aliases share the environment variables they are read from."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import bcrypt
import pytest

from fabfile.config import render_to_dir as rtd
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.secrets import SecretsError, load_secrets
from fabfile.deploy.steps import configs
from fabfile.masking import Masker

HOSTS = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
hosts:
"""


def inventory(tmp_path: Path, hosts: str = "  h: {address: h.invalid}\n"):
    (tmp_path / "hosts.yml").write_text(HOSTS + hosts)
    return load_inventory(tmp_path / "hosts.yml")


def secrets_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str) -> dict[str, str]:
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", password)
    monkeypatch.delenv("ROSEY_H_WEB_PASSWORD", raising=False)
    inv = inventory(tmp_path)
    return load_secrets(inv, inv.host("h"))


@pytest.mark.parametrize("sep", ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_every_line_separator_is_refused(tmp_path, monkeypatch, sep: str) -> None:
    with pytest.raises(SecretsError) as e:
        secrets_of(tmp_path, monkeypatch, f"first-half{sep}second-half")
    msg = str(e.value)
    assert "contains a line break" in msg and "half" not in msg and len(msg.splitlines()) == 1


@pytest.mark.parametrize("short", ["x", "pw", "pw-1234"])
def test_a_secret_too_short_to_mask_is_refused(tmp_path, monkeypatch, short: str) -> None:
    with pytest.raises(SecretsError, match="secret 'web_password' for host h: is shorter than 8 characters"):
        secrets_of(tmp_path, monkeypatch, short)
    assert secrets_of(tmp_path, monkeypatch, "pw-12345")["web_password"] == "pw-12345"


def test_the_dry_run_diff_of_web_yml_hides_the_bcrypt_hashes() -> None:
    old = bcrypt.hashpw(b"old-password", bcrypt.gensalt(4)).decode()
    new = bcrypt.hashpw(b"new-password", bcrypt.gensalt(4)).decode()
    change = configs.Change(name="web.yml", path="/srv/rosey/web.yml", owner="root", group="prometheus",
                            mode=0o640, secret=False, content_changed=True,
                            data=f"basic_auth_users:\n  admin: {new}\n".encode())
    lines = configs.diff_lines([change], {change.path: f"basic_auth_users:\n  admin: {old}\n"},
                               Masker(["new-password"]))
    text = "\n".join(lines)
    assert old not in text and new not in text and "$2b$" not in text
    assert "-  admin: <bcrypt hash>" in lines and "+  admin: <bcrypt hash>" in lines


def test_render_out_writes_secret_bearing_files_0600(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "web-Pa55-word")
    monkeypatch.setattr(rtd, "validate_rendered", lambda *a, **k: [])
    inv = inventory(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "web.yml").write_text("old\n")
    (out / "web.yml").chmod(0o644)  # an earlier render's file: made private too
    assert rtd.render_to_dir(inv, [inv.host("h")], out, rtd.Output(io.StringIO())) == []
    assert stat.S_IMODE((out / "web.yml").stat().st_mode) == 0o600
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((out / "prometheus.yml").stat().st_mode) == 0o666 & ~umask  # no secret: as before


def test_two_aliases_with_one_environment_name_are_refused(tmp_path) -> None:
    with pytest.raises(InventoryError) as e:
        inventory(tmp_path, "  h-1: {address: a.invalid}\n  h_1: {address: b.invalid}\n")
    assert str(e.value) == ("hosts.yml: hosts.h_1: hosts 'h-1' and 'h_1' would both read their secrets from "
                            "ROSEY_H_1_* environment variables; rename one")
