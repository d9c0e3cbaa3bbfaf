"""Printing never stops a host's work (issue #30, finding 3): a character the output encoding cannot show
is escaped, and a closed stdout stops the printing once while every host's steps run to their end and the
exit code still says how they went. In-process streams and os.pipe only (no subprocess, no network)."""

from __future__ import annotations

import io
import os
import threading

import pytest
from rich.console import Console

from fabfile import stdio
from fabfile.deploy import runner
from fabfile.deploy.steps.base import StepResult
from fabfile.output import Output
from tests.fakes import LocalConn
from tests.pure.test_deploy_runner import write_inventory

NON_ASCII = "restarted prometheus … alertmanager → ✓ ünïcode"


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    return write_inventory(tmp_path, monkeypatch,
                           "  lab: {address: 127.0.0.1, ssh: {port: 2222}, secrets_file: none.yml}\n"
                           "  lab2: {address: 127.0.0.2, ssh: {port: 2222}, secrets_file: none.yml}\n")


def text_stream(encoding: str) -> tuple[io.BytesIO, io.TextIOWrapper]:
    raw = io.BytesIO()
    return raw, io.TextIOWrapper(raw, encoding=encoding, write_through=True)


def counting_steps(ran: list[tuple[str, str]], fail_on: str = ""):
    lock = threading.Lock()

    def make(name):
        def step(conn, host, ctx):
            ctx.log(f"{name}: {NON_ASCII}")
            with lock:
                ran.append((host.name, name))
            if host.name == fail_on and name == "verify":
                return StepResult(name, "failed", "— not answering —")
            return StepResult(name, "ok", f"fine … {name}")
        return step
    return [(n, make(n)) for n in ("install", "configs", "verify")]


def test_an_ascii_or_latin1_stream_gets_escapes_and_every_step_runs(inventory):
    for encoding in ("ascii", "latin-1"):
        raw, stream = text_stream(encoding)
        ran: list[tuple[str, str]] = []
        code = runner.run(inventory, inventory.select("lab"), counting_steps(ran), stream=stream,
                          connector=LocalConn.to)
        text = raw.getvalue().decode(encoding)
        assert code == 0, text
        assert [s for _, s in ran] == ["install", "configs", "verify"]  # not only the first step
        assert "\\u2026" in text and "\\u2192" in text and "\\u2713" in text
        assert ("ünïcode" in text) == (encoding == "latin-1")  # what the encoding can show stays as is
        assert "recap:" in text


class BrokenAfter(io.StringIO):
    """A stdout whose reader goes away after `n` writes (`| head -1`)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.attempts = n, 0

    def write(self, s: str) -> int:
        self.attempts += 1
        if self.attempts > self.n:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(s)


def test_a_closed_stdout_stops_printing_once_and_every_host_works_to_the_end(inventory):
    stream = BrokenAfter(1)
    ran: list[tuple[str, str]] = []
    code = runner.run(inventory, inventory.select("lab,lab2"), counting_steps(ran, fail_on="lab2"),
                      stream=stream, connector=LocalConn.to, parallel=2)
    assert code == 1  # lab2's verify failed: the exit code still says so
    assert sorted(ran) == sorted((h, s) for h in ("lab", "lab2") for s in ("install", "configs", "verify"))
    assert stream.attempts == 2  # one line printed, one write met the closed pipe, then no more tries
    assert stdio.stopped(stream)


def test_a_broken_pipe_descriptor_is_pointed_at_devnull():
    r, w = os.pipe()
    os.close(r)  # the reader went away
    stream = open(w, "w", encoding="utf-8")  # noqa: SIM115
    stdio.write("first line\n", stream)
    stdio.write("second line\n", stream)  # no exception, nothing tried
    assert stdio.stopped(stream)
    assert os.path.samefile(f"/proc/self/fd/{w}", os.devnull)
    stream.close()  # the interpreter's last flush: quiet too


def test_a_closed_stream_or_none_is_not_an_error():
    stream = io.StringIO()
    stream.close()
    stdio.write("x\n", stream)
    assert stdio.stopped(stream)
    stdio.write("x\n", None)  # sys.stdout at write time: pytest's capture here
    Output(stream).progress().show("waiting", 1.0, 60)  # a progress line on it: no exception either


def test_output_lines_from_parallel_hosts_stay_whole_on_an_ascii_stream():
    raw, stream = text_stream("ascii")
    out = Output(stream)
    threads = [threading.Thread(target=lambda n=n: [out.for_host(f"h{n}")(f"{n} … {i}") for i in range(200)])
               for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = raw.getvalue().decode("ascii").splitlines()
    assert len(lines) == 800
    assert all(ln.startswith(f"[h{ln[2]}] {ln[2]} \\u2026 ") for ln in lines)


def test_rich_through_a_safe_stream_on_ascii():
    raw, stream = text_stream("ascii")
    console = Console(file=stdio.SafeStream(stream), highlight=False, color_system=None)
    console.print("sparkline ▁▂▃▅▇ …")
    text = raw.getvalue().decode("ascii")
    assert "sparkline" in text and "\\u2581" in text
