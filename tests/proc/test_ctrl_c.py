"""Issue 30 §10 with real signals: a process runs two hosts whose step takes long (fake connections, no
server), gets SIGINT once, then twice; what it prints and its exit code (fakes: tests/pure/test_ctrl_c.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

SCRIPT = """
import sys, textwrap, time
from pathlib import Path
from fabfile.config.inventory import load_inventory
from fabfile.deploy import runner
from fabfile.deploy.steps.base import StepResult
from tests.fakes import LocalConn

d = Path(sys.argv[1])
(d / "hosts.yml").write_text(textwrap.dedent('''
    defaults:
      receivers: {email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}}
      web: {allow_from: [10.0.0.0/8]}
    hosts:
      a: {address: 127.0.0.1, secrets_file: none.yml}
      b: {address: 127.0.0.2, secrets_file: none.yml}
'''))
inv = load_inventory(d / "hosts.yml")
seconds = float(sys.argv[2])

def slow(conn, host, ctx):
    (d / f"in-{host.name}").touch()
    time.sleep(seconds)  # a long remote command, as far as the runner can tell
    return StepResult("install-prometheus", "changed", "installed")

def never(conn, host, ctx):
    (d / f"configs-{host.name}").touch()
    return StepResult("deploy-configs", "ok", "")

sys.exit(runner.run(inv, inv.select("a,b"), [("install-prometheus", slow), ("deploy-configs", never)],
                    connector=LocalConn.to))
"""


@pytest.fixture(autouse=True)
def _sigint_as_at_a_terminal():
    """A shell's background job (`cmd &`, as a CI script may start the suite) ignores SIGINT, and the
    processes it starts inherit that: these tests press Ctrl-C as a person at a terminal does, so the
    processes they start must not ignore it (a handler, unlike SIG_IGN, is not inherited)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _start(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "ROSEY_WEB_PASSWORD": "pw-long-enough", "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-u", "-c", SCRIPT, str(tmp_path), str(seconds)], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not ((tmp_path / "in-a").exists() and (tmp_path / "in-b").exists()):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0]
        time.sleep(0.05)
    time.sleep(0.2)
    return p


def test_one_sigint_finishes_the_running_step_skips_the_rest_and_prints_the_recap(tmp_path: Path) -> None:
    p = _start(tmp_path, seconds=2)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    print(out)
    assert p.returncode == 130
    assert "Ctrl-C: no new step starts; finishing the current one on: " in out
    assert "a (install-prometheus)" in out and "b (install-prometheus)" in out
    assert "[a] install-prometheus: changed" in out and "recap:" in out
    assert "stopped by Ctrl-C: a before deploy-configs, b before deploy-configs" in out
    assert not list(tmp_path.glob("configs-*")) and "Traceback" not in out


def test_a_second_sigint_leaves_at_once(tmp_path: Path) -> None:
    p = _start(tmp_path, seconds=60)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    print(out)
    assert time.monotonic() - started < 10  # not the step's 60 s
    assert p.returncode == 130 and "Traceback" not in out
    assert "Ctrl-C again: leaving now, without waiting for: " in out
    assert "holds its deploy lock until done" in out and "recap:" not in out


def test_inv_sortie6_on_two_hosts_that_never_answer_leaves_at_the_second_ctrl_c(tmp_path: Path) -> None:
    """The real task: both hosts hang in the SSH handshake (a loopback listener that never speaks), so each
    is inside its first step; Ctrl-C once names them, twice leaves without waiting out the banner wait."""
    import socket

    from tests.helpers import INV

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    (tmp_path / "hosts.yml").write_text(
        "defaults:\n"
        "  receivers: {email: {to: [a@b.test], from: c@b.test, smarthost: 'localhost:25'}}\n"
        "  web: {allow_from: [10.0.0.0/8]}\n"
        f"  ssh: {{port: {port}}}\n"
        "hosts:\n  a: {address: 127.0.0.1}\n  b: {address: 127.0.0.1}\n")
    env = {**os.environ, "ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "HOME": str(tmp_path),
           "ROSEY_WEB_PASSWORD": "pw-long-enough"}
    p = subprocess.Popen([*INV, "sortie6", "-H", "a,b", "--dry-run"], cwd=REPO, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        accepted = []
        silent.settimeout(1)
        while len(accepted) < 2 and time.monotonic() < deadline:  # both hosts are in the handshake
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                assert p.poll() is None, p.communicate()[0]
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        time.sleep(1)
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=20)
    finally:
        p.kill()
        silent.close()
    print(out)
    assert time.monotonic() - started < 10 and p.returncode == 130
    assert "Ctrl-C: no new step starts; finishing the current one on: " in out
    assert "a (install-prometheus)" in out and "b (install-prometheus)" in out
    assert "Ctrl-C again: leaving now" in out and "Traceback" not in out
