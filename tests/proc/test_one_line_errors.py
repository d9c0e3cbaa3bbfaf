"""Issue 9 §3 as a user meets it: `inv` in a new process, one line naming the file/field/flag, exit 2
(the rest: tests/pure/test_one_line_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import inv
from tests.pure.test_one_line_errors import HOSTS, inventory


def _one_line_exit_2(p, expected: str) -> None:
    assert p.returncode == 2, p.stdout
    assert "Traceback" not in p.stdout
    assert p.stderr.strip().count("\n") == 0 and expected in p.stderr


def test_cli_inventory_is_a_directory(tmp_path: Path) -> None:
    p = inv("render", "-H", "h", env={"ROSEY_INVENTORY": str(tmp_path)})
    _one_line_exit_2(p, f"error: {tmp_path}: is a directory, expected a YAML file")


def test_cli_test_alert_timeout_not_a_number(tmp_path: Path) -> None:
    inventory(tmp_path)
    p = inv("test-alert", "-H", "h", "--timeout", "abc", env={"ROSEY_INVENTORY": str(tmp_path / "hosts.yml")})
    _one_line_exit_2(p, "error: --timeout 'abc': expected a number of seconds, 0 or more")


def test_cli_test_alert_timeout_negative(tmp_path: Path) -> None:
    inventory(tmp_path)
    p = inv("test-alert", "-H", "h", "--timeout=-5", env={"ROSEY_INVENTORY": str(tmp_path / "hosts.yml")})
    _one_line_exit_2(p, "error: --timeout '-5': expected a number of seconds, 0 or more")


def test_cli_render_out_is_a_file(tmp_path: Path) -> None:
    inventory(tmp_path)
    (tmp_path / "f").write_text("x")
    p = inv("render", "-H", "h", "--out", str(tmp_path / "f"),
            env={"ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "ROSEY_WEB_PASSWORD": "pw-12345"})
    _one_line_exit_2(p, "is an existing file, not a directory; pick another with --out")


def test_paramiko_error_records_do_not_reach_the_terminal() -> None:
    """A tunnel channel refused while a service starts is handled (and reported) by us; paramiko's own
    ERROR record would otherwise be printed by Python's last-resort handler. A fresh interpreter: pytest's
    own log capture would hide the difference."""
    import subprocess
    import sys

    code = ("import logging{imp}\n"
            "logging.getLogger('paramiko.transport').error('Secsh channel 0 open FAILED: refused')\n")
    bare = subprocess.run([sys.executable, "-c", code.format(imp="")], capture_output=True, text=True)
    assert "Secsh" in bare.stderr  # what a user saw before
    ours = subprocess.run([sys.executable, "-c", code.format(imp="; import fabfile.ssh.connection")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert ours.returncode == 0 and "Secsh" not in ours.stderr, ours.stderr


# ---- issue 30 §8: what Invoke or int() turned into a traceback (the whole pass: bench/adversarial_inputs.py)

BIG = "1" * 5000


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    inventory(tmp_path)
    return {"ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "ROSEY_WEB_PASSWORD": "pw-12345", **extra}


DRY = ("sortie6", "-H", "h", "--dry-run")


@pytest.mark.parametrize(("args", "expected"), [
    ((*DRY, "--parallel", "abc"), "error: --parallel 'abc': expected a number of hosts at once"),
    ((*DRY, "--parallel", BIG), "error: --parallel '111111111111111111111111'... (5000 characters)"),
    (("status", "-H", "h", "--watch=-5"), "error: --watch '-5': expected seconds between refreshes"),
    (("ui", "-H", "h", "--prometheus-port", "70000"),
     "error: --prometheus-port '70000': expected a local TCP port, 1 to 65535"),
    (("silence", "-H", "h", "--duration", "999999d", "--comment", "x", "alertname=BotDown"),
     "error: bad duration '999999d': at most 365d"),
])
def test_cli_flags_that_invoke_or_int_crashed_on(tmp_path: Path, args: tuple[str, ...],
                                                 expected: str) -> None:
    p = inv(*args, env=_env(tmp_path))
    _one_line_exit_2(p, expected)


def test_cli_a_5000_digit_port_in_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(HOSTS.replace("SECRETS", "s.yml").replace(
        "h: {address: h.invalid,", f"h: {{address: h.invalid, ssh: {{port: {BIG}}},"))
    p = inv("render", "-H", "h", "--out", str(tmp_path / "o"),
            env={"ROSEY_INVENTORY": str(tmp_path / "hosts.yml"), "ROSEY_WEB_PASSWORD": "pw-12345"})
    _one_line_exit_2(p, "error: hosts.yml: hosts.h.ssh.port: 5000 digits is more than any setting takes")


def test_cli_a_password_variable_that_is_not_utf8(tmp_path: Path) -> None:
    """Bytes in the environment: subprocess hands them over as they are."""
    import os
    import subprocess

    from tests.helpers import INV, REPO

    env = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    env.update({k.encode(): v.encode() for k, v in _env(tmp_path).items()})
    env[b"ROSEY_WEB_PASSWORD"] = b"pass\xffword-long"
    p = subprocess.run([*INV, "sortie6", "-H", "h", "--dry-run"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stdout + p.stderr
    assert "error: ROSEY_WEB_PASSWORD is not UTF-8 text; set it again" in p.stdout
    assert "word-long" not in p.stdout + p.stderr
