"""Planned ufw commands run in one ufw process on the server, not one `ufw` start per rule.

Each `ufw` command starts Python, imports ufw, asks iptables its version and probes netfilter's
capabilities (a throw-away chain and a dozen iptables calls) before it touches one rule: about 3.5 s per
rule on the lab VM, most of a fresh firewall step. ufw's command line is a thin layer over
`ufw.frontend` (parse_command -> UFWFrontend.do_action, under ufw's lock); the program below is that same
layer looping over the plan, so every command is parsed, checked and applied by ufw's own code, in the
plan's order (SSH first), and the first one ufw refuses stops the rest, as `set -e` did.
"""

from __future__ import annotations

import json
import shlex

# Runs on the server as root: `python3 - ARGV_JSON`. Mirrors /usr/sbin/ufw's main (0.36.x): gettext's `_`
# installed for ufw's messages, one frontend, ufw's own lock, `error()` exits 1 with "ERROR: ..." as ufw does.
# ufw's safety checks stat the running program (sys.argv[0]) like its config files; read from stdin that is
# "-", so they are pointed at the ufw program whose code this runs.
PROGRAM = r'''
import gettext, json, shutil, sys
import ufw.common, ufw.frontend
from ufw.common import UFWError
from ufw.util import create_lock, release_lock
gettext.install(ufw.common.programName)
commands = json.loads(sys.argv[1])
sys.argv[0] = shutil.which("ufw") or "/usr/sbin/ufw"
ui = ufw.frontend.UFWFrontend(False)
lock = create_lock(lockfile="/run/ufw.lock", dryrun=False)
argv = []
try:
    for argv in commands:
        try:
            pr = ufw.frontend.parse_command(["ufw"] + argv)
        except ValueError:
            sys.exit("ERROR: ufw %s: not a ufw command" % " ".join(argv))
        if "rule" in pr.data:
            res = ui.do_action(pr.action, pr.data["rule"], pr.data["iptype"], pr.force)
        else:
            res = ui.do_action(pr.action, "", "", pr.force)
        print("ufw %s: %s" % (" ".join(argv), (res or "").strip().replace("\n", "; ")))
except UFWError as e:
    sys.exit("ERROR: ufw %s: %s" % (" ".join(argv), e.value))
finally:
    release_lock(lock)
'''

_END = "ROSEY_UFW_BATCH"


def argv_of(command: str) -> list[str]:
    """`ufw allow from 10.0.0.0/8 to any port 9090 proto tcp` -> its arguments after `ufw`."""
    words = shlex.split(command)
    if not words or words[0] != "ufw":
        raise ValueError(f"not a ufw command: {command!r}")
    return words[1:]


def script(commands: list[str]) -> str:
    """Shell running `commands` (as Plan.commands() spells them) in one ufw process, its messages discarded;
    non-zero exit and ufw's "ERROR: ..." on stderr at the first one ufw refuses."""
    payload = json.dumps([argv_of(c) for c in commands])
    return f"python3 - {shlex.quote(payload)} >/dev/null <<'{_END}'\n{PROGRAM.strip()}\n{_END}\n"
