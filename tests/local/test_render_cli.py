"""`inv render` end to end, as a user runs it, from a temporary copy of the project (secrets from env) with
the tests' inventory as its hosts.yml (the operator's may say anything)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fabfile.config.inventory import PROJECT_ROOT
from fabfile.config.layout import FILENAMES
from tests import helpers

SMTP, WEB = "cli-smtp-S3cr3t-value", "cli-web-S3cr3t-value"
ANYWHERE = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}
AT_ROOT = {"secrets.yml", "rendered", "out", "tests", "bench"}  # no secrets.yml: secrets come from env


def _ignore(folder: str, names: list[str]) -> set[str]:
    root = Path(folder) == PROJECT_ROOT
    return {n for n in names if n in ANYWHERE or (root and n in AT_ROOT)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("repo") / "repo"
    shutil.copytree(PROJECT_ROOT, dest, ignore=_ignore)
    shutil.copyfile(helpers.FIXTURE_INVENTORY, dest / "hosts.yml")
    return dest


def inv(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`inv` in the project copy with secrets from the environment only (no other ROSEY_* leaks in)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROSEY_")}
    env.update(ROSEY_SMTP_PASSWORD=SMTP, ROSEY_WEB_PASSWORD=WEB)
    return helpers.inv(*args, cwd=project, env=env, timeout=300)


def test_render_test_and_prod(project: Path) -> None:
    runs = {alias: inv(project, "render", "-H", alias, "--out", out) for alias, out in (("test", "d1"),
                                                                                          ("prod", "d2"))}
    for alias, out, port, env in (("test", "d1", 8001, "test"), ("prod", "d2", 8000, "production")):
        proc = runs[alias]
        output = proc.stdout  # stdout then stderr
        assert proc.returncode == 0, output
        files = sorted(p.name for p in (project / out).iterdir())
        assert files == sorted(FILENAMES)
        for check in ("promtool check config", "promtool check rules", "promtool check web-config",
                      "amtool check-config", "promtool test rules"):
            assert f"PASS  {check}" in output, output
        prom = yaml.safe_load((project / out / "prometheus.yml").read_text())
        bot = prom["scrape_configs"][0]
        assert bot["static_configs"][0] == {"targets": [f"localhost:{port}"],
                                            "labels": {"env": env, "host": alias}}
        for secret in (SMTP, WEB):
            assert secret not in output
            for f in (project / out).iterdir():
                assert secret not in f.read_text()
        assert not list((project / out).glob("secrets*"))  # secret files are never written to --out


def test_render_again_into_the_same_folder_is_byte_identical(project: Path) -> None:
    """web.yml keeps the hash an earlier render left there while the password matches it; a new folder gets
    a new random salt (as a new server does), and every other file is the same."""
    def files(out: str) -> dict[str, bytes]:
        assert inv(project, "render", "-H", "prod", "--out", out).returncode == 0
        return {name: (project / out / name).read_bytes() for name in FILENAMES}

    first = files("again")
    assert files("again") == first
    other = files("other")
    assert other.pop("web.yml") != first.pop("web.yml")
    assert other == first


def test_several_hosts_get_a_folder_each(project: Path) -> None:
    proc = inv(project, "render", "-H", "test,prod", "--out", "both")
    assert proc.returncode == 0, proc.stdout
    assert sorted(p.name for p in (project / "both").iterdir()) == ["prod", "test"]


def test_broken_rule_fails_with_promtool_message(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "repo"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns("d1", "d2", "again*", "both"))
    rules = broken / "monitoring" / "alert_rules.yml"
    rules.write_text(rules.read_text().replace("expr: >-", "expr: rate(bot_errors_total[5m] >-", 1))
    proc = inv(broken, "render", "-H", "test", "--out", "d")
    output = proc.stdout  # stdout then stderr
    assert proc.returncode != 0
    assert "FAIL  promtool check rules" in output and "parse error" in output
    assert "error: test: " in output and WEB not in output


def test_unknown_host_is_a_clean_error(project: Path) -> None:
    proc = inv(project, "render", "-H", "nope", "--out", "x")
    assert proc.returncode == 2
    assert "unknown host 'nope'; known hosts: test, prod" in proc.stderr
    assert not (project / "x").exists()
