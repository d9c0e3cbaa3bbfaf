"""Issue 9 §1: the server's SSH host key is verified before any command or upload.

A real Paramiko SSH server on loopback (an "impostor": it accepts any login and records everything it is
asked) stands in for the server. Unknown and changed keys are refused with one line showing the fingerprint,
and the impostor sees no login, no command and no file; a pinned or known key connects.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import threading
from pathlib import Path

import paramiko
import pytest

from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.deploy import runner
from fabfile.deploy.steps.base import StepResult
from fabfile.ssh import host_keys
from fabfile.ssh.connection import connect
from fabfile.ssh.host_keys import HostKeyError, fingerprint
from tests.helpers import inv


class Impostor(paramiko.ServerInterface):
    """Says yes to everything and writes down what the client asked for."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password,none"

    def check_auth_none(self, username: str) -> int:
        self.log.append(f"login {username}")
        return paramiko.AUTH_SUCCESSFUL

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.log.append(f"login {username}")
        return paramiko.AUTH_SUCCESSFUL

    def check_auth_password(self, username: str, password: str) -> int:
        self.log.append(f"password {username}")
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.log.append(f"exec {command.decode(errors='replace')}")

        def finish() -> None:  # after the reply to the request: exit 0, then close
            channel.send_exit_status(0)
            channel.close()

        threading.Timer(0.05, finish).start()
        return True

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        self.log.append(f"subsystem {name}")
        return False


@pytest.fixture
def impostor():
    """(port, server key, log) of an SSH server on 127.0.0.1 that serves until the test ends."""
    key = paramiko.Ed25519Key(filename=_keygen())
    log: list[str] = []
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)
    stop = threading.Event()
    transports = []

    def serve() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                sock, _ = lsock.accept()
            except OSError:
                continue
            t = paramiko.Transport(sock)
            t.add_server_key(key)
            transports.append(t)
            try:
                t.start_server(server=Impostor(log))
            except (paramiko.SSHException, EOFError, OSError):  # a client that hung up (reset): serve on
                continue

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield lsock.getsockname()[1], key, log
    stop.set()
    th.join(5)
    for t in transports:
        t.close()
    lsock.close()


_KEYS: list[str] = []


def _keygen() -> str:
    import tempfile

    d = tempfile.mkdtemp()
    path = f"{d}/k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    _KEYS.append(path)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own: the test's ~/.ssh/known_hosts, never the user's."""
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


def inventory(tmp_path: Path, port: int, ssh_extra: str = ""):
    (tmp_path / "k").write_text("")  # never read: the impostor accepts any login
    client_key = _keygen()
    text = f"""\
defaults:
  receivers:
    email: {{to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}}
hosts:
  prod: {{address: 127.0.0.1, ssh: {{port: {port}, key: {client_key}{ssh_extra}}}, secrets_file: none.yml}}
"""
    (tmp_path / "hosts.yml").write_text(text)
    return load_inventory(tmp_path / "hosts.yml")


def attempt(host) -> None:
    """What every step does first: a command, and an upload."""
    conn = connect(host, connect_timeout=5)
    try:
        conn.run("echo secret-root-command", hide=True, in_stream=False)
        conn.put(io.BytesIO(b"smtp password"), "/tmp/secret")
    finally:
        conn.close()


