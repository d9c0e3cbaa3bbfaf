"""Invoke entry point: `inv --list`. Thin: parse -H, call the fabfile library, print."""

from __future__ import annotations

from invoke import Collection, Context, task

from fabfile.cli import HostTask, select_hosts, user_errors

HOSTS_HELP = "host alias(es) from hosts.yml, comma-separated (e.g. test,prod)"
DRY_HELP = "connect and show what would change, change nothing"


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "out": "directory to write the files into"})
@user_errors
def render(c: Context, hosts: str = "", out: str = "rendered") -> None:
    """Write the files that would be deployed to a host, then check them with promtool/amtool."""
    from pathlib import Path

    from invoke.exceptions import Exit

    from fabfile.checks import CheckFailed, validate_rendered
    from fabfile.masking import Masker
    from fabfile.render import render_host
    from fabfile.secrets import load_secrets

    inv, selected = select_hosts(c, hosts)
    # render every host first: bad input or a missing secret stops us before anything is written
    jobs = []
    for host in selected:
        secrets = load_secrets(inv, host)
        jobs.append((host, secrets, render_host(inv, host, secrets)))
    failures = []
    for host, secrets, rendered in jobs:
        dest = Path(out) / host.name if len(selected) > 1 else Path(out)
        dest.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.files.items():
            (dest / name).write_bytes(text.encode())
        print(f"{host.name}: wrote {len(rendered.files)} files to {dest}/ ({', '.join(rendered.files)})")
        try:
            validate_rendered(rendered, host, Masker(secrets.values()), shown_dir=dest)
        except CheckFailed as e:
            failures.append(str(e).splitlines()[0])
    if failures:
        raise Exit("error: " + "; ".join(failures) + " (the tools' messages are above)", code=1)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def install_prometheus(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install prometheus + promtool at the inventory's version (checksum-verified)."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["install-prometheus"], dry_run=dry_run)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def install_alertmanager(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install alertmanager + amtool at the inventory's version (checksum-verified)."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["install-alertmanager"], dry_run=dry_run)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def deploy_configs(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Upload, validate on the server, activate atomically and reload only what changed."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["deploy-configs"], dry_run=dry_run)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def install_services(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """Install the hardened systemd units, enable and start them, wait until healthy."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["install-services"], dry_run=dry_run)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def firewall(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """ufw: keep SSH open, open 9090/9093 only to the inventory's admin sources."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["firewall"], dry_run=dry_run)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP})
def verify(c: Context, hosts: str = "") -> None:
    """The runbook's validation checklist as a pass/fail report."""
    from invoke.exceptions import Exit

    from fabfile.runner import run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, ["verify"])
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={
    "hosts": HOSTS_HELP,
    "synthetic": "post a labelled test alert to Alertmanager instead of stopping the bot",
    "force": "run even if an active silence would swallow the alert",
    "timeout": "seconds per wait (stop->notified, start->resolved-notified); default: from the intervals"})
@user_errors
def test_alert(c: Context, hosts: str = "", synthetic: bool = False, force: bool = False,
               timeout: int = 0) -> None:
    """Alert drill: stop the bot, see BotDown fire and notify, start it, see it resolve (always restarted)."""
    from invoke.exceptions import Exit

    from fabfile.drill import cli_test_alert

    inv, selected = select_hosts(c, hosts)
    code = cli_test_alert(inv, selected, synthetic=synthetic, force=force, timeout=timeout or None)
    if code:
        raise Exit(code=code)


@task(klass=HostTask, positional=["matchers"], help={
    "hosts": HOSTS_HELP, "duration": "how long, e.g. 30m, 2h, 1d",
    "comment": "why (shown to everyone who sees the silence)",
    "matchers": 'one or more of name=value name!=value name=~re name!~re (quote several: "a=b c=d")'})
@user_errors
def silence(c: Context, matchers: str, hosts: str = "", duration: str = "2h", comment: str = "") -> None:
    """Maintenance window: silence matching alerts in Alertmanager (createdBy = you@this-machine)."""
    from invoke.exceptions import Exit

    from fabfile.silences import SilenceError, cli_silence

    inv, selected = select_hosts(c, hosts)
    try:
        code = cli_silence(inv, selected, matchers, duration, comment)
    except SilenceError as e:
        raise Exit(f"error: {e}", code=2) from None
    if code:
        raise Exit(code=code)


@task(klass=HostTask, positional=["which"], help={
    "hosts": HOSTS_HELP,
    "which": "silence ID(s), comma-separated",
    "all_mine": "every silence you (this user@machine) created"})
@user_errors
def unsilence(c: Context, which: str = "", hosts: str = "", all_mine: bool = False) -> None:
    """End silences early: `inv unsilence -H HOST ID` or `inv unsilence -H HOST --all-mine`."""
    from invoke.exceptions import Exit

    from fabfile.silences import SilenceError, cli_unsilence

    if bool(which) == all_mine:
        raise Exit("error: unsilence takes a silence ID or --all-mine (one of them)", code=2)
    which = which or "all-mine"
    inv, selected = select_hosts(c, hosts)
    try:
        code = cli_unsilence(inv, selected, which)
    except SilenceError as e:
        raise Exit(f"error: {e}", code=2) from None
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOSTS_HELP, "dry_run": DRY_HELP})
def sortie6(c: Context, hosts: str = "", dry_run: bool = False) -> None:
    """The whole deployment: install, configs, services, firewall, then verify; hosts in parallel."""
    from invoke.exceptions import Exit

    from fabfile.runner import SORTIE6, run_named

    inv, selected = select_hosts(c, hosts)
    code = run_named(inv, selected, SORTIE6, dry_run=dry_run)
    if code:
        raise Exit(code=code)


ns = Collection(render, install_prometheus, install_alertmanager, deploy_configs, install_services,
                firewall, verify, test_alert, silence, unsilence, sortie6)
ns.configure({"rosey": {"inventory": None}})

try:  # the lab collection arrives with the lab-host work
    from fabfile.lab.tasks import ns as lab_ns
except ImportError:
    pass
else:
    ns.add_collection(lab_ns, name="lab")
