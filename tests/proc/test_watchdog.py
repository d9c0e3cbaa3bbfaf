"""The suite's watchdog (tests/watchdog.py) in a real pytest run: a hung test fails alone with the stacks
of every thread and the next test still runs; a test that swallows the failure ends its worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HUNG = '''
import threading, time
import pytest

@pytest.mark.time_limit(1)
def test_waits_for_a_thread_that_never_ends():
    t = threading.Thread(target=time.sleep, args=(60,), daemon=True)
    t.start()
    t.join()

@pytest.mark.time_limit(1)
def test_sleeps_in_the_main_thread():
    time.sleep(60)

def test_after_them():
    assert True
'''

SWALLOWS = '''
import time
import pytest

@pytest.mark.time_limit(1)
def test_ignores_its_failure():
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            time.sleep(60)
        except BaseException:
            pass
'''


def _pytest(tmp_path: Path, body: str, grace: str = "300") -> tuple[subprocess.CompletedProcess, float]:
    (tmp_path / "test_body.py").write_text(textwrap.dedent(body))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    time_limit(seconds): limit\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ROSEY_TEST_GRACE": grace}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.watchdog", "-p", "no:cacheprovider",
                          "-q", "-rA", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    return res, time.monotonic() - t0


def test_a_hung_test_fails_alone_with_every_threads_stack(tmp_path):
    res, took = _pytest(tmp_path, HUNG)
    out = res.stdout
    assert "2 failed, 1 passed" in out, out
    assert out.count("still running after 1 s") >= 2
    assert "Thread 0x" in out and "test_body.py" in out  # the stacks, with the hung line
    assert took < 40  # not the 60 s the bodies would have taken


def test_a_test_that_swallows_its_failure_ends_its_process_after_the_grace(tmp_path):
    res, took = _pytest(tmp_path, SWALLOWS, grace="2")
    assert res.returncode == 70
    assert "still running; ending this test process" in res.stderr, res.stderr
    assert "test_body.py" in res.stderr  # the stack, with the line it was stuck on
    assert took < 40
