"""Decision logic of install/install-services and the remote helpers' parsing, without a server."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import time

import invoke
import pytest

from fabfile.config import layout
from fabfile.config.inventory import load_inventory
from fabfile.deploy import runner
from fabfile.deploy.steps import install, services
from fabfile.deploy.steps.base import StepContext
from fabfile.ssh import probe, stage, transport, webauth
from fabfile.ssh.session import session_of


@pytest.fixture(scope="module")
def host():
    return load_inventory().host("lab")


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


def _fake_release(folder, versions: dict[str, str], together: bool = False) -> None:
    """Binaries that print `<name>, version <v>`; `together`: each waits (at most 5 s) until every other
    one has started, and says a wrong version if it has not, so a run one after the other fails."""
    folder.mkdir()
    for name, v in versions.items():
        wait = ""
        if together:
            others = " ".join(f"[ -e started.{o} ] &&" for o in versions if o != name)
            wait = f"touch started.{name}; for _ in $(seq 50); do {others} break; sleep 0.1; done; " \
                   f"{others} true || {{ echo '{name}, version alone'; exit 0; }}\n"
        (folder / name).write_text(f"#!/bin/bash\n{wait}echo '{name}, version {v} (branch: debian)'\n")
        (folder / name).chmod(0o755)


def _run_checks(tmp_path, versions, want, together=False):
    _fake_release(tmp_path / "rel", versions, together)
    lines = install.version_checks("rel", list(versions), want)
    return subprocess.run(["bash", "-c", "set -eu\n" + "\n".join(lines) + '\necho "$v0|$v1"'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_new_binaries_are_checked_at_once_and_their_lines_kept(tmp_path):
    r = _run_checks(tmp_path, {"prometheus": "2.42.0", "promtool": "2.42.0"}, "2.42.0", together=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("prometheus, version 2.42.0 (branch: debian)|"
                        "promtool, version 2.42.0 (branch: debian)\n")


@pytest.mark.parametrize("versions, culprit", [
    ({"prometheus": "2.42.0", "promtool": "2.42.1"}, "promtool"),
    ({"prometheus": "2.42.01", "promtool": "2.42.0"}, "prometheus"),  # a longer version is another one
])
def test_a_new_binary_with_another_version_stops_the_install(tmp_path, versions, culprit):
    r = _run_checks(tmp_path, versions, "2.42.0")
    assert r.returncode == install.EXIT_BAD_BINARY and r.stdout == ""
    assert f"new {culprit} reports '{culprit}, version {versions[culprit]} (branch: debian)', " \
           "expected version 2.42.0" in r.stderr


def test_a_missing_binary_stops_the_install(tmp_path):
    (tmp_path / "rel").mkdir()
    script = "set -eu\n" + "\n".join(install.version_checks("rel", ["a", "b"], "1.0"))
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == install.EXIT_BAD_BINARY and "new a reports" in r.stderr


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

    host = load_inventory().host("test")
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
    # them without its reload; only a systemd that still says "not-found" reloads (checked, not assumed)
    answers = svc_state(UNITS, unit_same=False, active="inactive", enabled="disabled")
    for svc in layout.SERVICES:
        answers[f"{svc}_unit"] = ""  # no unit file yet
    fresh = services.decide(host, UNITS, answers)
    assert all(p.new_unit and p.upload_unit and not p.daemon_reload for p in fresh)
    script = services.apply_script(host, fresh, ["install units"])
    units = "prometheus.service alertmanager.service"
    check = (f"if systemctl show -p LoadState --value -- {units} | grep -qvx -e loaded -e ''; then "
             "systemctl daemon-reload; fi")
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


def test_new_units_load_without_a_reload_when_systemd_can(tmp_path):
    """The fresh-host lines run against a fake systemctl: it answers LoadState as systemd 252 does (one
    value per unit, a blank line between units), and logs what it is asked."""
    log = tmp_path / "log"
    fake = tmp_path / "systemctl"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n"
                    "case \"$*\" in show*) printf 'loaded\\n\\n%s\\n' \"$STATE\";; esac\n")
    fake.chmod(0o755)
    host = load_inventory().host("lab")
    answers = svc_state(UNITS, unit_same=False, active="inactive", enabled="disabled")
    for svc in layout.SERVICES:
        answers[f"{svc}_unit"] = ""
    plans = [dataclasses.replace(p, start=False) for p in services.decide(host, UNITS, answers)]
    script = services.apply_script(host, plans, [])
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for load, reloads in (("loaded", False), ("not-found", True)):
        log.write_text("")
        r = subprocess.run(["bash", "-c", script], input="", env={**env, "STATE": load}, text=True,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert ("daemon-reload" in log.read_text()) is reloads, (load, log.read_text())


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


def test_probe_runs_snippets_separately():
    marker = "__T__"
    snippets = {"a": "echo hi; echo err >&2", "b": "exit 3", "c": "printf x", "d": "cat"}
    out = subprocess.run(["bash", "-c", probe.probe_script(snippets, marker)], capture_output=True,
                         text=True, timeout=10).stdout
    got = probe.parse_probe(out, snippets, marker)
    assert {k: (v, v.rc) for k, v in got.items()} == {"a": ("hi\nerr", 0), "b": ("", 3), "c": ("x", 0),
                                                       "d": ("", 0)}


def test_probe_runs_snippets_at_once_and_prints_them_whole_in_order(tmp_path):
    """Without timing: the first part waits (at most 10 s) for a file only the last part creates, and says
    whether it came; run one after the other, the first would wait alone. Outputs larger than a pipe's
    buffer come back whole and in the snippets' order."""
    flag = tmp_path / "b-started"
    big = 300_000
    snippets = {
        "a": f"for i in $(seq 100); do [ -e {flag} ] && {{ echo together; exit 0; }}; sleep 0.1; done; "
             "echo alone; exit 1",
        "big1": f"head -c {big} /dev/zero | tr '\\0' x",
        "big2": f"head -c {big} /dev/zero | tr '\\0' y; exit 4",
        "b": f"touch {flag}; echo b",
    }
    out = subprocess.run(["bash", "-c", probe.probe_script(snippets, "__T__")], capture_output=True,
                         text=True, timeout=30).stdout
    got = probe.parse_probe(out, snippets, "__T__")
    assert (got["a"], got["a"].rc) == ("together", 0)
    assert got["big1"] == "x" * big and got["big1"].rc == 0
    assert got["big2"] == "y" * big and got["big2"].rc == 4
    assert (got["b"], got["b"].rc) == ("b", 0)
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("__T__ ")] == list(snippets)


