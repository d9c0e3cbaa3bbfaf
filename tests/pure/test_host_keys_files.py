"""Issue 30 §2: known_hosts is read line by line as bytes; one bad line is skipped and named, never the file.

A Latin-1 comment used to make the whole file unread (a changed key then looked unknown and `--accept`
appended it); a corrupt key line for another host crashed every deploy with a ValueError.
"""

from __future__ import annotations

import base64
import io
import re
import struct
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fabfile.config.inventory import load_inventory
from fabfile.output import Output
from fabfile.ssh import host_key_task, host_keys
from fabfile.ssh.host_keys import HostKeyError, fingerprint


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def new_key() -> paramiko.PKey:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return paramiko.PKey.from_type_string("ssh-ed25519", _string(b"ssh-ed25519") + _string(raw))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


@pytest.fixture
def host(tmp_path: Path):
    (tmp_path / "hosts.yml").write_text("""\
defaults:
  receivers:
    email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}
hosts:
  prod: {address: 192.0.2.10, ssh: {port: 2222}, secrets_file: none.yml}
""")
    return load_inventory(tmp_path / "hosts.yml").host("prod")


def run_task(monkeypatch, host, key, accept: bool) -> tuple[int, str, str]:
    monkeypatch.setattr(host_keys, "server_key", lambda h, timeout=None: key)
    stream = io.StringIO()
    code = host_key_task.cli_host_key([host], accept, Output(stream=stream))
    text = stream.getvalue()
    errors = "".join(ln + "\n" for ln in text.splitlines() if ln.startswith("error: "))
    return code, text, errors


def test_a_latin1_comment_does_not_hide_a_changed_key(home, host, monkeypatch) -> None:
    old, impostor = new_key(), new_key()
    kh = home / ".ssh/known_hosts"
    kh.write_bytes(b"# serveur de production, install\xe9 en 2024\n"
                   + f"[192.0.2.10]:2222 ssh-ed25519 {old.get_base64()} ".encode() + b"cl\xe9 de prod\n")
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        host_keys.check(host, impostor)
    host_keys.check(host, old)  # the real key is still trusted
    before = kh.read_bytes()
    code, out, err = run_task(monkeypatch, host, impostor, accept=True)
    assert code == 1 and "HOST KEY CHANGED" in err and "recorded" not in out
    assert kh.read_bytes() == before  # never appended


def test_a_corrupt_key_line_for_another_host_is_skipped_and_named(home, host, monkeypatch) -> None:
    key = new_key()
    corrupt = base64.b64encode(_string(b"ssh-ed25519") + _string(b"short")).decode()
    kh = home / ".ssh/known_hosts"
    kh.write_text(f"other.example ssh-ed25519 {corrupt}\n[192.0.2.10]:2222 ssh-ed25519 {key.get_base64()}\n")
    host_keys.check(host, key)  # no ValueError: the deploy connects
    code, out, err = run_task(monkeypatch, host, key, accept=False)
    assert code == 0 and "Traceback" not in out + err
    assert f"skipped {kh} line 1 (corrupt ssh-ed25519 key" in out and "already trusted" in out


def test_accept_is_refused_while_a_line_cannot_be_read(home, host, monkeypatch) -> None:
    key = new_key()
    kh = home / ".ssh/known_hosts"
    kh.write_bytes(b"other.example ssh-ed25519 !!notbase64!!\n")
    with pytest.raises(HostKeyError, match=rf"unknown host key.*\(first fix {kh} line 1 \(the key is not"):
        host_keys.check(host, key)  # the bad line names another host: this one is simply unknown
    code, out, err = run_task(monkeypatch, host, key, accept=True)
    assert code == 1 and err.count("\n") == 1
    assert f"not recorded: {kh} line 1 (the key is not valid base64) could not be read" in err
    assert kh.read_bytes() == b"other.example ssh-ed25519 !!notbase64!!\n"


def test_an_unreadable_line_that_may_be_this_hosts_is_not_unknown(home, host) -> None:
    kh = home / ".ssh/known_hosts"
    kh.write_bytes(b"[192.0.2.10]:2222,h\xe9te ssh-ed25519 AAAA\n")
    why = rf"cannot be checked: {kh} line 1 \(the host names are not UTF-8\)"
    with pytest.raises(HostKeyError, match=why):
        host_keys.check(host, new_key())


def test_host_key_alias_is_read_and_written(home, host, monkeypatch) -> None:
    key = new_key()
    (home / ".ssh/config").write_text("Host 192.0.2.10\n  HostKeyAlias prod-box\n")
    code, out, _ = run_task(monkeypatch, host, key, accept=True)
    assert code == 0 and "recorded in" in out
    assert (home / ".ssh/known_hosts").read_text() == f"prod-box ssh-ed25519 {key.get_base64()}\n"
    host_keys.check(host, key)
    with pytest.raises(HostKeyError, match=r"HOST KEY CHANGED.*ssh-keygen -R 'prod-box'"):
        host_keys.check(host, new_key())


def test_a_revoked_key_is_refused(home, host) -> None:
    key = new_key()
    (home / ".ssh/known_hosts").write_text(f"[192.0.2.10]:2222 ssh-ed25519 {key.get_base64()}\n"
                                           f"@revoked * ssh-ed25519 {key.get_base64()}\n")
    with pytest.raises(HostKeyError, match=re.escape(f"REVOKED HOST KEY ssh-ed25519 {fingerprint(key)}")):
        host_keys.check(host, key)


def test_a_known_hosts_that_is_a_directory_blocks_accept_and_is_named(home, host, monkeypatch) -> None:
    """A member of the class the issue did not list: the whole file unreadable (not one line)."""
    (home / ".ssh/known_hosts").mkdir()
    code, out, err = run_task(monkeypatch, host, new_key(), accept=True)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in out
    assert f"cannot be checked: {home}/.ssh/known_hosts line 0 (cannot read the file: Is a directory)" in err
    assert "recorded" not in out


def test_a_hashed_line_with_a_broken_salt_is_not_a_crash(home, host) -> None:
    key = new_key()
    kh = home / ".ssh/known_hosts"
    kh.write_text(f"|1|!!|!! ssh-ed25519 {new_key().get_base64()}\n[192.0.2.10]:2222 ssh-ed25519 "
                  f"{key.get_base64()}\n")
    host_keys.check(host, key)  # the broken hashed line names no host we can read: ours is still trusted
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        host_keys.check(host, new_key())
