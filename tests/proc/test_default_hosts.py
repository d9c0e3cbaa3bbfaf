"""`inv` itself without -H, in a new process: the default hosts' notice and the drill's refusal of a
default production host (the rest: tests/pure/test_default_hosts.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import inv_on_loopback_inventory
from tests.pure.test_default_hosts import inventory


def inv_cli(tmp_path: Path, *args: str, default: str) -> subprocess.CompletedProcess[str]:
    return inv_on_loopback_inventory(tmp_path, inventory(tmp_path, default=default), *args, timeout=60)


def test_cli_test_alert_refuses_default_production_before_connecting(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "test-alert", default="default_hosts: prod")
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [
        "error: hosts.yml: default_hosts selects prod (env production); the drill never runs on production "
        "by default — name it with -H prod if you mean it; nothing was changed"]
    assert p.stdout == ""  # not even the notice: nothing was attempted


def test_cli_verify_without_h_names_the_default_first(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "verify", default="default_hosts: test")
    assert p.stdout.splitlines()[0] == "hosts: test (default_hosts in hosts.yml; -H NAME to choose others)"
    assert p.returncode == 1  # it really tried the default host (nothing listens there)
    assert "[test]" in p.stdout and "[prod]" not in p.stdout


def test_cli_status_json_keeps_the_notice_off_stdout(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "status", "--json", default="default_hosts: test")
    assert p.stderr.splitlines()[0] == "hosts: test (default_hosts in hosts.yml; -H NAME to choose others)"
    assert not p.stdout.startswith("hosts:")
