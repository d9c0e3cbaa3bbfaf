"""Certificates are made by the steps that install them, never by reading secrets (issue #31, item 3).

Read-only work (`inv status`, verify, `inv render`, a dry run, the pre-flight) writes no file anywhere: HOME,
the XDG folders and the temporary folder all point into tmp_path, whose tree must not change. A real
deploy-configs makes the gossip and web certificates when they are missing and reuses them after.
"""

from __future__ import annotations

import io
import tempfile
import types
from pathlib import Path

import pytest

from fabfile.alerting.api import ApiError, ca_bundle_file
from fabfile.config import render
from fabfile.config.certs import is_pending, pending
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import GOSSIP_CERT, GOSSIP_KEY, WEB_CA, WEB_CERT
from fabfile.config.secrets import load_secrets
from fabfile.deploy import runner
from fabfile.deploy.steps import configs, verify
from fabfile.deploy.steps.base import StepContext
from fabfile.masking import Masker
from fabfile.ssh.probe import Out

HOSTS = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: smtp.example.com:587}
  web: {tls: true}
  alertmanager: {version: 0.27.0, group_interval: 30s}
hosts:
  test: {address: test.example.com, peer_address: 10.0.0.1, env: test}
  prod: {address: prod.example.com, peer_address: 10.0.0.2, env: production}
clusters:
  rosey: [test, prod]
