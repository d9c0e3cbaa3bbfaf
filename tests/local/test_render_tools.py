"""`inv render`'s checks use a tool that knows the host's release: this machine's, or the release's own.

This machine has Debian 12's promtool 2.42.0 / amtool 0.25.0. For a host targeting a newer release whose
archive is here (the lab's), the checks run with that release's own promtool/amtool, said in one line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fabfile.config import local_tools
from fabfile.config.checks import validate_rendered
from tests.local.release_bins import lab_releases, render_host


@pytest.fixture(scope="module", autouse=True)
def _archives() -> None:
    lab_releases()  # the lab's archives are where the newer tools come from


def _validate(tmp_path: Path, prom: str, am: str) -> tuple[list[str], list]:
    h = render_host(tmp_path, prom, am)
    lines: list[str] = []
    verdicts = validate_rendered(h.rendered, h.host, lambda s: s, echo=lines.append)
    return lines, verdicts


def test_newer_target_is_checked_with_its_own_tools(tmp_path: Path) -> None:
    local = {s: local_tools.tool_version(t) for s, t in local_tools.TOOL_OF.items()}
    assert local == {"prometheus": "2.42.0", "alertmanager": "0.25.0"}, "this test assumes Debian 12's tools"
    lines, verdicts = _validate(tmp_path, "3.5.3", "0.33.1")
    notes = [line for line in lines if "note:" in line]
    assert notes == [
        "  note: h: promtool 2.42.0 here, prometheus 3.5.3 targeted: checking with 3.5.3's own promtool "
        "from its release archive",
        "  note: h: amtool 0.25.0 here, alertmanager 0.33.1 targeted: checking with 0.33.1's own amtool "
        "from its release archive"]
    assert all(v.status == "pass" for v in verdicts), lines
    for v in verdicts:
        out = subprocess.run([v.check.tool, "--version"], capture_output=True, text=True)
        assert ("3.5.3" if "promtool" in v.check.tool else "0.33.1") in out.stdout + out.stderr


def test_local_amtool_cannot_parse_what_the_release_tool_accepts(tmp_path: Path) -> None:
    """The point of the switch: amtool 0.25 rejects the webhook `url_file` that 0.28.1 runs with."""
    lines, verdicts = _validate(tmp_path, "2.53.3", "0.28.1")
    amtool = next(v for v in verdicts if v.check.name == "amtool check-config")
    assert amtool.status == "pass" and amtool.check.tool != "amtool"
    local = subprocess.run(["amtool", "check-config", amtool.check.argv[-1].replace(
        str(Path(amtool.check.argv[-1]).parent), str(tmp_path / "base"))], capture_output=True, text=True)
    assert local.returncode != 0 and "url_file" in local.stdout + local.stderr


def test_no_archive_for_the_target_says_so_and_checks_locally(tmp_path: Path) -> None:
    lines, verdicts = _validate(tmp_path, "2.48.0", "0.25.0")
    notes = [line for line in lines if "note:" in line]
    assert notes == [
        "  note: h: promtool 2.42.0 here is older than prometheus 2.48.0 and no 2.48.0 archive is on "
        "this machine: checked with 2.42.0 (set prometheus.source: upload and run a deploy once, or put the "
        "archive in prometheus.archive_dir, to check with 2.48.0)"]
    assert {v.check.tool for v in verdicts} == {"promtool", "amtool"}
