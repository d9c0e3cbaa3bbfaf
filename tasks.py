"""Invoke entry point: `inv --list`. Thin: parse -H, call the fabfile library, exit with its code."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from fabfile.cli import HostTask, exit_with, run_steps, seconds_flag, select_hosts, user_errors

HOSTS_HELP = "host alias(es) from hosts.yml, comma-separated (e.g. test,prod)"
DRY_HELP = "connect and show what would change, change nothing"
STEP_HELP = {"hosts": HOSTS_HELP, "dry_run": DRY_HELP}


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "out": "directory to write the files into"})
@user_errors
def render(c: Context, hosts: str = "", out: str = "rendered") -> None:
    """Write the files that would be deployed to a host, then check them with promtool/amtool."""
    from fabfile.config.render_to_dir import render_to_dir

    inv, selected = select_hosts(c, hosts)
    failures = render_to_dir(inv, selected, Path(out))
    if failures:
        raise Exit("error: " + "; ".join(failures) + " (the tools' messages are above)", code=1)


@task(klass=HostTask, help=STEP_HELP)
def install_prometheus(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install prometheus + promtool at the inventory's version (checksum-verified)."""
    run_steps(c, hosts, ["install-prometheus"], dry_run)


@task(klass=HostTask, help=STEP_HELP)
def install_alertmanager(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install alertmanager + amtool at the inventory's version (checksum-verified)."""
    run_steps(c, hosts, ["install-alertmanager"], dry_run)


@task(klass=HostTask, help=STEP_HELP)
def deploy_configs(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Upload, validate on the server, activate atomically and reload only what changed."""
    run_steps(c, hosts, ["deploy-configs"], dry_run)


@task(klass=HostTask, help=STEP_HELP)
def install_services(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install the hardened systemd units, enable and start them, wait until healthy."""
    run_steps(c, hosts, ["install-services"], dry_run)


@task(klass=HostTask, help=STEP_HELP)
def firewall(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """ufw: keep SSH open, open 9090/9093 only to the inventory's admin sources."""
    run_steps(c, hosts, ["firewall"], dry_run)


STRICT_HELP = "firing bot alerts fail verify too (default: a warning; the stack checks decide)"


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "strict": STRICT_HELP})
def verify(c: Context, hosts: str = "", strict: bool = False) -> None:
    """The runbook's validation checklist as a pass/fail report (exit 0 ok, 1 a check failed, 2 bad input)."""
    run_steps(c, hosts, ["verify"], strict=strict)


@task(klass=HostTask, help=STEP_HELP | {"strict": STRICT_HELP})
def sortie6(c: Context, hosts: str = "", dry_run: bool = False, strict: bool = False) -> None:
    """The whole deployment: install, configs, services, firewall, then verify; hosts in parallel."""
    from fabfile.deploy.runner import SORTIE6

    run_steps(c, hosts, list(SORTIE6), dry_run, strict=strict)


@task(klass=HostTask, help={
    "hosts": HOSTS_HELP,
    "synthetic": "post a labelled test alert to Alertmanager instead of stopping the bot",
    "scenario": "bot-down (default), synthetic, or monitoring-down (clustered hosts: stop this host's "
                "Prometheus+Alertmanager, the peer must notify MonitoringPeerDown; always started again)",
    "force": "run even if an active silence would swallow the alert",
    "timeout": "seconds per wait (stop->notified, start->resolved-notified); default: from the intervals"})
@user_errors
def test_alert(c: Context, hosts: str = "", synthetic: bool = False, force: bool = False,
               timeout: str = "", scenario: str = "") -> None:
    """Alert drill: stop the bot, see BotDown fire and notify, start it, see it resolve (always restarted)."""
    from fabfile.drill.runner import cli_test_alert

    seconds = seconds_flag("--timeout", timeout)
    inv, selected = select_hosts(c, hosts, never_default_production="the drill")
    exit_with(cli_test_alert(inv, selected, synthetic=synthetic, force=force, timeout=seconds or None,
                             scenario=scenario))


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
                            "watch": "refresh every N seconds until Ctrl-C"})
@user_errors
def status(c: Context, hosts: str = "", json: bool = False, watch: int = 0) -> None:
    """The bot at a glance per host: connected, uptime, users, rates, sparklines, alerts, silences, mail."""
    from fabfile.status.cli import cli_status

    inv, selected = select_hosts(c, hosts, notice_to=sys.stderr if json else None)
    exit_with(cli_status(inv, selected, as_json_out=json, watch=watch))


@task(klass=HostTask, help={"hosts": HOSTS_HELP + "; one host",
                            "prometheus_port": "local port for Prometheus (default: a free one)",
                            "alertmanager_port": "local port for Alertmanager (default: a free one)"})
@user_errors
def ui(c: Context, hosts: str = "", prometheus_port: int = 0, alertmanager_port: int = 0) -> None:
    """Open Prometheus' and Alertmanager's web UIs through SSH tunnels (9090/9093 may stay closed)."""
    from fabfile.status.ui import cli_ui

    inv, selected = select_hosts(c, hosts)
    if len(selected) != 1:
        raise Exit("error: inv ui takes one host (-H NAME)", code=2)
    exit_with(cli_ui(inv, selected[0], prometheus_port, alertmanager_port))


ns = Collection(render, install_prometheus, install_alertmanager, deploy_configs, install_services,
                firewall, verify, sortie6, test_alert, silence, unsilence, status, ui,
                host_key)
ns.configure({"rosey": {"inventory": None}})

from fabfile.lab.tasks import ns as lab_ns  # noqa: E402  (the lab collection: inv lab.up, ...)

ns.add_collection(lab_ns, name="lab")
