"""The one-process ufw runner, through bash and python3, against a stand-in `ufw` package that records what
ufw's frontend is asked (the real ufw runs it in tests/lab/test_firewall.py and test_lab_firewall.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fabfile.deploy import ufw_batch

# The parts of ufw 0.36 the runner uses, recording calls to a log; a rule containing "9999" is refused.
STAND_IN = {
    "__init__.py": "",
    "common.py": '''
programName = "ufw"
class UFWError(Exception):
    def __init__(self, value):
        self.value = value
''',
    "util.py": '''
import json, os
def _log(*what):
    with open(os.environ["UFW_LOG"], "a") as f:
        f.write(json.dumps(what) + "\\n")
def create_lock(lockfile, dryrun):
    _log("lock", lockfile)
    return "L"
def release_lock(lock):
    _log("unlock", lock)
''',
    "frontend.py": '''
import sys
from ufw.common import UFWError
from ufw.util import _log
class Parsed:
    def __init__(self, argv):
        self.force = "--force" in argv
        words = [w for w in argv[1:] if w != "--force"]
        if words[0] == "bogus":
            raise ValueError(words)
        self.action = words[0]
        self.data = {"rule": " ".join(words[1:]), "iptype": "both"} if len(words) > 1 else {}
def parse_command(argv):
    return Parsed(argv)
class UFWFrontend:
    def __init__(self, dryrun):
        _log("frontend", dryrun, sys.argv[0])
    def do_action(self, action, rule, iptype, force):
        _log("do", action, rule, iptype, force)
        if "9999" in rule:
            raise UFWError("Could not update running firewall")
        return _("Rule added") if rule else "Firewall is active\\nand enabled"
''',
}


@pytest.fixture
def stand_in(tmp_path: Path) -> tuple[dict[str, str], Path]:
    pkg = tmp_path / "lib" / "ufw"
    pkg.mkdir(parents=True)
    for name, text in STAND_IN.items():
        (pkg / name).write_text(text)
    log = tmp_path / "calls.log"
    return {"PYTHONPATH": str(pkg.parent), "UFW_LOG": str(log), "PATH": "/usr/bin:/bin"}, log


def run(commands: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = "set -e\n" + ufw_batch.script(commands) + "echo after\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)


def calls(log: Path) -> list[list[object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_command_in_order_in_one_frontend_under_ufws_lock(stand_in):
    # ufw's own checks stat sys.argv[0]: the ufw program, not "-" (the program came on stdin)
    env, log = stand_in
    cmds = ["ufw allow 22/tcp", "ufw allow from 192.0.2.0/24 to any port 9090 proto tcp",
            "ufw delete allow 9093/tcp", "ufw default deny incoming", "ufw --force enable"]
    res = run(cmds, env)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "after\n"  # ufw's messages are not mixed into what the step parses
    assert calls(log) == [
        ["frontend", False, "/usr/sbin/ufw"], ["lock", "/run/ufw.lock"],
        ["do", "allow", "22/tcp", "both", False],
        ["do", "allow", "from 192.0.2.0/24 to any port 9090 proto tcp", "both", False],
        ["do", "delete", "allow 9093/tcp", "both", False],
        ["do", "default", "deny incoming", "both", False],
        ["do", "enable", "", "", True],
        ["unlock", "L"],
    ]


def test_the_first_refused_command_stops_the_rest_and_the_script(stand_in):
    env, log = stand_in
    res = run(["ufw allow 22/tcp", "ufw allow 9999/tcp", "ufw --force enable"], env)
    assert res.returncode == 1 and "after" not in res.stdout
    assert res.stderr.strip() == "ERROR: ufw allow 9999/tcp: Could not update running firewall"
    done = calls(log)
    assert [c[2] for c in done if c[0] == "do"] == ["22/tcp", "9999/tcp"]  # enable never ran
    assert done[-1] == ["unlock", "L"]


def test_a_command_ufw_cannot_parse_is_named(stand_in):
    env, log = stand_in
    res = run(["ufw bogus thing"], env)
    assert res.returncode == 1 and res.stderr.strip() == "ERROR: ufw bogus thing: not a ufw command"
    assert calls(log)[-1] == ["unlock", "L"]


def test_only_ufw_commands_are_taken():
    with pytest.raises(ValueError, match="not a ufw command"):
        ufw_batch.script(["rm -rf /"])
    assert ufw_batch.argv_of("ufw insert 1 allow 22/tcp") == ["insert", "1", "allow", "22/tcp"]
