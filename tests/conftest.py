"""Shared test setup: tiers marked by folder, what each marker needs (skip locally, fail in CI), lab fixtures.

Never `pytest.skip` or `pytest.mark.skipif` for a missing tool, privilege or file: use a marker from NEEDS
(add one if needed) or `tests.helpers.skip_or_fail`, so CI fails instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fabfile.config.inventory import HostSettings
from tests import rule_coverage
from tests.helpers import ALERTMANAGER_BIN, PROMETHEUS_BIN, fixture_inventory, skip_or_fail
from tests.lab_lanes import lab_lane

TESTS = Path(__file__).resolve().parent

def _on_path(*tools: str) -> Callable[[], list[str]]:
    def missing() -> list[str]:
        gone = [t for t in tools if shutil.which(t) is None]
        return [f"{', '.join(gone)} on PATH (run scripts/bootstrap.sh)"] if gone else []
    return missing


def _files(*paths: str) -> Callable[[], list[str]]:
    def missing() -> list[str]:
        gone = [p for p in paths if not os.path.exists(p)]
        return [f"{', '.join(gone)} (run scripts/bootstrap.sh)"] if gone else []
    return missing


def _root() -> list[str]:
    return [] if os.geteuid() == 0 else ["root (files are installed as root:root)"]


# what each marker needs on this machine: a check returning what is missing
NEEDS: dict[str, Callable[[], list[str]]] = {
    "tools": _on_path("promtool", "amtool", "systemd-analyze"),
    "servers": _files(PROMETHEUS_BIN, ALERTMANAGER_BIN),
    "root": _root,
    "lab": _on_path("qemu-system-x86_64", "qemu-img", "mmdebstrap"),
    "proc": lambda: [],  # local processes and loopback servers only: any machine that runs the suite has them
}

# every test in a tier's folder gets the tier's marker, so nobody has to remember it (tests/pure: none, since
# a pure test needs nothing: no process, no network, not even loopback)
TIER_MARKERS = {"proc": "proc", "local": "tools", "lab": "lab"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        tier = path.relative_to(TESTS).parts[0] if TESTS in path.parents else None
        marker = TIER_MARKERS.get(tier or "")
        if marker and not item.get_closest_marker(marker):
            item.add_marker(marker)


def lane(nodeid: str) -> str:
    """Which scope (and so which xdist worker) runs a test: the lab tier in its two lanes (`lab_lane`: the
    pair's lane and the lone host's, each in its own order on its own VMs, see lab_fixtures), everything
    else in "this-machine"."""
    return lab_lane(nodeid) if nodeid.startswith("tests/lab/") else "this-machine"


# the order the scopes are handed out: with two workers the pair's lane and this machine's tiers start at
# once, and the lone host's lane follows on whichever worker is free first (this machine's, after ~10
# minutes), so at most two VMs run at a time (tests/lab_slots.py keeps that true whatever the timing)
LANE_ORDER = {"lab-pair": 0, "this-machine": 1, "lab": 2}


def lane_rank(nodeid: str) -> int:
    return LANE_ORDER.get(lane(nodeid), len(LANE_ORDER))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadscope` (pyproject.toml) with the lanes as its scopes, handed out in LANE_ORDER (the
    items are sorted so by tests/lab_fixtures.py; xdist's reordering by size is turned off). xdist's own
    `loadgroup` marks do not reach pytest 9's node ids, so the lanes are told to the scheduler directly."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane(nodeid)

    return Lanes(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Forget the messages an earlier run's lab proofs saw (tests/rule_coverage.py), once, on the controller:
    an xdist worker starting late must not wipe what another worker already recorded."""
    if not hasattr(session.config, "workerinput"):
        rule_coverage.clear_seen(rule_coverage.SEEN_DIR)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Per rule, the channels its lab proofs read a firing / resolved message on and how soon after the
    cause the first one came (issue 28: the time from cause to first message, per rule)."""
    if hasattr(config, "workerinput"):
        return
    lines = rule_coverage.seen_lines(rule_coverage.seen_report(rule_coverage.SEEN_DIR))
    if lines:
        terminalreporter.write_sep("-", "alert rules: messages seen by the lab proofs")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without what a test needs: skip on a developer's machine, fail in CI (a CI skip hides a gap)."""
    missing = [m for marker, check in NEEDS.items() if item.get_closest_marker(marker) for m in check()]
    if missing:
        skip_or_fail(f"needs {'; '.join(missing)}")


@pytest.fixture(scope="module")
def host() -> HostSettings:
    """Host `lab` of the tests' inventory (tests/data/hosts.yml), which most step tests decide for (frozen
    settings: one per module is enough). Not the lab tier's `lab_host`, a running VM."""
    return fixture_inventory().host("lab")


# The lab-host fixtures (`lab_host`, `lab_host2`) and their end-of-session teardown; every test body's
# time limit (tests/watchdog.py).
pytest_plugins = ["tests.lab_fixtures", "tests.watchdog"]


class _NotInThisTier(RuntimeError):
    """A pure test started a process or opened a socket: it belongs in tests/proc (or local)."""


@pytest.fixture(autouse=True)
def _pure_means_pure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pure tier starts no process and opens no socket, not even on loopback: checked, not promised."""
    path = Path(str(request.node.path)).resolve()
    if TESTS / "pure" not in path.parents:
        return
    import socket
    import subprocess

    def refuse(what: str) -> Callable[..., object]:
        def refused(*args: object, **kwargs: object) -> object:
            raise _NotInThisTier(f"a pure test may not {what}: move it to tests/proc")
        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("start a process"))
    monkeypatch.setattr(os, "system", refuse("start a process"))
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse("open a socket"))


@pytest.fixture(autouse=True)
def _own_deploy_lock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests that run the deploy lock's script on this machine take a lock file of their own, so two test
    runs on one machine (or a run and a developer's) never queue on the real /run/lock one."""
    if TESTS / "lab" in Path(str(request.node.path)).resolve().parents:
        return
    from fabfile.ssh import transport

    monkeypatch.setattr(transport, "DEPLOY_LOCK", str(tmp_path / "rosey-monitoring.lock"))
