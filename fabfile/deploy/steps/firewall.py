"""firewall: ufw allows SSH, and 9090/9093 only from the inventory's admin sources.

Never locking the user out, and why the SSH port is read from the server:
the port in hosts.yml (`ssh.port`) is where *we* dial, which need not be where sshd listens: the lab
dials 127.0.0.1:2222 and QEMU forwards that to port 22 in the guest; a NAT or load balancer does the
same in real life. ufw filters inside the server, so the rule must name the server-side port. The
probe therefore reads (a) the server-side port of *this* SSH session, from SSH_CONNECTION of our
own process ancestry (sudo resets the environment, /proc keeps the original), and (b) every port
sshd listens on (`ss -tlnp`). All of them are allowed. Then:
- the SSH rules are added first and in the same `set -e` script as `ufw --force enable`, which only
  runs if every rule before it was added; if no SSH port can be found, the step refuses to act;
- SSH rules are only ever added, never deleted;
- `ufw enable` keeps established connections (ufw's before.rules accept ESTABLISHED), so even the
  session that runs it is not cut.
"""

from __future__ import annotations

from fabfile.config.settings import HostSettings
from fabfile.deploy import ufw_batch
from fabfile.deploy import ufw_plan as ufw
from fabfile.deploy.steps.base import StepContext, StepResult
from fabfile.facts import firewall as fw
from fabfile.ssh.probe import Read, parse_probe, probe_read, probe_script
from fabfile.ssh.session import HostSession
from fabfile.ssh.transport import one_line, run

STEP = "firewall"


_READ_BACK = "__ROSEY_UFW_READ_BACK__"
_POLICY = {"DROP": "deny", "REJECT": "reject", "ACCEPT": "allow"}


def rules_report(state: fw.UfwState) -> list[str]:
    """ufw's state and its rules in the order it applies them (as `ufw show added` prints them)."""
    head = [f"Status: {'active' if state.active else 'inactive'}",
            f"Default: {_POLICY.get(state.default_incoming, state.default_incoming.lower())} (incoming)"]
    return head + [f"ufw {a.spec}" for a in state.added]


def reads(host: HostSettings, ctx: StepContext) -> Read:
    return Read(fw.SNIPPETS, what="read firewall state")


def firewall(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    m = ctx.masker
    st = probe_read(conn, reads(host, ctx), masker=m)
    if not st["have"].ok:
        return StepResult(STEP, "failed", "ufw is not installed on the server (apt install ufw)")
    state, ports = fw.read_state(st)
    try:
        p = ufw.plan(host, state, ports)
    except ValueError as e:
        return StepResult(STEP, "failed", str(e))
    refusal = p.refusal(host)
    if refusal:  # before any change: the firewall stays as it is
        return StepResult(STEP, "failed", refusal, rules_report(state))
    if p.empty:
        return StepResult(STEP, "ok", f"ufw active; SSH {_ports(ports)} and web ports as inventory",
                          rules_report(state))
    cmds = p.commands()
    if ctx.dry_run:
        return StepResult(STEP, "changed", f"would run {len(cmds)} ufw command(s) (dry run)",
                          [f"would run: {c}" for c in cmds])
    # all of them in one ufw process; ufw's state read back in the same command, as a probe reads it
    after_keys = ("loaded", "rules", "rules6")
    script = ("set -e\n" + ufw_batch.script(cmds) + "set +e\n"
              + probe_script({k: fw.SNIPPETS[k] for k in after_keys}, _READ_BACK))
    res = run(conn, script, masker=m, what="apply firewall rules", check=False)
    if res.exited != 0:
        return StepResult(STEP, "failed", f"ufw failed (exit {res.exited}): "
                          f"{one_line(res.stderr or res.stdout, m)}",
                          [f"planned: {c}" for c in cmds])
    after, _ = fw.read_state({**st, **parse_probe(res.stdout, after_keys, _READ_BACK)})
    return StepResult(STEP, "changed", f"{len(cmds)} ufw change(s); SSH {_ports(ports)} kept open",
                      [f"ran: {c}" for c in cmds] + rules_report(after))


def _ports(ports: tuple[int, ...]) -> str:
    return "/".join(str(p) for p in ports) + "/tcp"
