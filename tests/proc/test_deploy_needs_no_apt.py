"""A laptop without apt (macOS, say) deploys with the project's Python packages alone: no promtool, amtool,
QEMU or mmdebstrap on PATH. Local checks are then skipped with one line each (the server's own tools check
the files before they are activated), and the lab says in one line what it needs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests import helpers

FORBIDDEN = ("promtool", "amtool", "qemu-system-x86_64", "qemu-img", "mmdebstrap")


def _bare_path(tmp_path: Path) -> str:
    """A PATH with the shell tools `inv` and its checks use, and none of FORBIDDEN."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "env", "cat", "ssh", "openssl"):
        for d in os.environ.get("PATH", "").split(os.pathsep):
            if (Path(d) / tool).exists():
                (bin_dir / tool).symlink_to(Path(d) / tool)
                break
    (bin_dir / "python3").symlink_to(sys.executable)
    return str(bin_dir)


def _env(tmp_path: Path) -> dict[str, str | None]:
    return {"CI": None,  # under CI=true a missing tool fails instead of being skipped
            "PATH": _bare_path(tmp_path), "ROSEY_INVENTORY": str(helpers.FIXTURE_INVENTORY),
            "ROSEY_WEB_PASSWORD": "laptop-Pa55", "ROSEY_SMTP_PASSWORD": "smtp-Pa55", "HOME": str(tmp_path)}


def test_render_without_promtool_or_amtool_skips_the_local_checks_in_one_line_each(tmp_path):
    env = _env(tmp_path)
    assert not any((Path(str(env["PATH"])) / t).exists() for t in FORBIDDEN)
    p = helpers.inv("render", "-H", "test", "--out", str(tmp_path / "out"), env=env, timeout=120)
    assert p.returncode == 0, p.stdout
    assert "SKIP  promtool check config: promtool not found on PATH" in p.stdout
    assert "SKIP  amtool check-config: amtool not found on PATH" in p.stdout
    assert (tmp_path / "out" / "prometheus.yml").exists() and "Traceback" not in p.stdout


def test_the_lab_says_in_one_line_what_it_needs(tmp_path):
    p = helpers.inv("lab.up", env=_env(tmp_path), timeout=60)
    assert p.returncode == 2
    line = p.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: the lab needs qemu-system-x86_64, qemu-img, mmdebstrap")
    assert "scripts/bootstrap.sh" in line and "Traceback" not in p.stdout + p.stderr
