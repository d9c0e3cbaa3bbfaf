"""install/install-services and the remote helpers run for real: probes, the install snippet, stand-in
releases and systemctl, all through a local bash (the decisions: tests/pure/test_deploy_decisions.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time

import pytest

from fabfile.config import layout
from fabfile.deploy.steps import install, services
from fabfile.ssh import probe, stage, transport
from tests.fakes import LocalConn
from tests.helpers import fixture_inventory
from tests.pure.test_deploy_decisions import UNITS, svc_state


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


def test_new_units_load_without_a_reload_when_systemd_can(tmp_path):
    """The fresh-host lines run against a fake systemctl: it answers LoadState as systemd 252 does (one
    value per unit, a blank line between units), and logs what it is asked."""
    log = tmp_path / "log"
    fake = tmp_path / "systemctl"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n"
                    "case \"$*\" in show*) printf 'loaded\\n\\n%s\\n' \"$STATE\";; esac\n")
    fake.chmod(0o755)
    host = fixture_inventory().host("lab")
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


@pytest.mark.parametrize("low", [True, False])
def test_a_failed_upload_is_one_line_that_names_the_disk_only_when_it_is_full(monkeypatch, low):
    monkeypatch.setattr(stage, "LOW_SPACE_KB", 10**15 if low else 0)  # the real df of this machine's /tmp
    conn = LocalConn(sftp_fails="Failure")  # as OpenSSH's sftp-server reports a full disk
    with pytest.raises(transport.RemoteError) as e:
        stage.stage(conn, b"x", "alert_rules.yml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("uploading alert_rules.yml to localhost:/tmp failed (Failure)")
    assert ("no space left on the server (/tmp has" in msg and "Nothing was changed" in msg) is low


def test_a_changing_script_finishes_when_the_connection_goes_away(tmp_path):
    """What sshd leaves behind when a connection drops: a closed stdout (and, with a terminal, a SIGHUP).
    The locked script still runs to its end; a second run then sees its result."""
    done, files = tmp_path / "done", tmp_path / "files"
    # the output files this script's own wrapper made (other runs on this machine make theirs in /run too)
    script = transport.locked(f'echo "$_o" "$_e" > {files}; sleep 1; echo step one; echo half > {done}; '
                              f"sleep 1; echo whole > {done}", 30)
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
    made = files.read_text().split()
    assert len(made) == 2 and not any(os.path.exists(f) for f in made)  # removed when it ended
