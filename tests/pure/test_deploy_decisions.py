"""Decision logic of install/install-services and the remote helpers' parsing, without a server."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from fabfile.config import layout
from fabfile.deploy import runner
from fabfile.deploy.steps import install, services
from fabfile.deploy.steps.base import StepContext
from fabfile.facts import files
from fabfile.ssh import probe, stage, transport, webauth
from tests.fakes import LocalConn
from tests.helpers import fixture_inventory

REL = "/usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64"
USER_EXISTS = "prometheus:x:998:998::/nonexistent:/usr/sbin/nologin\nprometheus:x:998:"  # getent's answers


def state(links="", current="", release="", user="", dirs="missing"):
    return {"links": links, "current": current, "release": release, "user": user, "dirs": dirs}


def test_fresh_server_needs_everything(host):
    plan = install.decide(host, "prometheus", state(release="bash: not found\nbash: not found"))
    assert plan.fetch and plan.switch and plan.user and plan.dirs == ["/opt/rosey-bot/monitoring/data"]
    assert plan.summary == "prometheus none → 2.42.0"


def test_installed_at_version_is_ok(host):
    plan = install.decide(host, "prometheus", state(
        links=f"{REL}/prometheus\n{REL}/promtool",
        current="prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+b5)",
        release="prometheus, version 2.42.0+ds (branch: x)\npromtool, version 2.42.0+ds (branch: x)",
        user=USER_EXISTS, dirs="prometheus:prometheus"))
    assert plan.changes == []


def test_version_change_fetches_and_switches(host):
    old = "/usr/local/lib/rosey-monitoring/prometheus-2.40.0.linux-amd64"
    plan = install.decide(host, "prometheus", state(
        links=f"{old}/prometheus\n{old}/promtool", current="prometheus, version 2.40.0 (branch: HEAD)",
        release="", user=USER_EXISTS, dirs="prometheus:prometheus"))
    assert plan.fetch and plan.switch and not plan.user and not plan.dirs
    assert plan.summary == "prometheus 2.40.0 → 2.42.0"


def test_kept_release_is_switched_back_without_download(host):
    old = "/usr/local/lib/rosey-monitoring/prometheus-2.53.3.linux-amd64"
    plan = install.decide(host, "prometheus", state(
        links=f"{old}/prometheus\n{old}/promtool", current="prometheus, version 2.53.3",
        release="prometheus, version 2.42.0\npromtool, version 2.42.0",
        user=USER_EXISTS, dirs="prometheus:prometheus"))
    assert not plan.fetch and plan.switch


def test_runbook_owned_data_dir_is_handed_over_not_recreated(host):
    plan = install.decide(host, "prometheus", state(dirs="rosey:rosey"))
    assert plan.dirs == ["/opt/rosey-bot/monitoring/data"]
    script = install.apply_script(host, dataclasses.replace(plan, fetch=False, switch=False, user=False))
    assert "chown -R prometheus:prometheus /opt/rosey-bot/monitoring/data" in script
    assert "rm -rf /opt/rosey-bot/monitoring/data" not in script


def test_apply_script_verifies_before_installing(host):
    plan = install.decide(host, "prometheus", state())
    script = install.apply_script(host, plan, fetch_cmd="archive=x.tar.gz")
    assert script.index("checksum mismatch") < script.index("tar -xzf") < script.index("ln -sfn")
    assert script.index("--version") < script.index("ln -sfn")  # new binary checked before the switch


def test_local_archive_refuses_a_mismatch(tmp_path, host):
    name = "prometheus-2.42.0.linux-amd64.tar.gz"
    (tmp_path / name).write_bytes(b"not the release")
    (tmp_path / "sha256sums.txt").write_text(f"{'0' * 64}  {name}\n")
    h = dataclasses.replace(host, prometheus=dataclasses.replace(host.prometheus, archive_dir=str(tmp_path)))
    with pytest.raises(install.ChecksumError, match="checksum mismatch .* expected 0000.*got "):
        install.local_archive(h, "prometheus")
    good = hashlib.sha256(b"not the release").hexdigest()
    (tmp_path / "sha256sums.txt").write_text(f"{good}  {name}\n")
    assert install.local_archive(h, "prometheus")[1] == good


# ---------------------------------------------------------------- install-services


def svc_state(units, *, active="active", enabled="enabled", exe_same=True, unit_same=True, newer=False,
              exe=None, binary=None):
    from tests.helpers import units_answer

    host = fixture_inventory().host("test")
    out = {"units": units_answer(host, active=active, enabled=enabled,
                                 exe=exe or ({} if exe_same else {s: f"/usr/local/lib/x/{s}-old"
                                                                  for s in layout.SERVICES}),
                                 binary=binary, started=1000.0 if newer else 2000.0,
                                 unit_mtime=2000 if newer else 1000)}
    for svc in layout.SERVICES:
        sha = hashlib.sha256(units[f"{svc}.service"].encode()).hexdigest() if unit_same else "f" * 64
        out[f"{svc}_unit"] = f"{sha}  {layout.remote_path(host, f'{svc}.service')}"
    return out


UNITS = {"prometheus.service": "[Unit]\nA\n", "alertmanager.service": "[Unit]\nB\n"}


def test_services_steady_state_is_noop(host):
    assert not any(p.changes for p in services.decide(host, UNITS, svc_state(UNITS)))


def test_services_restart_only_on_binary_or_unit_change(host):
    plans = services.decide(host, UNITS, svc_state(UNITS, exe_same=False))
    assert all(p.restart and not p.upload_unit for p in plans)
    plans = services.decide(host, UNITS, svc_state(UNITS, unit_same=False))
    assert all(p.restart and p.upload_unit and p.daemon_reload for p in plans)
    plans = services.decide(host, UNITS, svc_state(UNITS, newer=True))  # earlier run died before restarting
    assert all(p.restart and not p.upload_unit for p in plans)


def test_services_start_and_enable_when_down(host):
    plans = services.decide(host, UNITS, svc_state(UNITS, active="inactive", enabled="disabled"))
    assert all(p.start and p.enable and not p.restart for p in plans)


def test_both_services_start_in_one_systemctl_before_any_wait(host):
    plans = services.decide(host, UNITS, svc_state(UNITS, active="inactive"))
    both = services.apply_script(host, plans, [])
    assert both.count("systemctl restart") == 1
    assert both.index("systemctl restart prometheus.service alertmanager.service") < both.index("if healthy")
    script = services.apply_script(host, [p for p in plans if p.service == "prometheus"], [])
    assert "systemctl restart prometheus.service\n" in script and "alertmanager.service" not in script


def test_systemd_is_reloaded_at_most_once_and_not_for_new_units(host):
    # a fresh host: new units, not enabled. systemd loads a new unit file on first use, so `enable` links
    # them without its reload; only a systemd that still says "not-found" or that a reload is pending
    # (Debian 13's 257) reloads (checked, not assumed)
    answers = svc_state(UNITS, unit_same=False, active="inactive", enabled="disabled")
    for svc in layout.SERVICES:
        answers[f"{svc}_unit"] = ""  # no unit file yet
    fresh = services.decide(host, UNITS, answers)
    assert all(p.new_unit and p.upload_unit and not p.daemon_reload for p in fresh)
    script = services.apply_script(host, fresh, ["install units"])
    units = "prometheus.service alertmanager.service"
    check = (f"if systemctl show -p LoadState,NeedDaemonReload --value -- {units} "
             "| grep -qvx -e loaded -e no -e ''; then systemctl daemon-reload; fi")
    assert script.index("install units") < script.index(f"systemctl enable --quiet --no-reload {units}\n")
    assert script.index(f"--no-reload {units}\n") < script.index(check) < script.index("systemctl restart")
    assert script.count("daemon-reload") == 1  # the one inside the check
    assert ("would run: systemctl daemon-reload only if systemd does not load the new units itself"
            in services.dry_run_details(host, fresh, UNITS, {}))
    # units changed on an enabled host: the loaded units must re-read their files, one reload
    changed = services.decide(host, UNITS, svc_state(UNITS, unit_same=False))
    assert all(p.daemon_reload and not p.new_unit for p in changed)
    script = services.apply_script(host, changed, ["install units"])
    assert script.index("install units") < script.index("systemctl daemon-reload") < script.index("restart")
    assert "systemctl enable" not in script and "LoadState" not in script
    # changed units on a host where they are not enabled: `enable` without --no-reload is that one reload
    answers = svc_state(UNITS, unit_same=False, active="inactive", enabled="disabled")
    script = services.apply_script(host, services.decide(host, UNITS, answers), ["install units"])
    assert f"systemctl enable --quiet {units}\n" in script and "daemon-reload" not in script


def test_services_dry_run_shows_unit_diff_and_what_would_restart(host):
    plans = services.decide(host, UNITS, svc_state(UNITS, unit_same=False))
    plans[1] = services.decide(host, UNITS, svc_state(UNITS, exe_same=False))[1]
    current = {"prometheus.service": "[Unit]\nOLD\n"}
    lines = services.dry_run_details(host, plans, UNITS, current)
    unit = layout.remote_path(host, "prometheus.service")
    assert lines[0] == f"would write {unit}"
    assert "-OLD" in lines and "+A" in lines and f"+++ {unit} (rendered)" in lines
    assert "would run: systemctl daemon-reload" in lines
    assert "would restart prometheus.service (unit updated) and wait for /-/healthy" in lines
    assert "would restart alertmanager.service (binary changed) and wait for /-/healthy" in lines
    assert not any("alertmanager.service (server)" in ln for ln in lines)


def test_password_goes_to_stdin_not_the_command_line(host):
    plans = services.decide(host, UNITS, svc_state(UNITS, active="inactive"))
    script = services.apply_script(host, plans, [])
    assert "pa$$w" not in script and "-K \"$cfg\"" in script
    cfg = webauth.curl_config(host, {"web_password": 'pa$$w"x\\'})
    assert cfg == 'user = "admin:pa$$w\\"x\\\\"\n'


# ---------------------------------------------------------------- remote helpers


def test_sha256_parse():
    h = "a" * 64
    assert files.parse_sha256(f"{h}  /etc/x\n{h} */etc/y z\n") == {"/etc/x": h, "/etc/y z": h}


def test_install_refuses_a_downgrade_from_3x_before_anything_changes(host, monkeypatch):
    """The step, not only the rule: with 3.5.3 installed and 2.42.0 wanted it fails with the one line and
    sends nothing after its read (dry run or not)."""
    v3 = "/usr/local/lib/rosey-monitoring/prometheus-3.5.3.linux-amd64"
    answers = state(links=f"{v3}/prometheus\n{v3}/promtool", current="prometheus, version 3.5.3 (branch: x)",
                    user=USER_EXISTS, dirs="prometheus:prometheus")
    monkeypatch.setattr(probe, "probe_read", lambda conn, read, masker=None: answers)

    def no_change(*args, **kwargs):
        raise AssertionError("nothing may run after the read")
    monkeypatch.setattr(transport, "run", no_change)
    monkeypatch.setattr(stage, "stage_file", no_change)
    ctx = StepContext(inventory=fixture_inventory(), secrets={})
    for dry in (False, True):
        ctx.dry_run = dry
        res = install.install_prometheus(object(), host, ctx)
        assert res.status == "failed"
        want = "hosts.lab.prometheus.version: 2.42.0 cannot read the data Prometheus 3.5.3"
        assert res.summary.startswith(want)


def prefetch(conn, host, service):
    """What install-<service> fetches beside, from what the runner hands it (its declared `later` reads)."""
    ctx = StepContext(inventory=fixture_inventory(), secrets={})
    return install.prefetch_for(runner.later_reads(conn, host, ctx, f"install-{service}"), host, service)


FRESH = {"links": "", "current": "", "release": "", "user": "", "dirs": "missing"}  # nothing installed


def test_the_other_release_is_fetched_beside_only_when_its_step_will_download_it(host):
    ctx = StepContext(inventory=fixture_inventory(), secrets={})
    am_read = install.reads_alertmanager(host, ctx)
    # the run's read-ahead says install-alertmanager will download: install-prometheus fetches it beside
    conn = LocalConn(ahead=[(am_read, FRESH)])
    assert prefetch(conn, host, "prometheus") == "alertmanager"
    assert probe.peek_ahead(conn, am_read) is not None  # still there for its own step
    assert prefetch(conn, host, "alertmanager") is None  # never itself
    # no read-ahead (a single step), or its release already in place, or an upload: nothing ahead
    assert prefetch(LocalConn(ahead=[]), host, "prometheus") is None
    am_rel = layout.release_dir(host, "alertmanager")
    installed = {"links": f"{am_rel}/alertmanager\n{am_rel}/amtool",
                 "current": "alertmanager, version 0.25.0",
                 "release": "alertmanager, version 0.25.0\namtool, version 0.25.0",
                 "user": "alertmanager:x:9:9::/nonexistent:/usr/sbin/nologin\nalertmanager:x:9:",
                 "dirs": "alertmanager:alertmanager"}
    assert prefetch(LocalConn(ahead=[(am_read, installed)]), host, "prometheus") is None
    upload = dataclasses.replace(host, alertmanager=dataclasses.replace(host.alertmanager, source="upload"))
    conn = LocalConn(ahead=[(install.reads_alertmanager(upload, ctx), FRESH)])
    assert prefetch(conn, upload, "prometheus") is None


@pytest.mark.parametrize("user", ["", "prometheus:x:998:998::/nonexistent:/usr/sbin/nologin",  # no group
                                  "prometheus:x:998:"])  # a group but no user
def test_a_user_or_group_missing_is_created(host, user):
    assert install.decide(host, "prometheus", state(user=user)).user


def test_a_pending_systemd_reload_is_the_one_change_and_says_so(host):
    # Debian 13's systemd 257 after `enable --no-reload` of new units: loaded, current, running, but
    # NeedDaemonReload=yes. The next run reloads and names why (it used to say "prometheus: ; alertmanager: ")
    answers = svc_state(UNITS)
    answers["units"] = answers["units"].replace("NeedDaemonReload=no", "NeedDaemonReload=yes")
    plans = services.decide(host, UNITS, answers)
    assert all(p.daemon_reload and not (p.upload_unit or p.enable or p.start or p.restart) for p in plans)
    assert [p.describe() for p in plans] == [f"{s}: systemd reload pending" for s in layout.SERVICES]
    script = services.apply_script(host, plans, [])
    assert script.count("systemctl daemon-reload") == 1 and "restart" not in script
    # and nothing pending: nothing to do
    assert not any(p.changes for p in services.decide(host, UNITS, svc_state(UNITS)))
