"""`inv` in a new process with groups and patterns (issue 33 §4): the first line names the hosts a group or
pattern picked, bad -H is one line and exit 2 before anything connects, the drill refuses a production host
a pattern swept in. Every host is 127.0.0.1:1, where nothing listens: nothing but loopback is contacted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import inv_on_loopback_inventory
from tests.pure.test_fleets import GROUPS, inv_file


def inv_cli(tmp_path: Path, *args: str, top: str = GROUPS) -> subprocess.CompletedProcess[str]:
    return inv_on_loopback_inventory(tmp_path, inv_file(tmp_path, top), *args)


def recap(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = lines.index("recap:")
    return [ln.split()[0] for ln in lines[start + 1:] if ln.startswith("  ") and "ok=" in ln]


def test_sortie6_dry_run_on_a_pattern_names_the_hosts_first_and_recaps_each(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "sortie6", "--dry-run", "-H", "bot-*", "--parallel", "2")
    assert p.stdout.splitlines()[0] == "hosts: bot-a,bot-b,bot-c (pattern 'bot-*' in hosts.yml)", p.stderr
    assert p.returncode == 1  # each host was tried (nothing listens on 127.0.0.1:1)
    assert recap(p.stdout) == ["bot-a", "bot-b", "bot-c"]  # all failed: the inventory's order
    assert "[db-1]" not in p.stdout


def test_verify_on_a_group_runs_only_its_hosts(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "verify", "-H", "group:fleet")
    assert p.stdout.splitlines()[0] == "hosts: bot-a,bot-c (group fleet in hosts.yml)", p.stderr
    assert recap(p.stdout) == ["bot-a", "bot-c"] and p.returncode == 1


def test_a_pattern_matching_nothing_is_one_line_before_anything_connects(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "sortie6", "-H", "web-*,bot-a")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == ["error: hosts.yml: -H web-*: the pattern matches no host alias; hosts: "
                                     "bot-a, bot-b, db-1, bot-c"]


def test_a_bad_group_in_hosts_yml_stops_every_command(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "status", "-H", "bot-a", top="groups: {fleet: [bot-a, ghost]}")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == ["error: hosts.yml: groups.fleet[1]: unknown host 'ghost'; known hosts: "
                                     "bot-a, bot-b, db-1, bot-c"]


def test_the_drill_refuses_production_a_pattern_swept_in(tmp_path: Path) -> None:
    p = inv_cli(tmp_path, "test-alert", "-H", "bot-*")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "error: hosts.yml: pattern 'bot-*' selects bot-b (env production); the drill never runs on a "
        "production host a group or pattern swept in — add -H ...,bot-b if you mean it, or leave it out; "
        "nothing was changed"]


@pytest.mark.parametrize("given", ["-1", "abc", "101", "99999999999999999999"])
def test_status_refuses_a_parallel_that_is_no_count_of_hosts(tmp_path: Path, given: str) -> None:
    p = inv_cli(tmp_path, "status", "-H", "fleet", "--parallel", given)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        f"error: --parallel {given!r}: expected a number of hosts at once (default 10), 1 to 100 "
        "(0 or none: the default)"]
