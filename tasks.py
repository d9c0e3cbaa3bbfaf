"""Invoke entry point: `inv --list`. Thin: parse -H, call the fabfile library, exit with its code."""

from __future__ import annotations

import sys

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from fabfile import stdio
from fabfile.cli import (
    HOSTS_HELP,
    PARALLEL_HELP,
    HostTask,
    exit_with,
    number_flag,
    parallel_flag,
    seconds_flag,
    select_hosts,
    step_task,
    user_errors,
)
from fabfile.deploy import steps
from fabfile.drill import scenarios

stdio.install()  # at the top: nothing printed (ours, invoke's) raises, a closed stdout stops the printing


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "out": "directory to write the files into"})
@user_errors
def render(c: Context, hosts: str = "", out: str = "rendered") -> None:
    """Write the files that would be deployed to a host, then check them with promtool/amtool."""
    from fabfile.config.render_to_dir import out_dir, render_to_dir

    where = out_dir(out)
    inv, selected = select_hosts(c, hosts)
    failures = render_to_dir(inv, selected, where)
    if failures:
        raise Exit("error: " + "; ".join(failures) + " (the tools' messages are above)", code=1)


# one task per registry step (`inv install-prometheus`, ..., `inv verify`), and sortie6 running them all
step_tasks = [step_task(s.name, s.help, [s.name], dry_run=s.changes, strict=s.strict) for s in steps.STEPS]
sortie6 = step_task("sortie6", steps.SORTIE6_HELP, list(steps.SORTIE6), dry_run=True, strict=True)


@task(klass=HostTask, help={
    "hosts": HOSTS_HELP,
    "synthetic": f"the same as --scenario {scenarios.SYNTHETIC}",
    "scenario": scenarios.help_text(),
    "force": "run even if an active silence would swallow the alert",
    "timeout": "seconds per wait (stop->notified, start->resolved-notified); default: from the intervals",
    "alert": "with --synthetic: send this rule's name (and its labels) through its real route, e.g. "
             "HighErrorRate",
    "severity": "with --synthetic: critical, warning or info (default: the rule's severity)"})
@user_errors
def test_alert(c: Context, hosts: str = "", synthetic: bool = False, force: bool = False,
               timeout: str = "", scenario: str = "", alert: str = "", severity: str = "") -> None:
    """Alert drill: stop the bot, see BotDown fire and notify, start it, see it resolve (always restarted)."""
    from fabfile.drill.runner import cli_test_alert

    seconds = seconds_flag("--timeout", timeout)
    inv, selected = select_hosts(c, hosts, never_default_production="the drill")
    exit_with(cli_test_alert(inv, selected, synthetic=synthetic, force=force, timeout=seconds or None,
                             scenario=scenario, alert=alert, severity=severity))


@task(klass=HostTask, positional=["matchers"], help={
    "hosts": HOSTS_HELP, "duration": "how long, e.g. 30m, 2h, 1d",
    "comment": "why (shown to everyone who sees the silence)",
    "matchers": 'one or more of name=value name!=value name=~re name!~re (quote several: "a=b c=d")'})
@user_errors
def silence(c: Context, matchers: str, hosts: str = "", duration: str = "2h", comment: str = "") -> None:
    """Maintenance window: silence matching alerts in Alertmanager (createdBy = you@this-machine)."""
    from fabfile.alerting.silences import cli_silence

    inv, selected = select_hosts(c, hosts)
    exit_with(cli_silence(inv, selected, matchers, duration, comment))


@task(klass=HostTask, help={
    "hosts": HOSTS_HELP,
    "id": "silence ID(s), comma-separated (as `inv silence` printed them)",
    "all_mine": "every silence you (this user@machine) created"})
@user_errors
def unsilence(c: Context, hosts: str = "", id: str = "", all_mine: bool = False) -> None:  # noqa: A002
    """End silences early: `inv unsilence -H HOST --id ID` or `inv unsilence -H HOST --all-mine`."""
    # Both are flags: Invoke has no optional positionals, and a bare ID would be read as a task name.
    from fabfile.alerting.silences import cli_unsilence

    if bool(id) == all_mine:
        raise Exit("error: unsilence takes --id ID or --all-mine (one of them)", code=2)
    inv, selected = select_hosts(c, hosts)
    exit_with(cli_unsilence(inv, selected, id or "all-mine"))


@task(klass=HostTask, help={"hosts": HOSTS_HELP,
                             "accept": "record the key in ~/.ssh/known_hosts (only after checking it)"})
@user_errors
def host_key(c: Context, hosts: str = "", accept: bool = False) -> None:
    """Show a server's SSH host key fingerprint (no login); with --accept, record it in known_hosts."""
    from fabfile.ssh.host_key_task import cli_host_key

    inv, selected = select_hosts(c, hosts)
    exit_with(cli_host_key(selected, accept))


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "json": "print the same data as JSON (for scripts)",
                            "watch": "refresh every N seconds until Ctrl-C", "parallel": PARALLEL_HELP})
@user_errors
def status(c: Context, hosts: str = "", json: bool = False, watch: str = "", parallel: str = "") -> None:
    """The bot at a glance per host: connected, uptime, users, rates, sparklines, alerts, silences, mail."""
    from fabfile.status.cli import cli_status

    every = number_flag("--watch", watch, 0, 86400, "seconds between refreshes")
    at_once = parallel_flag(parallel)
    inv, selected = select_hosts(c, hosts, notice_to=sys.stderr if json else None)
    exit_with(cli_status(inv, selected, as_json_out=json, watch=every, parallel=at_once))


@task(klass=HostTask, help={"hosts": HOSTS_HELP + "; one host",
                            "prometheus_port": "local port for Prometheus (default: a free one)",
                            "alertmanager_port": "local port for Alertmanager (default: a free one)"})
@user_errors
def ui(c: Context, hosts: str = "", prometheus_port: str = "", alertmanager_port: str = "") -> None:
    """Open Prometheus' and Alertmanager's web UIs through SSH tunnels (9090/9093 may stay closed)."""
    from fabfile.status.ui import cli_ui

    ports = [number_flag(f"--{name}-port", given, 0, 65535, "a local TCP port")
             for name, given in (("prometheus", prometheus_port), ("alertmanager", alertmanager_port))]
    inv, selected = select_hosts(c, hosts)
    if len(selected) != 1:
        raise Exit("error: inv ui takes one host (-H NAME)", code=2)
    exit_with(cli_ui(inv, selected[0], *ports))


ns = Collection(render, *step_tasks, sortie6, test_alert, silence, unsilence, status, ui, host_key)
ns.configure({"rosey": {"inventory": None}})

from fabfile.lab.tasks import ns as lab_ns  # noqa: E402  (the lab collection: inv lab.up, ...)

ns.add_collection(lab_ns, name="lab")