class LocalConn(invoke.Context):
    """`transport.run` on this machine: the same command line Fabric would send, run by a local bash."""

    host = "localhost"


def test_probe_hands_stdin_to_snippets_as_a_private_file_removed_afterwards():
    got = probe.probe(LocalConn(), {"cfg": 'cat "$PROBE_STDIN"', "mode": 'stat -c %a "$PROBE_STDIN"',
                                     "path": 'echo "$PROBE_STDIN"', "own_stdin": "cat"},
                       sudo=False, stdin='user = "admin:pa55"\n')
    assert got["cfg"] == 'user = "admin:pa55"' and got["mode"] == "600" and got["own_stdin"] == ""
    assert got["path"].startswith("/tmp/rosey-probe.") and not os.path.exists(got["path"])


def test_install_snippet_is_atomic_and_fails_loudly(tmp_path):
    src, dest = tmp_path / "staged", tmp_path / "dest"
    src.write_text("new")
    dest.write_text("old")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    snippet = stage.install_snippet(str(src), str(dest), user, group, 0o640)
    assert "mv -fT" in snippet
    subprocess.run(["bash", "-c", f"set -e\n{snippet}"], check=True)
    assert dest.read_text() == "new" and not src.exists() and oct(dest.stat().st_mode & 0o777) == "0o640"
    bad = stage.install_snippet(str(tmp_path / "missing"), str(dest))
    r = subprocess.run(["bash", "-c", f"set -e\n{bad}\necho after"], capture_output=True, text=True)
    assert r.returncode != 0 and "after" not in r.stdout


def test_sha256_parse():
    h = "a" * 64
    assert probe.parse_sha256(f"{h}  /etc/x\n{h} */etc/y z\n") == {"/etc/x": h, "/etc/y z": h}


def test_install_refuses_a_downgrade_from_3x_before_anything_changes(host, monkeypatch):
    """The step, not only the rule: with 3.5.3 installed and 2.42.0 wanted it fails with the one line and
    sends nothing after its read (dry run or not)."""
    from fabfile.config.inventory import load_inventory as _load
    from fabfile.deploy.steps.base import StepContext

    v3 = "/usr/local/lib/rosey-monitoring/prometheus-3.5.3.linux-amd64"
    answers = state(links=f"{v3}/prometheus\n{v3}/promtool", current="prometheus, version 3.5.3 (branch: x)",
                    user=USER_EXISTS, dirs="prometheus:prometheus")
    monkeypatch.setattr(probe, "probe_read", lambda conn, read, masker=None: answers)

    def no_change(*args, **kwargs):
        raise AssertionError("nothing may run after the read")
    monkeypatch.setattr(transport, "run", no_change)
    monkeypatch.setattr(stage, "stage_file", no_change)
    ctx = StepContext(inventory=_load(), secrets={})
    for dry in (False, True):
        ctx.dry_run = dry
        res = install.install_prometheus(object(), host, ctx)
        assert res.status == "failed"
        want = "hosts.lab.prometheus.version: 2.42.0 cannot read the data Prometheus 3.5.3"
        assert res.summary.startswith(want)


class AheadConn:
    """A connection whose run's read-ahead answered the given reads (what `probe.read_ahead` keeps)."""

    def __init__(self, answered):
        session_of(self).ahead = answered


def prefetch(conn, host, service):
    """What install-<service> fetches beside, from what the runner hands it (its declared `later` reads)."""
    ctx = StepContext(inventory=load_inventory(), secrets={})
    return install.prefetch_for(runner.later_reads(conn, host, ctx, f"install-{service}"), host, service)


