"""Issue 9 §3: inputs that crashed with a traceback give one line naming the file/field/flag, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.render_to_dir import OutDirError, render_to_dir
from fabfile.config.secrets import SecretsError, load_secrets

HOSTS = """\
defaults:
  receivers:
    email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}
hosts:
  h: {address: h.invalid, secrets_file: SECRETS}
"""


def inventory(tmp_path: Path, secrets_file: str = "secrets.yml", text: str = HOSTS):
    (tmp_path / "hosts.yml").write_text(text.replace("SECRETS", secrets_file))
    return load_inventory(tmp_path / "hosts.yml")


def secrets_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None,
                  secrets_file: str = "secrets.yml") -> str:
    for var in ("ROSEY_WEB_PASSWORD", "ROSEY_H_WEB_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    if content is not None:
        (tmp_path / secrets_file).write_bytes(content)
    inv_ = inventory(tmp_path, secrets_file)
    with pytest.raises(SecretsError) as e:
        load_secrets(inv_, inv_.host("h"))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_secrets_hosts_as_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msg = secrets_error(tmp_path, monkeypatch, b"hosts: [h]\n")
    assert "secrets.yml: hosts: expected a mapping of host aliases" in msg


def test_secrets_file_is_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sdir").mkdir()
    msg = secrets_error(tmp_path, monkeypatch, None, secrets_file="sdir")
    assert msg.endswith("sdir: is a directory, expected a YAML file")


def test_secrets_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msg = secrets_error(tmp_path, monkeypatch, b"web_password: caf\xe9\n")
    assert "secrets.yml: not UTF-8 text (byte 0xe9 on line 1); save it as UTF-8" in msg
    assert "caf" not in msg  # the value is never shown


def test_secrets_duplicate_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msg = secrets_error(tmp_path, monkeypatch, b"web_password: a\nweb_password: b\n")
    assert "secrets.yml at line 2, column 1: key 'web_password' appears twice" in msg


def test_web_password_longer_than_bcrypt_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msg = secrets_error(tmp_path, monkeypatch, b"web_password: '" + b"x" * 73 + b"'\n")
    assert "secret 'web_password' for host h: is 73 bytes long; bcrypt uses at most 72" in msg


def test_a_secret_with_a_line_break(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msg = secrets_error(tmp_path, monkeypatch, b'web_password: "pw\\n-o /etc/passwd"\n')
    assert "secret 'web_password' for host h: contains a line break" in msg and "passwd" not in msg


def test_inventory_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_bytes(HOSTS.encode() + b"# caf\xe9\n")
    with pytest.raises(InventoryError, match=r"hosts\.yml: not UTF-8 text \(byte 0xe9 on line 6\)"):
        load_inventory(tmp_path / "hosts.yml")


def test_inventory_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = HOSTS + "  h: {address: other.invalid}\n"
    (tmp_path / "hosts.yml").write_text(text)
    with pytest.raises(InventoryError, match=r"hosts\.yml at line 6, column 3: key 'h' appears twice"):
        load_inventory(tmp_path / "hosts.yml")


def test_ssh_key_as_a_list(tmp_path: Path) -> None:
    text = HOSTS.replace("secrets_file: SECRETS", "ssh: {key: [a, b]}")
    (tmp_path / "hosts.yml").write_text(text)
    with pytest.raises(InventoryError, match=r"hosts\.h\.ssh\.key: expected text, got list"):
        load_inventory(tmp_path / "hosts.yml")


def test_out_is_an_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-12345")
    inv_ = inventory(tmp_path)
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutDirError, match=r"--out .*out: .*out is an existing file, not a directory"):
        render_to_dir(inv_, [inv_.host("h")], tmp_path / "out")
