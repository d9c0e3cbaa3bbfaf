"""The output layer: whole lines under parallel writers, masking, progress cleared first, JSON records."""

from __future__ import annotations

import io
import json
import threading

from fabfile.masking import Masker
from fabfile.output import Output, RecapRow, StepTime


def test_parallel_host_lines_stay_whole_and_masked():
    buf = io.StringIO()
    out = Output(buf)

    def talk(name: str) -> None:
        log = out.for_host(name, Masker(["pa55word"]))
        for i in range(200):
            log(f"line {i} pa55word\nsecond {i}")

    threads = [threading.Thread(target=talk, args=(n,)) for n in ("a", "bb", "ccc")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3 * 200 * 2
    assert all(ln.startswith(("[a] ", "[bb] ", "[ccc] ")) for ln in lines)
    assert "pa55word" not in buf.getvalue() and "[bb] line 7 ********" in lines


def test_error_recap_and_records():
    buf = io.StringIO()
    out = Output(buf)
    out.error("hosts.yml: hosts.x.bot_port: bad")
    out.recap([RecapRow("lab", 5, 1, 0, 12.4), RecapRow("lab22", 2, 0, 1, 3.0)])
    assert buf.getvalue().splitlines() == [
        "error: hosts.yml: hosts.x.bot_port: bad",
        "recap:",
        "  lab22  ok=2 changed=0 failed=1  FAILED (3s)",  # failures first: in a fleet they are what to read
        "  lab    ok=5 changed=1 failed=0  done (12s)",
    ]
    records = json.loads(out.json())
    assert records[0] == {"kind": "error", "message": "hosts.yml: hosts.x.bot_port: bad"}
    assert records[2]["host"] == "lab22" and records[2]["state"] == "FAILED"  # records: the hosts' order


def test_a_line_clears_the_live_progress_line_first():
    buf = io.StringIO()
    out = Output(buf)
    p = out.progress(tty=True)
    p.show("waiting", 1.0, 10)
    out.line("done")
    text = buf.getvalue()
    assert text.endswith("\r" + " " * len("  … waiting:   1.0s elapsed, deadline 10s") + "\rdone\n")


def test_default_stream_is_stdout_at_write_time(capsys):
    out = Output()
    out.line("hello")
    assert capsys.readouterr().out == "hello\n"


def test_recap_ends_with_the_per_step_profile_and_a_dash_for_a_step_a_host_never_ran():
    buf = io.StringIO()
    out = Output(buf)
    out.recap([RecapRow("lab", 2, 0, 0, 3.0,
                        (StepTime("install-prometheus", 1.25, 1), StepTime("verify", 0.5, 1))),
               RecapRow("prod-eu", 0, 0, 1, 9.0, (StepTime("install-prometheus", 9.0, 0),))])
    assert buf.getvalue().splitlines()[3:] == [
        "time per step (wall seconds, SSH commands):",
        "                          lab  prod-eu",
        "  install-prometheus  1.2s  1  9.0s  0",
        "  verify              0.5s  1        -",
        "  total               1.8s  2  9.0s  0",
    ]
    assert buf.getvalue().splitlines()[1:3] == [
        "  prod-eu  ok=0 changed=0 failed=1  FAILED (9s)", "  lab      ok=2 changed=0 failed=0  done (3s)"]
    first = json.loads(out.json())[0]["steps"][0]
    assert first == {"step": "install-prometheus", "seconds": 1.25, "commands": 1}


def test_a_fleet_profile_is_one_line_per_step_with_median_and_slowest_host():
    buf = io.StringIO()
    rows = [RecapRow(f"bot-{i:02}", 1, 0, 0, 1.0, (StepTime("verify", 0.1 * i, 2),)) for i in range(1, 12)]
    rows.append(RecapRow("bot-99", 0, 0, 1, 1.0, ()))  # failed before verify: not in the step's figures
    Output(buf).recap(rows)
    lines = buf.getvalue().splitlines()
    assert lines[1] == "  bot-99  ok=0 changed=0 failed=1  FAILED (1s)" and len(lines) == 1 + 12 + 2
    assert lines[-2:] == ["time per step over 12 hosts (wall seconds, SSH commands; median, slowest):",
                          "  verify  median 0.6s  2  max 1.1s  2 (bot-11)  ran on 11"]
