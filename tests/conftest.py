"""Shared test setup: marker policy (skip locally, fail in CI) and the lab-host fixtures."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# what each marker needs on this machine
NEEDS = {
    "tools": ("promtool", "amtool"),
    "lab": ("qemu-system-x86_64", "qemu-img", "mmdebstrap"),
}


def _missing(item: pytest.Item) -> list[str]:
    return [t for marker, tools in NEEDS.items() if item.get_closest_marker(marker)
            for t in tools if shutil.which(t) is None]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without the tools a test needs: skip on a developer's machine, fail in CI (a CI skip hides a gap)."""
    missing = _missing(item)
    if missing:
        reason = f"needs {', '.join(missing)} on PATH (run scripts/bootstrap.sh)"
        if IN_CI:
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)


# The lab-host fixtures (`lab_host`, `lab_host2`) and their end-of-session teardown.
pytest_plugins = ["tests.lab_fixtures"]
