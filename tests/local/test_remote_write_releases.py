"""remote_write and agent mode on the real releases (2.42.0, 2.53.3, 3.5.3).

Each release's own promtool accepts the rendered prometheus.yml with remote_write targets (basic auth,
bearer, a tenant header, a CA file, queue settings, relabels) in server and in agent mode, without a
warning; a real Prometheus started with the rendered unit's agent flags forwards samples, with the bearer
token from its secret file and the labels we chose, to a remote-write receiver on loopback, and keeps no
queryable TSDB.
"""

from __future__ import annotations

import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from fabfile.config.versions import at_least
from tests.local.release_bins import (
    PASSWORD,
    RenderedHost,
    free_port,
    host_yaml,
    lab_releases,
    stand_in_bot,
    unpack,
)

VERSIONS = ["2.42.0", "2.53.3", "3.5.3"]
AM = {"2.42.0": "0.25.0", "2.53.3": "0.28.1", "3.5.3": "0.33.1"}
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
TOKEN = "rw-bearer-Token-secret-42"
SECRETS = {"web_password": PASSWORD, "smtp_password": "x-smtp-pass", "webhook_url": "http://127.0.0.1:9/hook",
           "remote_write_cloud_password": "rw-basic-Pass-secret", "remote_write_vm_token": TOKEN}


def _targets(receiver_port: int, version: str, cloud: bool) -> str:
    """Two targets for promtool; for a running Prometheus only the loopback one (no network here)."""
    age = ", sample_age_limit: 1h" if at_least(version, "2.50.0") else ""
    vm = f"""      - name: vm
        url: http://127.0.0.1:{receiver_port}/api/v1/write
        auth: bearer
        remote_timeout: 5s
        headers: {{X-Scope-OrgID: team-a}}
"""
    if not cloud:
        return "    remote_write:\n" + vm
    return f"""    remote_write:
      - name: cloud
        url: https://mimir.example.com/api/v1/push
        auth: basic
        username: "123456"
        queue: {{max_shards: 4, capacity: 2500, batch_send_deadline: 5s, retry_on_http_429: true{age}}}
        write_relabel_configs: [{{action: drop, source_labels: [__name__], regex: "go_gc_.*"}}]
        tls: {{ca_file: {SYSTEM_CA}, server_name: mimir.example.com}}
""" + vm


def _render(tmp: Path, version: str, agent: bool, receiver_port: int = 9, cloud: bool = True) -> RenderedHost:
    ports = {k: free_port() for k in ("prometheus", "alertmanager", "bot", "smtp")}
    base = tmp / "base"
    base.mkdir(parents=True)
    text = host_yaml(base, version, AM[version], ports) + _targets(receiver_port, version, cloud)
    if agent:
        text = text.replace("evaluation_interval: 1s}", "evaluation_interval: 1s, mode: agent}")
    (tmp / "hosts.yml").write_text(text)
    inv = load_inventory(tmp / "hosts.yml")
    host = inv.host("h")
    assert host.prometheus.agent is agent
    rendered = render.render_host(inv, host, {k: SECRETS[k] for k in required_secrets(host)})
    out = RenderedHost(host, rendered, base, ports)
    out.write()
    return out


@pytest.fixture(scope="module")
def releases() -> dict[str, Path]:
    return {v: unpack(a) for v, a in lab_releases()["prometheus"].items() if v in VERSIONS}


@pytest.mark.parametrize("agent", [False, True], ids=["server", "agent"])
@pytest.mark.parametrize("version", VERSIONS)
def test_promtool_accepts_remote_write(releases: dict[str, Path], tmp_path: Path, version: str,
                                       agent: bool) -> None:
    h = _render(tmp_path, version, agent)
    assert "remote_write:" in h.rendered.files["prometheus.yml"]
    argv = [str(releases[version] / "promtool"), "check", "config", *(["--agent"] if agent else []),
            "prometheus.yml"]
    result = subprocess.run(argv, cwd=h.base, capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "SUCCESS" in out and "WARNING" not in out.upper(), out
    assert TOKEN not in h.rendered.files["prometheus.yml"]


class _Receiver(BaseHTTPRequestHandler):
    """A remote-write endpoint: counts POSTs per Authorization and tenant header (bodies are not decoded)."""

    seen: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.path, self.headers.get("Authorization", ""),
                          self.headers.get("X-Scope-OrgID", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("version", ["2.53.3", "3.5.3"])  # the feature flag, then --agent
def test_agent_mode_starts_from_the_unit_and_forwards(releases: dict[str, Path], tmp_path: Path,
                                                      version: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.seen = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    h = _render(tmp_path, version, agent=True, receiver_port=receiver.server_address[1], cloud=False)
    argv = " ".join(h.argv("prometheus", releases[version]))
    assert ("--agent" in argv.split()) is at_least(version, "3.0.0")
    bot = stand_in_bot(h.ports["bot"], tmp_path)
    try:
        h.start("prometheus", releases[version])
        h.wait_ready("prometheus")
        end = time.monotonic() + 30
        while time.monotonic() < end and not _Receiver.seen:
            time.sleep(0.3)
        # no local TSDB to ask: the query API says so
        query = h.get("prometheus", "/api/v1/query", query="up")
        log = h.log("prometheus")
    finally:
        h.stop()
        bot.shutdown()
        bot.server_close()
        receiver.shutdown()
        receiver.server_close()
    assert _Receiver.seen, f"nothing forwarded:\n{log[-2000:]}"
    assert _Receiver.seen[0] == ("/api/v1/write", f"Bearer {TOKEN}", "team-a")
    assert query.status_code >= 400 or "agent" in query.text.lower()
    assert (h.base / "data" / "agent" / "wal").is_dir()
    assert TOKEN not in log


@pytest.mark.parametrize("version", VERSIONS)
def test_remote_write_rules_under_every_release_promtool(releases: dict[str, Path], version: str) -> None:
    # the metric names are the same in all three releases; the rules' unit tests prove it on each promtool
    tests_dir = Path(__file__).resolve().parents[2] / "monitoring" / "tests"
    result = subprocess.run([str(releases[version] / "promtool"), "test", "rules", "remote_write.yml"],
                            cwd=tests_dir, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
