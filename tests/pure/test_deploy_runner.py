"""Runner behaviour with fake steps and connections: parallel hosts, prefixes, failures, recap, pre-flight."""

from __future__ import annotations

import io
import textwrap
import threading
import time

import paramiko
import pytest

from fabfile.config.inventory import load_inventory
from fabfile.deploy import runner, steps
from fabfile.deploy.steps import install, services
from fabfile.deploy.steps.base import StepResult
from fabfile.ssh import transport
from tests.fakes import LocalConn, Overlap

SECRET = "s3cret-pa55word"


def write_inventory(tmp_path, monkeypatch, hosts: str):
    """An inventory with one email receiver and `hosts` (YAML lines under `hosts:`); the secrets in env."""
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", SECRET)
    monkeypatch.setenv("ROSEY_SMTP_PASSWORD", "smtp-pa55word")
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent("""
        defaults:
          receivers:
            email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25", auth_username: u}
        hosts:
    """) + hosts)
    return load_inventory(path)


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    return write_inventory(tmp_path, monkeypatch,
                           "  lab: {address: 127.0.0.1, ssh: {port: 2222}, secrets_file: none.yml}\n"
                           "  ghost: {address: 127.0.0.1, ssh: {port: 2299}, secrets_file: none.yml}\n")


def ok_step(name):
    def step(conn, host, ctx):
        if host.name == "ghost":
            err = OSError(111, "refused")
            raise paramiko.ssh_exception.NoValidConnectionsError({("127.0.0.1", 2299): err})
        ctx.log(f"working with {SECRET}")
        return StepResult(name, "ok", "fine")
    return step


def test_unreachable_host_fails_clearly_others_complete(inventory):
    out = io.StringIO()
    reports = []
    steps = [("a", ok_step("a")), ("b", ok_step("b")), ("verify", ok_step("verify"))]
    code = runner.run(inventory, inventory.select("lab,ghost"), steps, stream=out, connector=LocalConn.to,
                      reports_out=reports)
    text = out.getvalue()
    assert code == 1
    assert ("[ghost] a: FAILED — cannot connect to host ghost (127.0.0.1:2299): connection refused — "
            "check ssh.address/ssh.port in hosts.yml or that the server is up") in text
    assert "[ghost] b:" not in text and "[ghost] verify:" not in text  # nothing more is tried
    assert "[lab] verify: ok — fine" in text
    assert SECRET not in text and "[lab] working with ********" in text
    assert [(r.host, r.count("ok"), r.count("failed")) for r in reports] == [("lab", 3, 0), ("ghost", 0, 1)]
    assert "recap:" in text and "ghost  ok=0 changed=0 failed=1  FAILED" in text


def test_failed_step_stops_the_rest_but_verify_reports(inventory):
    out = io.StringIO()
    calls = []

    def rec(name, status):
        def step(conn, host, ctx):
            calls.append(name)
            return StepResult(name, status, "")
        return step

    steps = [("a", rec("a", "changed")), ("b", rec("b", "failed")), ("c", rec("c", "ok")),
             ("verify", rec("verify", "ok"))]
    code = runner.run(inventory, inventory.select("lab"), steps, stream=out, connector=LocalConn.to)
    assert code == 1 and calls == ["a", "b", "verify"]
    assert "lab  ok=1 changed=1 failed=1  FAILED" in out.getvalue()


def test_a_lost_connection_ends_that_hosts_run_even_verify(inventory):
    """verify would open a new connection and report a half-finished state as failures: after a lost
    connection the one line says what happened, and nothing more is sent to that host."""
    calls = []

    def lost(conn, host, ctx):
        calls.append("b")
        raise transport.ConnectionLost("validate and activate configs on 127.0.0.1: the SSH connection was "
                                       "lost")

    def rec(name):
        def step(conn, host, ctx):
            calls.append(name)
            return StepResult(name, "ok", "")
        return step

    out = io.StringIO()
    steps = [("a", rec("a")), ("b", lost), ("c", rec("c")), ("verify", rec("verify"))]
    code = runner.run(inventory, inventory.select("lab"), steps, stream=out, connector=LocalConn.to)
    assert code == 1 and calls == ["a", "b"]
    assert "[lab] b: FAILED — validate and activate configs on 127.0.0.1: the SSH connection was lost" \
        in out.getvalue()


def test_step_exception_is_one_masked_line(inventory):
    def boom(conn, host, ctx):
        raise RuntimeError(f"bad thing with {SECRET}\nsecond line")

    out = io.StringIO()
    code = runner.run(inventory, inventory.select("lab"), [("a", boom)], stream=out, connector=LocalConn.to)
    assert code == 1
    assert "[lab] a: FAILED — RuntimeError: bad thing with ********" in out.getvalue()
    assert "second line" not in out.getvalue()


def test_missing_secret_reported_before_any_connection(inventory, monkeypatch):
    monkeypatch.delenv("ROSEY_WEB_PASSWORD")
    out = io.StringIO()

    def connector(host):
        raise AssertionError("must not connect")

    code = runner.run(inventory, inventory.select("lab,ghost"), [("a", ok_step("a"))], stream=out,
                      connector=connector)
    text = out.getvalue()
    assert code == 2
    assert text.count("missing secret 'web_password'") == 2  # every host's problem, not just the first
    assert "nothing was changed" in text


def test_hosts_run_in_parallel(inventory):

    barrier = threading.Barrier(2, timeout=5)

    def wait_for_other(conn, host, ctx):
        barrier.wait()  # deadlocks (and times out) if hosts ran one after the other
        return StepResult("a", "ok")

    inv2 = inventory
    code = runner.run(inv2, [inv2.host("lab"), _renamed(inv2.host("lab"), "lab-b")], [("a", wait_for_other)],
                      stream=io.StringIO(), connector=LocalConn.to)
    assert code == 0


