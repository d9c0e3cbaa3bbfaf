"""Issue 30 §10: Ctrl-C with several hosts. The first says which hosts are finishing which step, lets no new
step start and prints the recap; the second leaves at once, saying why the servers are safe. Fakes only: the
signal arrives as KeyboardInterrupt in the main thread, which is what `Stop.wait` handles."""

from __future__ import annotations

import io
import threading

import pytest

from fabfile.deploy import runner
from fabfile.deploy.interrupt import EXIT_INTERRUPTED, Stop
from fabfile.deploy.steps.base import StepResult
from fabfile.output import Output
from tests.fakes import LocalConn
from tests.pure.test_deploy_runner import write_inventory


@pytest.fixture
def two_hosts(tmp_path, monkeypatch):
    return write_inventory(tmp_path, monkeypatch,
                           "  a: {address: 127.0.0.1, secrets_file: none.yml}\n"
                           "  b: {address: 127.0.0.2, secrets_file: none.yml}\n")


class CtrlC(Stop):
    """Presses Ctrl-C `times` once both hosts are inside their first step, then lets that step end."""

    def __init__(self, out: Output, inside: threading.Barrier, release: threading.Event, times: int) -> None:
        super().__init__(out, leave=self.left)
        self.inside, self.release, self.times, self.codes = inside, release, times, []

    def left(self, code: int) -> None:
        self.codes.append(code)

    def wait(self, futures, poll=0.2, waiter=None) -> None:  # noqa: ANN001
        self.inside.wait(timeout=10)
        for _ in range(self.times):
            self.interrupted()
        self.release.set()
        super().wait(futures, poll=0.05)


def _steps(inside: threading.Barrier, release: threading.Event, ran: list[str]):
    def slow(conn, host, ctx):  # noqa: ANN001, ANN202
        inside.wait(timeout=10)
        release.wait(timeout=10)
        ran.append(f"{host.name}:install")
        return StepResult("install", "changed", "installed")

    def after(name):  # noqa: ANN001, ANN202
        def step(conn, host, ctx):  # noqa: ANN001, ANN202
            ran.append(f"{host.name}:{name}")
            return StepResult(name, "ok", "")
        return step

    return [("install", slow), ("configs", after("configs")), ("verify", after("verify"))]


def test_first_ctrl_c_names_the_busy_hosts_stops_between_steps_and_prints_the_recap(two_hosts) -> None:
    inside, release, ran, stream = threading.Barrier(3), threading.Event(), [], io.StringIO()
    out = Output(stream)
    stop = CtrlC(out, inside, release, times=1)
    code = runner.run(two_hosts, two_hosts.select("a,b"), _steps(inside, release, ran), output=out,
                      connector=LocalConn.to, stop=stop)
    text = stream.getvalue()
    assert code == EXIT_INTERRUPTED and stop.codes == []
    first = next(ln for ln in text.splitlines() if ln.startswith("Ctrl-C:"))
    assert "no new step starts; finishing the current one on:" in first
    assert "a (install)" in first and "b (install)" in first and "Ctrl-C again to leave at once" in first
    assert sorted(ran) == ["a:install", "b:install"]  # the running step ended; configs and verify never ran
    assert "stopped by Ctrl-C: a before configs, b before configs" in text
    assert "a  ok=0 changed=1 failed=0  stopped before configs" in text  # the recap says it too
    assert "recap" in text.lower() and text.index("Ctrl-C:") < text.lower().index("recap")


def test_second_ctrl_c_leaves_at_once_and_says_why_the_servers_are_safe(two_hosts) -> None:
    inside, release, ran, stream = threading.Barrier(3), threading.Event(), [], io.StringIO()
    out = Output(stream)
    stop = CtrlC(out, inside, release, times=2)
    runner.run(two_hosts, two_hosts.select("a,b"), _steps(inside, release, ran), output=out,
               connector=LocalConn.to, stop=stop)
    assert stop.codes == [EXIT_INTERRUPTED]  # the real leave is os._exit: nothing after it runs
    second = next(ln for ln in stream.getvalue().splitlines() if ln.startswith("Ctrl-C again:"))
    assert "leaving now, without waiting for: " in second  # the hosts in the order they entered the step
    assert "a (install)" in second and "b (install)" in second
    assert "ignores the hangup, holds its deploy lock until done, and rolls back" in second


def test_one_host_at_a_time_a_waiting_host_never_starts(two_hosts) -> None:
    """--parallel 1: host b has not started when Ctrl-C comes; it is reported as such, never contacted."""
    inside, release, ran, stream = threading.Barrier(2), threading.Event(), [], io.StringIO()
    out = Output(stream)
    stop = CtrlC(out, inside, release, times=1)
    code = runner.run(two_hosts, two_hosts.select("a,b"), _steps(inside, release, ran), output=out,
                      connector=LocalConn.to, stop=stop, parallel=1)
    assert code == EXIT_INTERRUPTED and ran == ["a:install"]
    assert "stopped by Ctrl-C: a before configs, b not started" in stream.getvalue()
    assert "b  ok=0 changed=0 failed=0  stopped not started" in stream.getvalue()


def test_wait_turns_keyboard_interrupts_into_the_two_stages() -> None:
    """The real path: KeyboardInterrupt raised while the main thread waits on the hosts' futures."""
    stream, codes, calls = io.StringIO(), [], iter([KeyboardInterrupt, KeyboardInterrupt, None])

    def waiter(pending, timeout):  # noqa: ANN001, ANN202
        exc = next(calls)
        if exc:
            raise exc
        return pending, set()

    stop = Stop(Output(stream), leave=codes.append)
    stop.doing("a", "install-prometheus")
    stop.wait([object()], waiter=waiter)
    assert stop.requested.is_set() and codes == [EXIT_INTERRUPTED]
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("Ctrl-C: ") and "a (install-prometheus)" in lines[0]
    assert lines[1].startswith("Ctrl-C again: leaving now")


def test_a_second_ctrl_c_while_the_first_is_being_printed_still_leaves() -> None:
    class Interrupting(Output):
        def line(self, text: str) -> None:
            lines.append(text)
            if len(lines) == 1:
                raise KeyboardInterrupt

    lines: list[str] = []
    codes: list[int] = []
    calls = iter([KeyboardInterrupt, None])

    def waiter(pending, timeout):  # noqa: ANN001, ANN202
        exc = next(calls)
        if exc:
            raise exc
        return pending, set()

    Stop(Interrupting(io.StringIO()), leave=codes.append).wait([object()], waiter=waiter)
    assert codes == [EXIT_INTERRUPTED] and lines[1].startswith("Ctrl-C again: leaving now")
