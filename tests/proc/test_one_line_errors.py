"""Issue 9 §3 as a user meets it: `inv` in a new process, one line naming the file/field/flag, exit 2
(the rest: tests/pure/test_one_line_errors.py)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import inv
from tests.pure.test_one_line_errors import inventory


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