def test_unknown_key_is_refused_with_its_fingerprint_and_nothing_is_sent(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    host = inventory(tmp_path, port).host("prod")
    with pytest.raises(HostKeyError) as e:
        attempt(host)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"unknown host key ssh-ed25519 {fingerprint(key)}; nothing was sent" in msg
    assert "inv host-key -H prod --accept" in msg and f"ssh.host_key: {fingerprint(key)}" in msg
    assert log == []  # no login, no command, no file


def test_changed_key_is_refused(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    other = paramiko.Ed25519Key(filename=_keygen())
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{port} ssh-ed25519 {other.get_base64()}\n")
    host = inventory(tmp_path, port).host("prod")
    shown = re.escape(fingerprint(key))  # base64: `+` and `/` are not literal in a pattern
    with pytest.raises(HostKeyError, match=rf"HOST KEY CHANGED: the server shows ssh-ed25519 "
                                           rf"{shown}.*ssh-keygen -R '\[127.0.0.1\]:{port}'"):
        attempt(host)
    assert log == []


def test_changed_key_behind_a_latin1_comment_is_refused(impostor, home, tmp_path) -> None:
    """Issue 30 §2: one non-UTF-8 line used to hide the whole file, so the impostor looked merely unknown."""
    port, key, log = impostor
    other = paramiko.Ed25519Key(filename=_keygen())
    (home / ".ssh/known_hosts").write_bytes(b"# serveur install\xe9 en 2024\n" + f"[127.0.0.1]:{port} "
                                            f"ssh-ed25519 {other.get_base64()}\n".encode())
    host = inventory(tmp_path, port).host("prod")
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        attempt(host)
    assert log == []


def test_pin_in_hosts_yml_that_does_not_match_is_refused(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    other = paramiko.Ed25519Key(filename=_keygen())
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{port} ssh-ed25519 {key.get_base64()}\n")
    host = inventory(tmp_path, port, f", host_key: '{fingerprint(other)}'").host("prod")
    with pytest.raises(HostKeyError, match="HOST KEY MISMATCH.*hosts.prod.ssh.host_key says"):
        attempt(host)  # the pin wins over known_hosts
    assert log == []


@pytest.mark.parametrize("form", ["fingerprint", "public key"])
def test_pinned_key_connects(impostor, home, tmp_path, form: str) -> None:
    port, key, log = impostor
    pin = fingerprint(key) if form == "fingerprint" else f"ssh-ed25519 {key.get_base64()}"
    host = inventory(tmp_path, port, f", host_key: '{pin}'").host("prod")
    conn = connect(host, connect_timeout=5)
    try:
        assert conn.run("echo hi", hide=True, warn=True, in_stream=False).exited == 0
    finally:
        conn.close()
    assert log[0].startswith("login ") and log[-1] == "exec echo hi"


def test_key_in_known_hosts_connects_even_hashed(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    kh = home / ".ssh/known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} ssh-ed25519 {key.get_base64()}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True)  # |1|... entries
    assert "127.0.0.1" not in kh.read_text()
    host = inventory(tmp_path, port).host("prod")
    conn = connect(host, connect_timeout=5)
    try:
        conn.run("true", hide=True, in_stream=False)
    finally:
        conn.close()
    assert log[-1] == "exec true"


def test_user_known_hosts_file_from_ssh_config(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    (home / "kh").write_text(f"[127.0.0.1]:{port} ssh-ed25519 {key.get_base64()}\n")
    (home / ".ssh/config").write_text(f"Host 127.0.0.1\n  UserKnownHostsFile {home}/kh\n")
    host = inventory(tmp_path, port).host("prod")
    conn = connect(host, connect_timeout=5)
    try:
        conn.run("true", hide=True, in_stream=False)
    finally:
        conn.close()
    assert log[-1] == "exec true"


def test_a_bad_pin_is_an_inventory_error(tmp_path) -> None:
    with pytest.raises(InventoryError, match=r"hosts\.prod\.ssh\.host_key: expected a public key line"):
        inventory(tmp_path, 22, ", host_key: 'SHA256:nope'")


def test_the_runner_stops_at_the_refusal_and_the_impostor_gets_nothing(impostor, home, tmp_path,
                                                                      monkeypatch) -> None:
    port, key, log = impostor
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-12345")
    inv_ = inventory(tmp_path, port)

    def step(session, host, ctx):
        session.conn.run("echo would-be-root", hide=True, in_stream=False)
        return StepResult("s", "changed", "ran")

    out = io.StringIO()
    code = runner.run(inv_, [inv_.host("prod")], [("s1", step), ("s2", step)], stream=out)
    assert code != 0 and log == []
    text = out.getvalue()
    assert f"unknown host key ssh-ed25519 {fingerprint(key)}" in text
    assert text.count("unknown host key") == 1  # s2 was not tried against the same server


def test_host_key_task_shows_then_records_only_when_asked(impostor, home, tmp_path) -> None:
    port, key, log = impostor
    inventory(tmp_path, port)
    env = {"ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "HOME": str(home)}
    shown = inv("host-key", "-H", "prod", env=env, timeout=60)
    assert shown.returncode == 0 and fingerprint(key) in shown.stdout and "--accept" in shown.stdout
    assert not (home / ".ssh/known_hosts").exists()
    accepted = inv("host-key", "-H", "prod", "--accept", env=env, timeout=60)
    assert accepted.returncode == 0
    assert (home / ".ssh/known_hosts").read_text() == f"[127.0.0.1]:{port} ssh-ed25519 {key.get_base64()}\n"
    assert log == []  # reading the key is the handshake only: no login
    host = load_inventory(tmp_path / "hosts.yml").host("prod")
    host_keys.check(host, key)  # now known: accepted without a pin


def test_a_lab_host_is_pinned_to_the_image_key_the_lab_registers(impostor, home, tmp_path, monkeypatch):
    """The lab pins its hosts through `register_pinned_keys` (fabfile/ssh never imports the lab): with the
    image's host key it connects without known_hosts; without it, known_hosts decides as for any host."""
    import fabfile.lab  # noqa: F401  (registers its pin provider, as tasks.py's `inv lab.*` import does)

    port, key, _ = impostor
    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path / "cache"))
    inv = inventory(tmp_path, port, "}, lab_vm: {")  # `prod` with a `lab_vm` section: a lab host
    lab = inv.host("prod")
    assert lab.is_lab and host_keys.pin_of(lab) is None  # no image key yet
    with pytest.raises(HostKeyError, match="unknown host key"):
        attempt(lab)
    pub = tmp_path / "cache" / "ssh_host_ed25519_key.pub"
    pub.write_text(f"{key.get_name()} {key.get_base64()} rosey-lab-host\n")
    assert host_keys.pin_of(lab) == host_keys.Pin(fingerprint(key), f"the lab image's host key ({pub})")
    conn = connect(lab, connect_timeout=5)
    try:
        assert conn.run("echo hi", hide=True, warn=True, in_stream=False).exited == 0
    finally:
        conn.close()
    real = inventory(tmp_path, port).host("prod")
    assert not real.is_lab and host_keys.pin_of(real) is None  # a real host: hosts.yml or known_hosts only
