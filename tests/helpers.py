"""What several test modules share: the CI policy, the tests' inventory, running `inv` like a user, the
services' PIDs.

One copy each, so a fix (a timeout, how output is captured) reaches every tier at once.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from fabfile.config.inventory import Inventory, load_inventory
from fabfile.facts import firewall as fw
from fabfile.facts import ufw_files

REPO = Path(__file__).resolve().parents[1]

# The pure and local tests' inventory: never the operator's hosts.yml, which they may edit at any time
# (the lab tier deliberately uses that one, or ROSEY_INVENTORY: tests/lab_fixtures.py).
FIXTURE_INVENTORY = REPO / "tests" / "data" / "hosts.yml"

# `CI=true` (or 1/yes): a test that cannot run here fails instead of skipping (a CI skip hides a gap).
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Debian's daemons (packages prometheus, prometheus-alertmanager): the local stack of tests/local runs them
PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"

# The task runner of the interpreter running the tests (the project's virtualenv), wherever it lives.
INV = [sys.executable, "-m", "invoke"]


def module_imports(path: Path) -> set[str]:
    """Every module a source file imports (and `module.name` for each `from module import name`), at the top
    or inside a function: for tests that keep one package from depending on another."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def skip_or_fail(reason: str) -> NoReturn:
    """A test that cannot run on this machine: skipped on a developer's machine, failed in CI."""
    if IN_CI:
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def fixture_inventory() -> Inventory:
    """tests/data/hosts.yml loaded: hosts test, prod, lab, lab2 with the values the tests assert."""
    return load_inventory(FIXTURE_INVENTORY)


def inv(*args: str, cwd: Path = REPO, env: Mapping[str, str | None] | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `inv <args>` in a new process, like a user would.

    `env` goes on top of this process's environment (a value None removes that variable). The result's
    `.stdout` holds stdout then stderr (what the user saw), `.stderr` stderr alone; both are printed so a
    failing test shows them.
    """
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    p = subprocess.run([*INV, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                       timeout=timeout)
    p.stdout = p.stdout + p.stderr
    print(p.stdout)
    return p


def inv_on_loopback_inventory(tmp_path: Path, inventory: Path, *args: str,
                              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m invoke <args>` on a test inventory whose hosts are 127.0.0.1:1 with `key: /nonexistent`:
    the key becomes a stand-in file (the pre-flight wants ssh.key to name one; nothing listens on port 1, so
    it is never read), HOME is tmp_path and only the two passwords are set."""
    key = tmp_path / "id_ed25519"
    key.write_text("a stand-in: nothing listens on port 1, so it is never read\n")
    inventory.write_text(inventory.read_text().replace("key: /nonexistent", f"key: {key}"))
    env = {"ROSEY_INVENTORY": str(inventory), "ROSEY_WEB_PASSWORD": "pw-12345",
           "ROSEY_SMTP_PASSWORD": "pw-12345", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def main_pids(host: Any) -> dict[str, str]:
    """systemd's MainPID of prometheus and alertmanager on a host (anything with `.run(cmd, check=)`)."""
    out = host.run("systemctl show -p MainPID --value prometheus alertmanager", check=True).stdout
    return dict(zip(("prometheus", "alertmanager"), out.split(), strict=True))


def assert_ufw_files_read_as_ufw_shows(lab_host) -> None:
    """What the firewall step and verify read (ufw's files and one iptables call) is what ufw itself shows:
    the same rules in the same order, active or not. Every shape of rule ufw can save is compared in
    tests/pure/test_ufw_files.py on files and output captured from this guest's ufw."""
    ours = " ; echo @@ ; ".join(fw.SNIPPETS[k] for k in ("loaded", "rules", "rules6"))
    out = lab_host.run(f"sudo bash -c {shlex.quote(ours)}; echo @@; sudo ufw show added; echo @@; "
                       "sudo ufw status").stdout
    loaded, rules, rules6, shown, status = out.split("@@")
    want = [x for x in shown.strip().split("\n")[1:] if x != "(None)"]
    assert [x for x in ufw_files.show_added(rules, rules6).split("\n") if x] == want
    assert ufw_files.loaded(loaded) == status.strip().startswith("Status: active")


def units_answer(host: Any, *, active: str = "active", enabled: str | dict[str, str] = "enabled",
                 exe: dict[str, str] | None = None, binary: dict[str, str] | None = None,
                 started: float = 2000.0, unit_mtime: int = 1000, unit_file: bool = True) -> str:
    """What `unit_state.snippet` prints on a server (systemctl's own property order, a blank line between
    units), for the pure tests of the steps that decide from it. Services run /usr/local/lib/x/<svc>."""
    from fabfile.config import layout

    now, uptime = 100_000.0, 99_500.0  # booted at 500
    lines, tail = [], []
    for i, svc in enumerate(layout.SERVICES):
        pid = 40 + i if active in layout.RUNNING_STATES else 0
        mono = int((started - (now - uptime)) * 1e6) if pid else 0
        lines += [f"MainPID={pid}", f"ExecMainStartTimestampMonotonic={mono}", f"Id={svc}.service",
                  "NeedDaemonReload=no", f"ActiveState={active}",
                  f"UnitFileState={enabled if isinstance(enabled, str) else enabled.get(svc, 'enabled')}", ""]
        if pid:
            tail.append(f"@exe {pid} {(exe or {}).get(svc, f'/usr/local/lib/x/{svc}')}")
    tail += [f"@bin {(binary or {}).get(svc, f'/usr/local/lib/x/{svc}')}" for svc in layout.SERVICES]
    if unit_file:
        tail += [f"@mtime {layout.remote_path(host, f'{svc}.service')} {unit_mtime}"
                 for svc in layout.SERVICES]
    tail.append(f"@clock {now:.6f} {uptime:.2f}")
    return "\n".join(lines[:-1] + tail)


@contextlib.contextmanager
def hook_catcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The lab's shared HTTP catcher, started as `lab.up` starts it (pidfile, own spool) on a free loopback
    port, under a lab cache in `tmp_path`; stopped after, and checked to be gone."""
    from fabfile.alerting.api import free_port
    from fabfile.lab import hooks

    monkeypatch.setenv("ROSEY_LAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "run").mkdir(parents=True)
    port = free_port()
    hooks.daemon(port).ensure_running()
    try:
        yield port
    finally:
        hooks.daemon(port).stop()
    assert hooks.daemon(port).running_pid() is None
