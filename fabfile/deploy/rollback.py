"""A new binary that does not come up is switched back to the release the service ran before.

Why here and not in install: install switches the symlinks, but the new binary first runs when
install-services restarts it — with the unit and configs of this run, which deploy-configs placed in
between (and did not reload into the old process). So "restart + health + switch back" is one
transaction inside install-services' one root script, like a handler that owns its restart. What to go
back to needs no marker file: before the restart, `/proc/<MainPID>/exe` is the previous release's binary
(exactly the "binary changed" signal that asks for the restart).

The bounded wait gives up early when systemd has had to restart the new process CRASH_RESTARTS times
(a binary that exits at start would otherwise hold the run for the whole HEALTH_TIMEOUT). The data dir is
never touched. After a rollback the inventory still names the new version: a re-run switches to it again,
restarts once, fails the same way and rolls back again — no loop inside a run, the same clear failure.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from fabfile.config import layout
from fabfile.facts.releases import release_version

CRASH_RESTARTS = 2  # systemd restarted the new process this often since our restart: it will not come up
MARK = "__ROSEY_SVC__"


def health_fn(timeout: int) -> str:
    """Shell function `healthy SERVICE PORT` (needs `web_get`, fabfile.ssh.webauth): 0 once /-/healthy
    answers (basic auth from "$cfg"); else 1 with `$why` set: after `timeout` s, or once the unit failed or
    crash-looped CRASH_RESTARTS times.

    It looks ten times a second whether something listens on the port (the kernel's /proc/net/tcp and tcp6
    read by bash itself, and `read -t` as its sleep: no process, and no connection a TLS server would log
    as a failed handshake), asks /-/healthy (curl) when it does, at most three times a second, and in any
    case once a second, and asks systemd (one `systemctl show`) once a second. Why: a service answers
    /-/healthy as soon as it listens, and under emulation every process start (0.05-0.1 s) is taken from
    the services that are starting; a one-second poll also lost half a second on average."""
    return "\n".join([
        "rosey_listening() {",  # a TCP socket in state LISTEN (0A) on local port $1, any address
        "  local f h l st; printf -v h %04X \"$1\"",
        "  for f in /proc/net/tcp /proc/net/tcp6; do [ -r \"$f\" ] || continue",
        '    while read -r _ l _ st _; do [ "${l##*:}" = "$h" ] && [ "$st" = 0A ] && return 0; done < "$f"',
        "  done; return 1",
        "}",
        "healthy() {",
        f"  local n0 n st k v i=0 asked=-10 end=$((SECONDS + {timeout}))",
        '  n0=$(systemctl show -p NRestarts --value "$1.service"); n0=${n0:-0}',
        # a pipe nobody writes to, opened once per script: `read -t` on it is a sleep without a process
        '  [ -n "${rosey_tick:-}" ] || exec {rosey_tick}<> <(:)',
        "  while :; do",
        '    if [ $((i - asked)) -ge 10 ] || { [ $((i - asked)) -ge 3 ] && rosey_listening "$2"; }; then',
        '      asked=$i',
        '      web_get "$2" /-/healthy -sS -o /dev/null -m 3 -K "$cfg" 2>/dev/null && return 0',
        "    fi",
        "    if [ $((i % 10)) -eq 0 ]; then",
        "      st='' n=''",
        '      while IFS== read -r k v; do case $k in ActiveState) st=$v;; NRestarts) n=$v;; esac; done '
        '< <(systemctl show -p ActiveState -p NRestarts "$1.service")',
        "      n=${n:-0}",
        '      if [ "$st" = failed ]; then why="its unit failed"; return 1; fi',
        f'      if [ $((n - n0)) -ge {CRASH_RESTARTS} ]; then why="it exited and systemd restarted it '
        '$((n - n0)) times"; return 1; fi',
        "    fi",
        '    [ "$SECONDS" -lt "$end" ] || break',
        '    i=$((i + 1)); read -r -t 0.1 _ <&"$rosey_tick" || true',
        "  done",
        f'  why="not within {timeout}s ($(systemctl is-active "$1.service"))"; return 1',
        "}",
    ])


def wait_or_roll_back(service: str, port: int, previous: str | None, journal_lines: int) -> list[str]:
    """Script lines after `systemctl restart` (at epoch "$t0"): wait healthy; else report the new binary's
    journal, and with a previous release switch the symlinks back, restart, and report whether it is healthy.
    Sets rc=1 on any failure."""
    q = shlex.quote
    unit = q(f"{service}.service")
    journal = f"journalctl -u {unit} -n {journal_lines} --no-pager -o short-iso"
    lines = [
        f"if healthy {service} {port}; then :",
        "else",
        "  rc=1",
        f'  echo "{MARK} unhealthy {service} $why"',
        f'  {journal} --since "@$t0" 2>/dev/null || true',
    ]
    if previous:
        relink = " && ".join(f"ln -sfn {q(previous + '/' + b)} {q(layout.binary_path(b))}.rosey-new && "
                             f"mv -T {q(layout.binary_path(b))}.rosey-new {q(layout.binary_path(b))}"
                             for b in layout.BINARIES[service])
        lines += [
            f"  if [ -x {q(previous + '/' + service)} ] && {relink}; then",
            f"    t1=$(date +%s); systemctl restart {unit}",
            f'    if healthy {service} {port}; then echo "{MARK} rolledback {service} healthy"',
            f'    else echo "{MARK} rolledback {service} unhealthy $why"; '
            f'{journal} --since "@$t1" || true; fi',
            f'  else echo "{MARK} norollback {service} {previous} is gone"; fi',
        ]
    lines.append("fi")
    return lines


@dataclass(frozen=True)
class Failure:
    head: str  # the step's one line
    details: list[str]  # the journal lines behind it


def report(output: str, new_versions: dict[str, str], previous: dict[str, str | None]) -> Failure | None:
    """The apply script's output -> the step's failure (None when every service came up).

    `new_versions`: service -> version the inventory asks for; `previous`: service -> release dir
    switched back to (None: no rollback possible).
    """
    heads: list[str] = []
    details: list[str] = []
    for line in output.splitlines():
        if not line.startswith(MARK + " "):
            if line.strip():
                details.append(line)
            continue
        _, what, service, *rest = line.split(" ", 3) + [""]
        why = rest[0]
        new = f"{service} {new_versions.get(service, '')}".strip()
        prev = previous.get(service)
        old = f"{service} {release_version(service, prev)}" if prev else ""
        if what == "unhealthy":
            heads.append(f"{new} did not become healthy: {why}")
            details.append(f"journal of {new} (new binary):")
        elif what == "rolledback" and why == "healthy":
            heads.append(f"rolled back to {old}, healthy again (data dir untouched); a re-run tries "
                         f"{new} again: fix the release or set {service}.version back to "
                         f"{release_version(service, prev or '')} in hosts.yml")
        elif what == "rolledback":
            heads.append(f"rolled back to {old}, but it is not healthy either: {why.split(' ', 1)[-1]} "
                         f"(configs deployed for {new} may not load in it: set {service}.version back "
                         f"and re-run)")
            details.append(f"journal of {old} (rolled back):")
        elif what == "norollback":
            heads.append(f"cannot roll back: {why}")
    if not heads:
        return None
    return Failure("; ".join(heads), details)
