"""`inv test-alert --synthetic --alert NAME --severity SEV` against a real Alertmanager release: the rendered
config of a host with Slack and a webhook, both pointed at a loopback stand-in that answers 200 for one and
500 for the other. The report names every receiver of the route and which integration failed."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fabfile.alerting.api import Apis, local_apis
from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from fabfile.deploy.steps.base import StepContext
from fabfile.drill.runner import report, run_drill
from fabfile.drill.scenarios.synthetic import Synthetic, chosen_alert
from fabfile.drill.target import parse_notify_errors
from fabfile.masking import Masker
from tests.local.localstack import Smtp
from tests.local.release_bins import PASSWORD, USER, RenderedHost, free_port, lab_releases, unpack

AM_VERSION = "0.33.1"


@dataclass
class Channels:
    """The loopback end of the chat channels: each path answers its status and keeps what it got."""

    status: dict[str, int]
    got: dict[str, list[dict]] = field(default_factory=dict)


def _handler(ch: Channels) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            name = self.path.strip("/")
            ch.got.setdefault(name, []).append(json.loads(body or b"{}"))
            code = ch.status.get(name, 404)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"stand-in error")

        def log_message(self, *a: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def channels(status: dict[str, int]) -> Iterator[tuple[Channels, int]]:
    ch = Channels(status)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ch))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ch, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class AmTarget:
    """The drill's Target for one local Alertmanager: no bot, no Prometheus (the synthetic drill needs
    neither), its log file for the error lines."""

    def __init__(self, h: RenderedHost) -> None:
        self.h = h

    def apis(self) -> Apis:
        return local_apis(f"http://127.0.0.1:{free_port()}", self.h.url("alertmanager", ""), (USER, PASSWORD))

    def reconnect(self) -> None:
        pass

    def stop_bot(self) -> None:
        raise AssertionError("the synthetic drill must not touch the bot")

    start_bot = stop_bot

    def bot_active(self) -> bool:
        return True

    def notify_errors(self, since: float) -> list[str]:
        return parse_notify_errors(self.h.log("alertmanager"))

    def extra_prechecks(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


@contextlib.contextmanager
def alertmanager(tmp: Path, status: dict[str, int]) -> Iterator[tuple[RenderedHost, Channels, Smtp]]:
    """A host with Slack and a webhook rendered as deployed, run on the real release, channels on loopback."""
    release = unpack(lab_releases()["alertmanager"][AM_VERSION])
    base, smtp = tmp / "base", Smtp(free_port())
    base.mkdir()
    ports = {"alertmanager": free_port(), "prometheus": free_port()}
    (tmp / "hosts.yml").write_text(f"""
defaults:
  receivers:
    email: {{to: [ops@lab.test], from: am@lab.test, smarthost: "127.0.0.1:{smtp.port}", require_tls: false}}
hosts:
  h:
    address: 127.0.0.1
    base_dir: {base}
    base_dir_outside_allowlist: true  # a temporary directory of this test
    prometheus: {{port: {ports['prometheus']}}}
    alertmanager: {{version: {AM_VERSION}, port: {ports['alertmanager']}, group_wait: 1s, group_interval: 2s}}
    receivers: {{slack: {{channel: "#rosey"}}, webhook: {{}}}}
""")
    inv = load_inventory(tmp / "hosts.yml")
    host = inv.host("h")
    with channels(status) as (ch, port):
        secrets = {"web_password": PASSWORD, "slack_webhook_url": f"http://127.0.0.1:{port}/slack",
                   "webhook_url": f"http://127.0.0.1:{port}/webhook"}
        rendered = render.render_host(inv, host, {k: secrets[k] for k in required_secrets(host)})
        h = RenderedHost(host, rendered, base, ports)
        h.write()
        smtp.start()
        try:
            h.start("alertmanager", release)
            h.wait_ready("alertmanager")
            yield h, ch, smtp
        finally:
            h.stop()
            smtp.stop()


def drill(h: RenderedHost, alert: str, severity: str) -> tuple[bool, str, str]:
    lines: list[str] = []
    stream = io.StringIO()
    ctx = StepContext(inventory=None, secrets={"web_password": PASSWORD}, masker=Masker([PASSWORD]),
                      log=lines.append)
    result = run_drill(h.host, ctx, target=AmTarget(h), scenario=Synthetic(chosen_alert(alert, severity)),
                       stream=stream, tty=False, fail_grace=3.0, timeout=60)
    report(result, lines.append)
    text = "\n".join(lines) + "\n" + stream.getvalue()
    assert PASSWORD not in text
    return result.ok, result.message, text


def test_a_rules_alert_reaches_every_channel_of_its_route_and_resolves(tmp_path: Path) -> None:
    with alertmanager(tmp_path, {"slack": 200, "webhook": 200}) as (h, ch, smtp):
        ok, message, text = drill(h, "HighErrorRate", "critical")
        assert ok, text
        assert ("HighErrorRate routed to email-critical (email), slack-critical (slack), "
                "webhook-critical (webhook)") in text
        assert "delivered by Alertmanager: email, slack, webhook" in text
        assert "resolved notification delivered by Alertmanager: email, slack, webhook" in text
        hooks = ch.got["webhook"]
        assert [x["status"] for x in hooks] == ["firing", "resolved"]
        labels = hooks[0]["alerts"][0]["labels"]
        # the rule's own labels, the chosen severity, and the drill's marks
        assert (labels["alertname"], labels["severity"], labels["component"], labels["drill"]) == (
            "HighErrorRate", "critical", "bot", "true")
        assert len(ch.got["slack"]) == 2
        assert len(smtp.mails) == 2
        assert not h.get("alertmanager", "/api/v2/alerts", filter='alertname="HighErrorRate"').json()


def test_a_failing_channel_is_named_and_the_others_reported_delivered(tmp_path: Path) -> None:
    with alertmanager(tmp_path, {"slack": 200, "webhook": 500}) as (h, ch, smtp):
        ok, message, text = drill(h, "CriticalErrorRate", "")
        assert not ok, text
        assert "notifications are FAILING for integration 'webhook'" in message
        assert "slack" not in message.split("(delivered:")[0]  # only the failing one is named as failing
        assert message.endswith("(delivered: email, slack)")
        assert f"FAILED: {message}" in text.splitlines()
        assert ch.got["webhook"] and ch.got["slack"]
        # the test alert is resolved all the same
        assert not h.get("alertmanager", "/api/v2/alerts", filter='alertname="CriticalErrorRate"',
                         active="true").json()
