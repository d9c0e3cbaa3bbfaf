"""The read-ahead: every step's read in one round trip, answered once, dropped as soon as anything is applied.

Commands run on this machine through the same `transport.run` path Fabric would use (a local bash stands in
for the SSH session; `sudo -n` is dropped because the sandbox has no sudo).
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess

import pytest

from fabfile.deploy import runner
from fabfile.deploy import steps as registry
from fabfile.deploy.steps.base import StepResult
from fabfile.ssh import probe, transport
from tests.fakes import LocalConn
from tests.pure.test_deploy_runner import inventory  # noqa: F401  (fixture)


def test_one_round_trip_answers_each_read_once_with_what_a_live_probe_sees(tmp_path):
    f = tmp_path / "state"
    f.write_text("v1")
    a = probe.Read({"x": f"cat {f}", "rc": "exit 3"})
    b = probe.Read({"x": "echo other", "stdin": 'cat "$PROBE_STDIN"'}, stdin="pw=1\n")
    conn = LocalConn()
    assert probe.read_ahead(conn, [a, b]) == 2
    assert transport.stats(conn).commands == 1
    got_a, got_b = probe.probe_read(conn, a), probe.probe_read(conn, b)
    assert transport.stats(conn).commands == 1  # both answered from the read-ahead
    assert got_a == {"x": "v1", "rc": ""} and got_a["rc"].rc == 3 and got_a["x"].ok
    assert got_b == {"x": "other", "stdin": "pw=1"}
    f.write_text("v2")
    assert probe.probe_read(conn, a)["x"] == "v2"  # answered once: a second read goes to the server
    assert transport.stats(conn).commands == 2


def test_a_snippet_two_steps_ask_for_runs_once(tmp_path):
    counter = tmp_path / "runs"
    slow = f"echo x >> {counter}; wc -l < {counter}"
    a, b = probe.Read({"fw": slow, "own": "echo a"}), probe.Read({"firewall": slow})
    conn = LocalConn()
    probe.read_ahead(conn, [a, b])
    assert probe.probe_read(conn, a) == {"fw": "1", "own": "a"}
    assert probe.probe_read(conn, b) == {"firewall": "1"}
    assert counter.read_text() == "x\n"


def test_anything_applied_drops_what_was_read_ahead(tmp_path):
    f = tmp_path / "state"
    f.write_text("before")
    a, b = probe.Read({"x": f"cat {f}"}), probe.Read({"y": "echo y"})
    conn = LocalConn()
    probe.read_ahead(conn, [a, b])
    transport.run(conn, f"echo after > {f}")  # an apply step
    assert probe.probe_read(conn, a)["x"] == "after"
    assert transport.stats(conn).commands == 3


def test_a_change_ends_with_the_next_read_in_the_same_command(tmp_path):
    f = tmp_path / "state"
    f.write_text("before")
    nxt = probe.Read({"x": f"cat {f}", "rc": "exit 3"})
    conn = LocalConn()
    probe.read_after_change(conn, nxt)
    res = transport.run(conn, f"echo after > {f}; echo applied; echo to-stderr >&2")
    assert res.stdout == "applied\n" and res.stderr == "to-stderr\n"  # the read is not part of the output
    got = probe.probe_read(conn, nxt)
    assert got == {"x": "after", "rc": ""} and got["rc"].rc == 3  # what a live probe after the change sees
    assert transport.stats(conn).commands == 1
    f.write_text("later")
    assert probe.probe_read(conn, nxt)["x"] == "later"  # answered once
    assert transport.stats(conn).commands == 2


def test_no_read_after_a_failed_change_nor_one_that_needs_stdin_or_waits(tmp_path):
    f = tmp_path / "state"
    f.write_text("v1")
    plain = probe.Read({"x": f"cat {f}"})
    for nxt, run_stdin, script in (
            (plain, None, f"echo v2 > {f}; exit 4"),  # the change failed: the next step looks for itself
            (probe.Read({"x": f"cat {f}"}, stdin="pw"), None, f"echo v2 > {f}"),  # its stdin: never sent
            (probe.Read({"x": f"cat {f}"}, follows_change=False), None, f"echo v2 > {f}")):
        f.write_text("v1")
        conn = LocalConn()
        probe.read_after_change(conn, nxt)
        res = transport.run(conn, script, check=False, stdin=run_stdin)
        assert "__ROSEY" not in res.stdout
        assert probe.probe_read(conn, nxt)["x"] == "v2" and transport.stats(conn).commands == 2
    conn = LocalConn()  # a run with its own input (install-services' curl config) still reads ahead
    probe.read_after_change(conn, probe.Read({"x": f"cat {f}", "in": "cat"}))
    res = transport.run(conn, f"cat > {f}", stdin="the run's own input\n")
    assert res.stdout == "" and f.read_text() == "the run's own input\n"
    assert probe.probe_read(conn, probe.Read({"x": f"cat {f}", "in": "cat"})) == {
        "x": "the run's own input", "in": ""}  # the read's snippets never see that input
    assert transport.stats(conn).commands == 1
    conn = LocalConn()
    probe.read_after_change(conn, plain)
    probe.read_after_change(conn, None)  # the runner clears it after the last step
    transport.run(conn, "true")
    probe.probe_read(conn, plain)
    assert transport.stats(conn).commands == 2


def test_reads_it_cannot_combine_are_left_to_their_step():
    one, other = probe.Read({"a": "echo 1"}, stdin="one"), probe.Read({"b": "echo 2"}, stdin="two")
    plain = probe.Read({"c": "echo 3"})
    conn = LocalConn()
    assert probe.read_ahead(conn, [one, other, plain]) == 2  # `other` needs a different stdin
    assert probe.read_ahead(LocalConn(), [plain]) == 0  # a single read gains nothing
    probe.probe_read(conn, one), probe.probe_read(conn, plain)
    assert transport.stats(conn).commands == 1
    assert probe.probe_read(conn, other) == {"b": "2"} and transport.stats(conn).commands == 2


def _probe_step(name: str, apply: bool = False):
    def step(conn, host, ctx):
        probe.probe_read(conn, registry.BY_NAME[name].reads(host, ctx))
        if apply:
            transport.run(conn, "true")
            return StepResult(name, "changed", "applied")
        return StepResult(name, "ok")
    return step


def test_a_noop_run_of_every_step_is_one_round_trip_and_an_apply_sends_later_reads_to_the_server(
        inventory):  # noqa: F811  (the fixture imported above)
    """(`inventory`: the runner tests' two-host inventory; only its reachable `lab` is used)"""
    names = list(registry.SORTIE6)
    for applies, expected in ((set(), 1), ({"deploy-configs"}, 1 + 1 + 2)):
        conn = LocalConn()  # each step's real snippets run here (most find nothing) and are kept
        reports: list[runner.HostReport] = []
        steps = [(n, _probe_step(n, n in applies)) for n in names]
        code = runner.run(inventory, inventory.select("lab"), steps, stream=io.StringIO(),
                          reports_out=reports,
                          connector=lambda h, c=conn: c)
        assert code == 0
        # no-op: the read-ahead alone; an apply in deploy-configs: it (install-services' read at its end),
        # then firewall's and verify's reads go live
        assert len(conn.sent) == expected, conn.sent
        assert reports[0].commands[runner.READ_AHEAD] == 1
        assert runner.READ_AHEAD in reports[0].step_seconds
    # one step alone reads for itself: no read-ahead, and none in the profile
    conn, reports = LocalConn(), []
    runner.run(inventory, inventory.select("lab"), [("verify", _probe_step("verify"))], stream=io.StringIO(),
               reports_out=reports, connector=lambda h: conn)
    assert len(conn.sent) == 1 and runner.READ_AHEAD not in reports[0].step_seconds


def test_a_command_that_hangs_ends_with_a_clear_error_instead_of_hanging_the_tool():
    conn = LocalConn()
    with pytest.raises(transport.RemoteError) as e:
        transport.run(conn, "sleep 30", what="apply firewall rules", timeout=1)
    assert str(e.value) == ("apply firewall rules on localhost did not finish within 1s (a command hung: is "
                            "systemd or the disk stuck? is the server overloaded?)")
    import inspect  # every command has a bound by default

    assert inspect.signature(transport.run).parameters["timeout"].default == transport.COMMAND_TIMEOUT > 0


def test_each_real_binary_reports_its_version_once_per_probe(tmp_path):
    """install asks the release's binary, verify the stable link to it: one start (seconds, emulated)."""
    runs = tmp_path / "runs"
    binary = tmp_path / "release" / "prometheus"
    binary.parent.mkdir()
    binary.write_text(f"#!/bin/sh\necho x >> {runs}\necho 'prometheus, version 2.42.0 (branch: debian)'\n")
    binary.chmod(0o755)
    (tmp_path / "link").symlink_to(binary)
    got = probe.probe(LocalConn(), {"link": probe.version_snippet(str(tmp_path / "link")),
                                     "release": probe.version_snippet(str(binary)),
                                     "missing": probe.version_snippet(str(tmp_path / "nope"))}, sudo=False)
    assert got["link"] == got["release"] == "prometheus, version 2.42.0 (branch: debian)"
    assert runs.read_text() == "x\n"
    assert "No such file or directory" in got["missing"]
    import glob
    assert not glob.glob("/tmp/rosey-versions.*")  # the probe's cache went with it


def test_a_version_install_kept_answers_later_reads_until_the_binary_changes(tmp_path):
    """install records what the binary it unpacked said; later probes answer from that without starting it,
    until the file is replaced or modified (its identity changes) -- then it runs again."""
    runs = tmp_path / "runs"
    binary = tmp_path / "release" / "prometheus"
    binary.parent.mkdir()
    body = f"#!/bin/sh\necho x >> {runs}\necho 'prometheus, version 3.5.3 (branch: debian)'\n"
    binary.write_text(body)
    binary.chmod(0o755)
    (tmp_path / "link").symlink_to(binary)
    conn = LocalConn()
    said = "prometheus, version 3.5.3 (branch: debian)"
    mark = probe.version_mark_snippet(str(binary), "$v0")
    subprocess.run(["bash", "-c", f"v0={shlex.quote(said)}\n{mark}"], check=True)
    ask = {"link": probe.version_snippet(str(tmp_path / "link"))}
    assert probe.probe(conn, ask, sudo=False)["link"] == said
    assert not runs.exists()  # answered from the mark: no start
    binary.write_text(body.replace("3.5.3", "3.5.4"))  # changed in place: same path, new identity
    assert probe.probe(conn, ask, sudo=False)["link"] == "prometheus, version 3.5.4 (branch: debian)"
    assert runs.read_text() == "x\n"


def test_each_part_of_a_read_carries_its_own_time_on_the_server():
    got = probe.probe(LocalConn(), {"slow": "sleep 0.3; echo a", "fast": "echo b"}, sudo=False)
    assert got["slow"] == "a" and got["fast"] == "b"
    assert 0.3 <= got["slow"].seconds < 5 and 0 <= got["fast"].seconds < got["slow"].seconds
    assert probe.parse_probe("x\nM k 0\n", ["k"], "M")["k"].seconds is None  # a shell without the clock


def test_two_runs_changing_one_server_queue_on_its_deploy_lock(tmp_path):
    """Two deploys at once (two operators, or one server under two aliases) never interleave their scripts."""
    import threading

    log = tmp_path / "log"

    def deploy(name: str) -> None:
        transport.run(LocalConn(), f"echo {name}-start >> {log}; sleep 1; echo {name}-end >> {log}")

    threads = [threading.Thread(target=deploy, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.read_text().split()
    first, second = ["a-start", "a-end"], ["b-start", "b-end"]
    assert lines in (first + second, second + first), lines
    # reads never wait for it
    assert "flock" not in probe.probe_script({"x": "true"}, "M")


def test_versions_with_marks_cost_two_process_starts_for_all_binaries(tmp_path, monkeypatch):
    """Process starts are what an emulated read pays for (0.05-0.1 s each): with every binary marked, all
    versions of a probe come from one `realpath` and one `stat`, the marks read by bash itself."""
    log, spy = tmp_path / "started", tmp_path / "spy"
    spy.mkdir()
    for tool in ("realpath", "readlink", "stat", "head", "sed", "cat", "cut", "sha256sum", "mktemp"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout
        (spy / tool).write_text(f"#!/bin/sh\necho {tool} >> {log}\nexec {real.strip()} \"$@\"\n")
        (spy / tool).chmod(0o755)
    asks = {}
    for name in ("prometheus", "promtool", "alertmanager", "amtool"):
        binary = tmp_path / "release" / name
        binary.parent.mkdir(exist_ok=True)
        binary.write_text(f"#!/bin/sh\necho started >> {log}\necho '{name}, version 1.0.0'\n")
        binary.chmod(0o755)
        subprocess.run(["bash", "-c", probe.version_mark_snippet(str(binary), f"{name}, version 1.0.0")],
                       check=True)
        (tmp_path / name).symlink_to(binary)
        asks[f"{name}_link"] = probe.version_snippet(str(tmp_path / name))
        asks[f"{name}_release"] = probe.version_snippet(str(binary))
    monkeypatch.setenv("PATH", f"{spy}:{os.environ['PATH']}")
    got = probe.probe(LocalConn(), asks, sudo=False)
    assert all(got[k] == f"{k.split('_')[0]}, version 1.0.0" for k in asks), got
    # no binary started; besides the versions' two, only the `cat` that prints the parts in order
    assert sorted(log.read_text().split()) == ["cat", "realpath", "stat"]