FRESH = {"links": "", "current": "", "release": "", "user": "", "dirs": "missing"}  # nothing installed


def test_the_other_release_is_fetched_beside_only_when_its_step_will_download_it(host):
    am_read = install.reads(host, "alertmanager")
    # the run's read-ahead says install-alertmanager will download: install-prometheus fetches it beside
    conn = AheadConn([(am_read, FRESH)])
    assert prefetch(conn, host, "prometheus") == "alertmanager"
    assert probe.peek_ahead(conn, am_read) is not None  # still there for its own step
    assert prefetch(conn, host, "alertmanager") is None  # never itself
    # no read-ahead (a single step), or its release already in place, or an upload: nothing ahead
    assert prefetch(AheadConn([]), host, "prometheus") is None
    am_rel = layout.release_dir(host, "alertmanager")
    installed = {"links": f"{am_rel}/alertmanager\n{am_rel}/amtool",
                 "current": "alertmanager, version 0.25.0",
                 "release": "alertmanager, version 0.25.0\namtool, version 0.25.0",
                 "user": "alertmanager:x:9:9::/nonexistent:/usr/sbin/nologin\nalertmanager:x:9:",
                 "dirs": "alertmanager:alertmanager"}
    assert prefetch(AheadConn([(am_read, installed)]), host, "prometheus") is None
    upload = dataclasses.replace(host, alertmanager=dataclasses.replace(host.alertmanager, source="upload"))
    conn = AheadConn([(install.reads(upload, "alertmanager"), FRESH)])
    assert prefetch(conn, upload, "prometheus") is None


@pytest.mark.parametrize("main_rc, fetched", [(0, True), (0, False), (3, True), (3, False)])
def test_the_step_waits_for_the_fetch_beside_it_and_keeps_its_own_exit(host, tmp_path, monkeypatch,
                                                                       main_rc, fetched):
    done = tmp_path / "prefetch-done"
    monkeypatch.setattr(install, "fetch_lines", lambda *a: [
        "sleep 0.5", f"touch {done}", "echo noise; echo noise >&2", "true" if fetched else "exit 42"])
    script = install.with_prefetch(host, f"echo main; exit {main_rc}", "alertmanager")
    r = subprocess.run(["bash", "-c", script], text=True, capture_output=True, timeout=30)
    assert r.returncode == main_rc and done.exists()  # the command ends after the fetch beside it
    assert r.stdout.split() == (["main", install.PREFETCHED] if fetched else ["main"])
    assert r.stderr == ""  # what the fetch says is its own step's business


class FullDiskConn(LocalConn):
    """SFTP that fails the way OpenSSH's sftp-server reports a full disk: a bare "Failure"."""

    def sftp(self):
        class Sftp:
            def mkdir(self, *a):
                raise OSError("Failure")
        return Sftp()


@pytest.mark.parametrize("low", [True, False])
def test_a_failed_upload_is_one_line_that_names_the_disk_only_when_it_is_full(monkeypatch, low):
    monkeypatch.setattr(stage, "LOW_SPACE_KB", 10**15 if low else 0)  # the real df of this machine's /tmp
    conn = FullDiskConn()
    with pytest.raises(transport.RemoteError) as e:
        stage.stage(conn, b"x", "alert_rules.yml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("uploading alert_rules.yml to localhost:/tmp failed (Failure)")
    assert ("no space left on the server (/tmp has" in msg and "Nothing was changed" in msg) is low


def test_a_changing_script_finishes_when_the_connection_goes_away(tmp_path):
    """What sshd leaves behind when a connection drops: a closed stdout (and, with a terminal, a SIGHUP).
    The locked script still runs to its end; a second run then sees its result."""
    done = tmp_path / "done"
    ours = {p for p in os.listdir("/run") if p.startswith(("rosey-out.", "rosey-err."))}
    script = transport.locked(f"sleep 1; echo step one; echo half > {done}; sleep 1; echo whole > {done}", 30)
    proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    time.sleep(0.3)
    proc.stdout.close()
    proc.stderr.close()
    os.killpg(proc.pid, signal.SIGHUP)
    proc.wait(timeout=20)
    assert done.read_text() == "whole\n"
    ok = subprocess.run(["bash", "-c", transport.locked("echo out; echo err >&2; exit 3", 30)],
                        capture_output=True, text=True, timeout=20)
    assert (ok.returncode, ok.stdout, ok.stderr) == (3, "out\n", "err\n")  # handed back when done
    assert {p for p in os.listdir("/run") if p.startswith(("rosey-out.", "rosey-err."))} == ours  # removed


@pytest.mark.parametrize("user", ["", "prometheus:x:998:998::/nonexistent:/usr/sbin/nologin",  # no group
                                  "prometheus:x:998:"])  # a group but no user
def test_a_user_or_group_missing_is_created(host, user):
    assert install.decide(host, "prometheus", state(user=user)).user