def _renamed(host, name):
    import dataclasses

    return dataclasses.replace(host, name=name)


def test_registry_resolves_names_directly_and_rejects_unknown_ones():
    named = dict(steps.named(["install-prometheus", "install-services"]))
    assert named["install-prometheus"] is install.install_prometheus
    assert named["install-services"] is services.install_services
    with pytest.raises(KeyError):
        steps.named(["nope"])


def test_every_registry_step_is_a_task_with_dry_run_exactly_when_it_changes_things():
    import tasks

    for spec in steps.STEPS:
        t = tasks.ns.tasks[spec.name]
        assert t.__doc__ == spec.help
        assert ("dry_run" in [a.name for a in t.get_arguments()]) == spec.changes
    sortie6 = tasks.ns.tasks["sortie6"]
    assert "dry_run" in [a.name for a in sortie6.get_arguments()]


def test_recap_profiles_each_step_per_host_with_its_ssh_commands(inventory):
    """Every recap says where the time went: wall seconds and SSH commands per step and host."""
    from fabfile.ssh import transport

    def slow(name, seconds, commands):
        def step(conn, host, ctx):
            time.sleep(seconds)
            for _ in range(commands):
                transport.stats(conn).count()
            return StepResult(name, "ok")
        return step

    out, reports = io.StringIO(), []
    code = runner.run(inventory, inventory.select("lab"), [("fetch", slow("fetch", 0.3, 2)),
                                                            ("verify", slow("verify", 0.0, 1))],
                      stream=out, connector=LocalConn.to, reports_out=reports)
    assert code == 0
    assert reports[0].step_seconds["fetch"] >= 0.3 and reports[0].commands == {"fetch": 2, "verify": 1}
    lines = out.getvalue().split("time per step (wall seconds, SSH commands):\n", 1)[1].splitlines()
    cells = {ln.split()[0]: ln.split()[1:] for ln in lines[1:]}
    assert lines[0].split() == ["lab"]
    assert cells["fetch"][1] == "2" and float(cells["fetch"][0].rstrip("s")) >= 0.3
    assert cells["verify"] == ["0.0s", "1"]
    assert cells["total"][1] == "3"


def test_parallel_bounds_the_hosts_at_once(tmp_path, monkeypatch):
    names = [f"h{i}" for i in range(6)]
    inv = write_inventory(tmp_path, monkeypatch,
                          "".join(f"  {n}: {{address: 127.0.0.1, secrets_file: none.yml}}\n" for n in names))
    for parallel, expected in ((2, 2), (1, 1), (10, 6)):
        overlap = Overlap()

        def step(conn, host, ctx, overlap=overlap):
            with overlap.busy(0.2):
                return StepResult("s", "ok")

        assert runner.run(inv, inv.select(",".join(names)), [("s", step)], stream=io.StringIO(),
                          connector=LocalConn.to, parallel=parallel) == 0
        assert overlap.peak == expected, (parallel, overlap.peak)


def test_a_password_in_clear_text_to_anyone_is_warned_once_per_host(inventory):
    out = io.StringIO()
    runner.run(inventory, inventory.select("lab"), [("a", ok_step("a"))], stream=out, connector=LocalConn.to)
    warnings = [ln for ln in out.getvalue().splitlines() if ln.startswith("warning: lab: the web UIs'")]
    assert warnings == ["warning: lab: the web UIs' password travels in clear text (basic auth over plain "
                        "HTTP) and web.allow_from includes any; set web.tls: true (HTTPS), narrow "
                        "web.allow_from to your addresses, or keep the ports closed and use `inv ui -H lab` "
                        "(SSH tunnels)"]
    import dataclasses

    from fabfile.ssh.webauth import clear_text_warning
    host = inventory.host("lab")
    narrowed = dataclasses.replace(host, web=dataclasses.replace(host.web, allow_from=("203.0.113.0/24",)))
    assert clear_text_warning(narrowed) is None


def test_a_host_alone_is_warned_that_its_death_goes_unheard(inventory):
    """No cluster peer and no heartbeat: nothing reports this server's death, on every deploy."""
    import dataclasses

    from fabfile.config.clusters import alone_warning
    from fabfile.config.settings import Cluster

    out = io.StringIO()
    runner.run(inventory, inventory.select("lab"), [("a", ok_step("a"))], stream=out, connector=LocalConn.to)
    warnings = [ln for ln in out.getvalue().splitlines() if " is alone" in ln]
    assert warnings == ["warning: lab is alone: when this server dies, nobody is told (no cluster peer, no "
                        "heartbeat); put it in a cluster with another host (`clusters:` in hosts.yml) or set "
                        "receivers.heartbeat (README \"When the server itself dies\")"]
    host = inventory.host("lab")
    clustered = dataclasses.replace(host, cluster=Cluster(name="rosey", peers=(), gossip_tls=True))
    assert alone_warning(clustered) is None


def test_the_shipped_inventory_clusters_test_and_prod_so_a_dead_server_is_heard():
    from fabfile.config.clusters import alone_warning
    from fabfile.config.inventory import DEFAULT_INVENTORY, load_inventory

    shipped = load_inventory(DEFAULT_INVENTORY)
    for name, peer in (("test", "prod"), ("prod", "test")):
        host = shipped.host(name)
        assert host.cluster is not None and [p.name for p in host.cluster.peers] == [peer]
        assert alone_warning(host) is None
