"""verify's HTTP answers come from one curl run (tests/pure/test_verify_eval.py judges them): each answer is
mapped back to its own key, a service that does not answer is status 000 with curl's error and does not stop
the others, /metrics keeps only the lines verify reads. Real curl against a loopback server."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import subprocess
import threading

import pytest

from fabfile.deploy.steps import verify
from fabfile.deploy.steps.base import StepContext
from tests.helpers import fixture_inventory


class _Prometheus(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self.headers.get("Authorization"):
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b"Unauthorized")
            return
        if self.path == "/metrics":
            body = b"# HELP x\nprometheus_config_last_reload_successful 1\ngo_goroutines 42\n"
        elif self.path.startswith("/api/v1/query?query=bot_connected"):
            body = b'{"status":"success"}'
        elif self.path == "/-/healthy":
            body = b"Prometheus Server is Healthy.\n"
        else:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"not found")
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus_only():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = fixture_inventory().host("lab")
    host = dataclasses.replace(host, prometheus=dataclasses.replace(host.prometheus, port=server.server_port),
                               alertmanager=dataclasses.replace(host.alertmanager, port=_free_port()))
    yield host
    server.shutdown()


def test_one_curl_run_answers_every_key_in_order(prometheus_only, tmp_path):
    host = prometheus_only
    cfg = tmp_path / "curl.cfg"
    cfg.write_text('user = "admin:pw"\n')
    ctx = StepContext(fixture_inventory(), {"web_password": "w" * 12})
    snippet = verify.reads(host, ctx).snippets["http"]
    run = subprocess.run(["bash", "-c", snippet], env={"PROBE_STDIN": str(cfg), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    answers = verify.http_answers(host, run.stdout)
    assert list(answers) == [*verify.http_requests(host), "noauth_prometheus", "noauth_alertmanager"]
    # after --next the credentials are gone: the same server says 401
    assert answers["noauth_prometheus"] == "Unauthorized\n401"
    assert answers["noauth_alertmanager"].endswith("\n000")
    assert answers["healthy_prometheus"] == "Prometheus Server is Healthy.\n\n200"
    assert answers["query"] == '{"status":"success"}\n200'
    assert answers["targets"] == "not found\n404"
    assert answers["metrics_prometheus"] == "prometheus_config_last_reload_successful 1\n200"
    for key in ("healthy_alertmanager", "am_status", "am_receivers", "metrics_alertmanager"):
        body, _, code = answers[key].rpartition("\n")
        assert code == "000" and "Failed to connect" in body, answers[key]
    assert answers["alerts"] == "not found\n404"  # after a refused one, the next still came


def test_a_cut_short_output_leaves_the_missing_keys_unanswered(prometheus_only):
    answers = verify.http_answers(prometheus_only, "ok\n200\n@@rosey-http-answer@@\n")
    assert answers["healthy_prometheus"] == "ok\n200"
    assert answers["alerts"] == "\n000"


def _fake_curl(tmp_path, answers: list[str]):
    """A `curl` on PATH that prints answers[n] on its n-th run (the last one from then on), counts runs and
    notes how many URLs each run asked for (file `urls`, a line per run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for i, text in enumerate(answers):
        (tmp_path / f"answer{i}").write_text(text)
    (bin_dir / "curl").write_text(
        "#!/bin/bash\n"
        f"n=$(cat {tmp_path}/runs 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/runs\n"
        f'n_urls=0; for a in "$@"; do case $a in http*) n_urls=$((n_urls + 1));; esac; done; '
        f"echo $n_urls >> {tmp_path}/urls\n"
        f"f={tmp_path}/answer$n; [ -e $f ] || f={tmp_path}/answer{len(answers) - 1}; cat $f\n")
    (bin_dir / "curl").chmod(0o755)
    return {"PROBE_STDIN": "/dev/null", "PATH": f"{bin_dir}:/usr/bin:/bin"}


_UNKNOWN = '{"data":{"activeTargets":[{"health":"unknown"}]}}\n200\n@@rosey-http-answer@@\n'
_UP = '{"data":{"activeTargets":[{"health":"up"}]}}\n200\n@@rosey-http-answer@@\n'


def test_targets_not_scraped_yet_are_waited_for_then_judged(tmp_path):
    host = fixture_inventory().host("lab")
    env = _fake_curl(tmp_path, [_UNKNOWN, _UNKNOWN, _UP])
    run = subprocess.run(["bash", "-c", verify.http_snippet(host)], env=env, capture_output=True, text=True,
                         timeout=60)
    # the whole set, then only the targets and Alertmanagers until scraped, then the whole set again
    assert (tmp_path / "runs").read_text().strip() == "4"
    full = len(verify.http_requests(host)) + len(verify.open_requests(host))
    assert (tmp_path / "urls").read_text().split() == [str(full), "2", "2", str(full)]
    assert run.stdout == _UP


# what a Prometheus just started answers before it applies its discovered sets (as 2.42 prints them)
_NOT_FOUND = ('{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}\n200\n'
              '@@rosey-http-answer@@\n{"status":"success","data":{"activeAlertmanagers":[],"droppedAlertmanagers":[]}}\n200\n'
              '@@rosey-http-answer@@\n')
_NO_AM_YET = _UP + ('{"status":"success","data":{"activeAlertmanagers":[],"droppedAlertmanagers":[]}}\n200\n'
                    '@@rosey-http-answer@@\n')


def test_targets_and_alertmanagers_not_found_yet_are_waited_for(tmp_path):
    """install-services waits only for /-/healthy: verify waits out discovery's first apply too."""
    host = fixture_inventory().host("lab")
    env = _fake_curl(tmp_path, [_NOT_FOUND, _NO_AM_YET, _UNKNOWN, _UP])
    run = subprocess.run(["bash", "-c", verify.http_snippet(host)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert (tmp_path / "runs").read_text().strip() == "5"  # the whole set, three small asks, the whole set
    assert run.stdout == _UP


def test_a_running_stack_is_asked_once(tmp_path):
    env = _fake_curl(tmp_path, [_UP])
    run = subprocess.run(["bash", "-c", verify.http_snippet(fixture_inventory().host("lab"))], env=env,
                         capture_output=True, text=True, timeout=60)
    assert (tmp_path / "runs").read_text().strip() == "1" and run.stdout == _UP


def test_the_wait_for_a_first_scrape_is_bounded(tmp_path, monkeypatch):
    host = fixture_inventory().host("lab")
    assert verify.first_scrape_wait(host) == 35  # 15 s interval: twice that, plus discovery's 5 s
    monkeypatch.setattr(verify, "first_scrape_wait", lambda h: 2)
    env = _fake_curl(tmp_path, [_UNKNOWN])
    run = subprocess.run(["bash", "-c", verify.http_snippet(host)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert 3 <= int((tmp_path / "runs").read_text()) <= 9  # the whole set, then at most 4 small asks a second
    assert run.stdout == _UNKNOWN  # then judged as it is: verify fails the target, it does not hang