"""


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None: a folder)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in root.rglob("*")}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An inventory of a clustered pair with gossip and web TLS, no certificate made yet; every place a
    program could write to without asking lies under tmp_path."""
    for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"), ("TMPDIR", "tmp")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "hosts.yml").write_text(HOSTS)
    (tmp_path / "secrets.yml").write_text("web_password: shared-pw\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    return inv, tmp_path


def ctx_for(inv, host, *, dry_run: bool) -> StepContext:
    secrets = load_secrets(inv, host)
    return StepContext(inventory=inv, secrets=secrets, dry_run=dry_run, masker=Masker(secrets.values()),
                       log=lambda _line: None)


def test_reading_secrets_makes_no_certificate(world):
    inv, root = world
    before = tree(root)
    for alias in ("test", "prod"):
        s = load_secrets(inv, inv.host(alias))
        assert s["web_password"] == "shared-pw"
        assert all(is_pending(s[n]) for n in (GOSSIP_CERT, GOSSIP_KEY, WEB_CERT, WEB_CA))
        notes = pending(s)
        assert any(n.startswith(f"gossip certificate of {alias} in ") for n in notes), notes
        assert any(n.startswith(f"web certificate of {alias} in ") for n in notes), notes
    assert tree(root) == before


def test_the_preflight_and_a_read_only_render_write_nothing(world):
    inv, root = world
    before = tree(root)
    hosts = [inv.host("test"), inv.host("prod")]
    secrets, problems = runner.preflight(inv, hosts)
    assert problems == []
    r = render.render_host(inv, hosts[0], secrets["test"], hash_password=False)
    assert "gossip TLS material (not issued yet)" in r.files["alertmanager.service"]
    assert tree(root) == before


def test_verify_writes_nothing_and_shows_no_fingerprint_of_a_placeholder(world, monkeypatch):
    inv, root = world
    before = tree(root)
    host = inv.host("test")
    monkeypatch.setattr(verify, "gather", lambda conn, h, ctx: {})
    res = verify.verify(object(), host, ctx_for(inv, host, dry_run=False))
    assert res.status == "failed" and not any("SHA-256" in d for d in res.details)
    assert tree(root) == before


def test_status_reads_each_hosts_secrets_once_and_writes_nothing(world, monkeypatch, capsys):
    from fabfile.ssh import session
    from fabfile.status import cli

    inv, root = world
    before = tree(root)
    seen: list[str] = []

    def counting(inventory, host):
        seen.append(host.name)
        return load_secrets(inventory, host)

    def unreachable(host):
        raise OSError("no route")

    monkeypatch.setattr(cli, "load_secrets", counting)
    monkeypatch.setattr(session, "connect", unreachable)
    assert cli.cli_status(inv, [inv.host("test"), inv.host("prod")]) == 1
    assert sorted(seen) == ["prod", "test"]
    assert "no route" in capsys.readouterr().out
    assert tree(root) == before


def test_api_clients_without_a_web_ca_here_say_what_makes_it(world):
    inv, _ = world
    host = inv.host("test")
    bundle = ca_bundle_file(host, load_secrets(inv, host))
    with pytest.raises(ApiError, match=r"no web CA certificate on this machine .*inv deploy-configs -H test"):
        bundle.__enter__()


def test_render_out_writes_only_into_out(world, monkeypatch):
    from fabfile.config import render_to_dir as rtd

    inv, root = world
    monkeypatch.setattr(rtd, "validate_rendered", lambda *a, **k: [])  # the tools' own temp copy: elsewhere
    before = tree(root)
    out = root / "out"
    assert rtd.render_to_dir(inv, [inv.host("test"), inv.host("prod")], out, rtd.Output(io.StringIO())) == []
    after = {k: v for k, v in tree(root).items() if k != "out" and not k.startswith("out/")}
    assert after == before
    assert "(not issued yet)" in (out / "test" / "alertmanager.service").read_text()


# ---------------------------------------------------------------- deploy-configs, with a fake server


class FakeServer:
    """deploy-configs' remote calls: an empty server that takes every upload and activates it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.staged: dict[str, bytes] = {}
        empty = {"sha": Out("", 0), "stat": Out("", 0), "units": Out("", 0), "web": Out("", 0)}
        monkeypatch.setattr(configs, "probe_read", lambda conn, read, masker=None: dict(empty))
        monkeypatch.setattr(configs, "probe", lambda conn, snippets, **kw: {k: Out("", 1) for k in snippets})
        monkeypatch.setattr(configs, "stage", self.stage)
        monkeypatch.setattr(configs, "forget_stage", lambda conn: None)
        monkeypatch.setattr(configs, "run", lambda conn, script, **kw: types.SimpleNamespace(
            exited=0, stdout="", stderr=""))

    def stage(self, conn, data: bytes, name: str) -> str:
        self.staged[name] = data
        return f"/tmp/stage/{name}"


def test_a_dry_run_of_deploy_configs_says_what_it_would_issue_and_makes_nothing(world, monkeypatch):
    inv, root = world
    FakeServer(monkeypatch)
    before = tree(root)
    res = configs.deploy_configs(object(), inv.host("test"), ctx_for(inv, inv.host("test"), dry_run=True))
    assert res.status == "changed"
    assert any(d.startswith("would issue gossip certificate of test in ") for d in res.details), res.details
    assert any(d.startswith("would issue web certificate of test in ") for d in res.details), res.details
    assert tree(root) == before


def test_a_real_deploy_configs_issues_missing_certificates_then_reuses_them(world, monkeypatch):
    inv, root = world
    server = FakeServer(monkeypatch)
    host = inv.host("test")
    ctx = ctx_for(inv, host, dry_run=False)
    res = configs.deploy_configs(object(), host, ctx)
    assert res.status == "changed", res
    assert any(d.startswith("issued gossip certificate of test in ") for d in res.details), res.details
    gossip, web = root / "gossip-pki" / "rosey", root / "web-pki"
    assert server.staged[GOSSIP_CERT].decode() == (gossip / "test.crt").read_text()
    assert server.staged[WEB_CERT].decode() == (web / "test.crt").read_text()
    assert not pending(ctx.secrets)  # install-services, later in the same run, sees the real material
    assert ctx.masker(ctx.secrets[GOSSIP_KEY]) == "********"  # the new key is masked from here on
    made = tree(root)

    again = ctx_for(inv, host, dry_run=False)  # the next run: read from disk, nothing pending
    assert again.secrets == ctx.secrets
    res2 = configs.deploy_configs(object(), host, again)
    assert not any(d.startswith("issued") for d in res2.details), res2.details
    assert tree(root) == made  # reused: not even a lock file is touched


def test_a_certificate_that_is_due_reads_as_pending_until_a_real_deploy(world):
    from fabfile.config.secrets import load_secrets_issuing

    inv, root = world
    load_secrets_issuing(inv, inv.host("test"))
    made = tree(root)
    (root / "hosts.yml").write_text(HOSTS.replace("test.example.com", "test2.example.com"))
    moved = load_inventory(root / "hosts.yml")
    s = load_secrets(moved, moved.host("test"))
    assert is_pending(s[WEB_CERT]) and not is_pending(s[GOSSIP_CERT])  # the gossip name did not change
    assert any(n.endswith("(names other addresses)") for n in pending(s)), pending(s)
    assert (root / "web-pki" / "ca.crt").read_text() in s[WEB_CA]  # the CA stays
    assert {k: v for k, v in tree(root).items() if k != "hosts.yml"} == \
        {k: v for k, v in made.items() if k != "hosts.yml"}
