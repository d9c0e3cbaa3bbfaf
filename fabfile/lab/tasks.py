"""`inv lab.up|down|ssh|status|build`: the lab hosts (QEMU VMs) on this machine. Thin: calls fabfile.lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from fabfile.cli import HostTask, load, user_errors
from fabfile.lab import image, mailbox, needs, paths, privnet, releases, serve
from fabfile.lab.build import build_all
from fabfile.lab.vm import LabError, LabVM

HOST_HELP = "lab hosts from hosts.yml, comma-separated: aliases, groups, patterns like 'lab*' (default: lab)"


def _vms(c: Context, hosts: str) -> list[LabVM]:
    inv = load(c)
    try:
        privnet.check_links(inv.hosts, inv.path.name)
    except ValueError as exc:
        raise Exit(f"error: {exc}", code=2) from None
    out = []
    for settings in inv.select(hosts or "lab"):  # the one -H resolver (fabfile/config/host_patterns.py)
        if settings.lab is None:
            raise Exit(f"error: {settings.name!r} is not a lab host (no `lab_vm:` in {inv.path.name})",
                       code=2)
        out.append(LabVM(settings))
    return out


def _needs() -> None:
    if (why := needs.problem()) is not None:
        raise Exit(f"error: {why}", code=2)


@task(klass=HostTask, help={"hosts": HOST_HELP, "fresh": "cold boot instead of restoring the snapshot"})
@user_errors
def up(c: Context, hosts: str = "", fresh: bool = False) -> None:
    """Start lab host(s): build the image on first use, restore the golden snapshot, print how to reach it."""
    _needs()
    for vm in _vms(c, hosts):
        try:
            seconds = vm.up(fresh=fresh)
        except LabError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        s = vm.settings
        ports = ", ".join(f"guest {g} -> 127.0.0.1:{h}" for g, h in sorted(s.lab.forwards.items()))
        print(f"lab: {vm.name} up in {seconds:.1f}s (pid {vm.pid()})")
        raw = f"ssh -p {s.ssh.port} -i {s.ssh.key} {s.ssh.user}@{s.address}"
        print(f"  ssh:      inv lab.ssh -H {vm.name}   ({raw})")
        print(f"  ports:    {ports}")
        print(f"  bot:      curl http://127.0.0.1:{s.lab.forwards.get(s.bot_port, '?')}/api/health")
        print(f"  releases: http://10.0.2.2:{s.lab.releases_port}/ (from the guest)")
        if s.lab.private_address:
            peer = f" (link to {s.lab.private_peer})" if s.lab.private_peer else ""
            print(f"  private:  {s.lab.private_address}/{privnet.PREFIX}{peer}")
        port = s.lab.mail_port
        print(f"  mail:     smarthost {mailbox.smarthost(port)} -> {mailbox.spool(port)} (shared catcher)")


@task(klass=HostTask, help={"hosts": HOST_HELP, "all": "every lab host of hosts.yml"})
@user_errors
def down(c: Context, hosts: str = "", all: bool = False) -> None:  # noqa: A002
    """Stop lab host(s) by the PID in their pidfile and throw away their run disk."""
    if all:
        hosts = ",".join(h.name for h in load(c).hosts.values() if h.lab is not None)
    for vm in _vms(c, hosts):
        print(f"lab: {vm.name} {'stopped' if vm.down() else 'was not running'}")


SSH_HELP = {"hosts": "one lab host (default: lab)", "command": "run it, exit with its status"}


@task(klass=HostTask, help=SSH_HELP)
@user_errors
def ssh(c: Context, hosts: str = "", command: str | None = None) -> None:
    """An interactive shell as `rosey` on a lab host, or one command (`--command 'CMD'`)."""
    vms = _vms(c, hosts)
    if len(vms) != 1:
        raise Exit("error: lab.ssh takes one host", code=2)
    vm = vms[0]
    if not vm.is_running():
        raise Exit(f"error: {vm.name} is not running (inv lab.up -H {vm.name})", code=1)
    code = subprocess.call(vm.ssh_argv(command, tty=command is None))
    if code:
        raise Exit(code=code)


@task(klass=HostTask, help={"hosts": HOST_HELP + "; default: all lab hosts"})
@user_errors
def status(c: Context, hosts: str = "") -> None:
    """Running or not, PIDs, ports, image and snapshot age."""
    names = hosts or ",".join(h.name for h in load(c).hosts.values() if h.lab is not None)
    for release in image.releases_of(load(c)):
        img = image.current(release)
        if img.exists():
            print(f"image:    {release} {img.key}, built {_age(img.age_seconds())} ago ({img.directory})")
        else:
            print(f"image:    {release}: not built yet (inv lab.up or inv lab.build)")
        goldens = sorted(p.name for p in paths.golden_dir().glob(f"{img.key}-*") if (p / ".done").exists())
        print(f"snapshot: {', '.join(goldens) if goldens else 'none yet (made on the first lab.up)'}")
    print(f"releases: {', '.join(f'{r.family} {r.version}' for r in releases.available()) or 'none'}")
    for vm in _vms(c, names):
        s = vm.settings
        pid = vm.pid()
        state = f"running (pid {pid})" if pid else "stopped"
        ports = ", ".join(f"{g}->{h}" for g, h in sorted(vm.forwards().items()))
        print(f"{vm.name}: {state}; ports {ports}")
        server = serve.running_pid(int(s.lab.releases_port))
        print(f"  release server 127.0.0.1:{s.lab.releases_port}: {f'pid {server}' if server else 'stopped'}")


@task
def build(c: Context) -> None:
    """Build the lab images (a Debian release each: those the lab hosts run) and the release archives (what
    CI runs before the lab tests)."""
    _needs()
    build_all(load(c))


CLUSTER_HELP = {"hosts": "two or more lab hosts on one private link (default: lab,lab2)",
                "out": "file to write (default: lab-cluster.yml here)",
                "heartbeat": "also route the Watchdog to a heartbeat URL this often (e.g. 1m); the URL is "
                             "the secret heartbeat_url (ROSEY_HEARTBEAT_URL)"}


@task(klass=HostTask, help=CLUSTER_HELP, name="cluster-inventory")
@user_errors
def cluster_inventory(c: Context, hosts: str = "", out: str = "lab-cluster.yml", heartbeat: str = "") -> None:
    """Write an inventory with lab hosts as one monitoring cluster, to try "when the server itself dies"."""
    from fabfile.lab.cluster_inventory import write_cluster_inventory

    inv = load(c)
    names = [h.strip() for h in (hosts or "lab,lab2").split(",") if h.strip()]
    written = write_cluster_inventory(inv, names, Path(out), heartbeat=heartbeat or None)
    both = ",".join(names)
    print(f"lab: wrote {written.path} ({', '.join(names)} in cluster 'lab')")
    print(f"  next: inv lab.up -H {both}")
    print(f"        ROSEY_INVENTORY={out} inv sortie6 -H {both}")
    print(f"        ROSEY_INVENTORY={out} inv test-alert -H {names[-1]} --scenario host-down")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


ns = Collection("lab", up, down, ssh, status, build, cluster_inventory)
