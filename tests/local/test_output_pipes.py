"""Printing never stops the work, end to end in real processes (issue #30, finding 3): `inv` with its stdout
closed by the reader (`| head -1`) and with an ASCII output encoding. The hosts are fake connections
inside the child process (no SSH, no lab); the streams, the pipe and the interpreter's exit are real."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests import helpers

CHILD = textwrap.dedent('''
    import sys, textwrap, tempfile, pathlib, os
    import tasks  # the top: installs the safe stdout as `inv` does
    from fabfile.config.inventory import load_inventory
    from fabfile.deploy import runner
    from fabfile.deploy.steps.base import StepResult

    class FakeConn:
        def __init__(self, host):
            self.host = host.address
        def close(self):
            pass

    ran = []
    def make(name):
        def step(conn, host, ctx):
            for i in range(300):  # far more than a pipe holds
                ctx.log(f"{name} line {i}: prometheus … alertmanager → ✓")
            ran.append((host.name, name))
            return StepResult(name, "failed" if host.name == "b" and name == "verify" else "ok", "…")
        return step

    folder = pathlib.Path(tempfile.mkdtemp())
    (folder / "hosts.yml").write_text(textwrap.dedent("""
        defaults:
          receivers:
            email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25", auth_username: u}
        hosts:
          a: {address: 127.0.0.1, secrets_file: none.yml}
          b: {address: 127.0.0.2, secrets_file: none.yml}
    """))
    inv = load_inventory(folder / "hosts.yml")
    steps = [(n, make(n)) for n in ("install", "configs", "verify")]
    code = runner.run(inv, inv.select("a,b"), steps, connector=FakeConn, parallel=2)
    sys.stderr.write(f"ran {len(ran)}\\n")
    sys.exit(code)
''')


def child(env: dict[str, str], close_stdout: bool) -> tuple[int, str, bytes]:
    full = {**os.environ, "ROSEY_WEB_PASSWORD": "w-S3cret", "ROSEY_SMTP_PASSWORD": "s-S3cret", **env}
    p = subprocess.Popen([sys.executable, "-c", CHILD], cwd=helpers.REPO, env=full,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    out = b""
    if close_stdout:
        out = p.stdout.readline()  # `| head -1`
        p.stdout.close()
    else:
        out = p.stdout.read()
    err = p.stderr.read().decode()
    return p.wait(timeout=120), err, out


def test_a_reader_that_goes_away_stops_the_printing_not_the_hosts():
    code, err, first = child({"PYTHONIOENCODING": "utf-8"}, close_stdout=True)
    assert first  # the reader saw the first line
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert "ran 6" in err  # every step on both hosts
    assert code == 1  # host b's verify failed


def test_an_ascii_stdout_gets_escapes_and_every_step_runs():
    code, err, out = child({"PYTHONIOENCODING": "ascii"}, close_stdout=False)
    assert "Traceback" not in err, err
    assert "ran 6" in err and code == 1
    text = out.decode("ascii")
    assert "\\u2026" in text and "\\u2192" in text and "recap:" in text


def test_inv_list_into_a_closed_pipe_is_quiet():
    p = subprocess.Popen([*helpers.INV, "--list"], cwd=helpers.REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # closed before invoke prints its list
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0
    assert err == ""


def test_inv_sortie6_dry_run_on_an_ascii_or_latin1_stdout_reports_every_host(tmp_path):
    """The real `inv sortie6 --dry-run` path: two hosts whose SSH ports refuse on loopback, so each one's
    failure line (with its em dash) is printed; the host thread must not die on printing it."""
    (tmp_path / "hosts.yml").write_text(textwrap.dedent("""
        defaults:
          receivers:
            email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25", auth_username: u}
        hosts:
          a: {address: 127.0.0.1, ssh: {port: 1}, secrets_file: none.yml}
          b: {address: 127.0.0.1, ssh: {port: 2}, secrets_file: none.yml}
    """))
    for encoding in ("ascii", "latin-1"):
        env = {"ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "ROSEY_WEB_PASSWORD": "w-S3cret-pw",
               "ROSEY_SMTP_PASSWORD": "s-S3cret-pw", "PYTHONIOENCODING": encoding}
        p = helpers.inv("sortie6", "--dry-run", "-H", "a,b", env=env, timeout=120)
        assert p.returncode == 1 and "Traceback" not in p.stderr and "UnicodeEncodeError" not in p.stdout
        for h, port in (("a", 1), ("b", 2)):
            assert (f"[{h}] install-prometheus: FAILED \\u2014 cannot connect to host {h} "
                    f"(127.0.0.1:{port}): connection refused") in p.stdout
        assert "recap:" in p.stdout
