"""A real, tiny monitoring stack on loopback for fast drill tests (no VM).

Debian's /usr/bin/prometheus scrapes a stand-in bot served from this process; /usr/bin/prometheus-alertmanager
(with basic auth via --web.config.file) mails to an aiosmtpd server in this process. Ephemeral ports, temp
dirs, intervals of a second, everything stopped by PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import requests
from aiosmtpd.controller import Controller

from fabfile.alerting.api import Apis, free_port, local_apis
from fabfile.config.settings import Alertmanager, Email, HostSettings, Prometheus, Receivers
from fabfile.drill.target import parse_notify_errors
from tests.helpers import ALERTMANAGER_BIN, PROMETHEUS_BIN

PROM, AM = PROMETHEUS_BIN, ALERTMANAGER_BIN
USER, PASSWORD = "admin", "s3cret-Web-Pw-42"
RULE_FOR = "5s"
RESTART_WINDOW = "20s"


class _BotHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        uptime = time.monotonic() - self.server.started  # type: ignore[attr-defined]
        body = f"bot_connected 1\nbot_uptime_seconds {uptime:.3f}\nbot_users 5\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


class StandInBot:
    """Serves /api/metrics while 'active'; stopped means nothing listens on the port (up == 0)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.starts = 0

    def start(self) -> None:
        if self.server:
            return
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _BotHandler)
        self.server.started = time.monotonic()  # type: ignore[attr-defined]  # uptime resets on a restart
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.starts += 1

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def active(self) -> bool:
        return self.server is not None


class _Keep:
    def __init__(self, box: list[bytes]) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.box.append(envelope.original_content or envelope.content)
        return "250 OK"


class Smtp:
    def __init__(self, port: int) -> None:
        self.port, self.mails = port, []
        self.ctl: Controller | None = None

    def start(self) -> None:
        if not self.ctl:
            self.ctl = Controller(_Keep(self.mails), hostname="127.0.0.1", port=self.port)
            self.ctl.start()

    def stop(self) -> None:
        if self.ctl:
            self.ctl.stop()
            self.ctl = None

    def subjects(self) -> list[str]:
        return [str(make_header(decode_header(message_from_bytes(m)["Subject"] or ""))) for m in self.mails]


RULES = f"""
groups:
  - name: rosey_bot_alerts
    interval: 1s
    rules:
      - alert: BotDown
        expr: up{{job="rosey-bot"}} == 0 or bot_connected{{job="rosey-bot"}} == 0
        for: {RULE_FOR}
        labels: {{severity: critical, component: bot}}
        annotations: {{summary: "Rosey bot is disconnected"}}
      - alert: BotRestarting
        expr: resets(bot_uptime_seconds{{job="rosey-bot"}}[{RESTART_WINDOW}]) > 0
        labels: {{severity: warning, component: bot}}
        annotations: {{summary: "Rosey bot is restarting"}}
"""


@dataclass
class Stack:
    tmp: Path
    bot: StandInBot
    smtp: Smtp
    prom_port: int
    am_port: int
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def rules_path(self) -> Path:
        return self.tmp / "alert_rules.yml"

    @property
    def am_log(self) -> Path:
        return self.tmp / "alertmanager.log"

    def apis(self) -> Apis:
        return local_apis(f"http://127.0.0.1:{self.prom_port}", f"http://127.0.0.1:{self.am_port}",
                          (USER, PASSWORD))

    def host(self) -> HostSettings:
        return HostSettings(
            name="local", address="127.0.0.1", env="test",
            receivers=Receivers(email=Email(to=("oncall@lab.test",), sender="am@lab.test",
                                            smarthost=f"127.0.0.1:{self.smtp.port}", require_tls=False)),
            prometheus=Prometheus(port=self.prom_port, scrape_interval="1s", evaluation_interval="1s"),
            alertmanager=Alertmanager(port=self.am_port, group_wait="1s", group_interval="2s"))

    def wait_quiet(self, timeout: float = 60) -> None:
        """Bot up, nothing firing or pending anywhere: the state every test starts from."""
        apis, end = self.apis(), time.monotonic() + timeout
        self.bot.start()
        self.smtp.start()
        while time.monotonic() < end:
            try:
                ts = apis.prometheus.targets("rosey-bot")
                if (ts and all(t["health"] == "up" for t in ts) and not apis.prometheus.alerts()
                        and not apis.alertmanager.alerts()):
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise AssertionError("local stack did not become quiet")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.bot.stop()
        self.smtp.stop()


class LocalTarget:
    """The drill's Target for the local stack: in-process bot, direct URLs, AM's log file."""

    def __init__(self, stack: Stack, on_stop=None) -> None:
        self.s, self.on_stop = stack, on_stop
        self.stops = self.start_calls = 0

    def apis(self) -> Apis:
        return self.s.apis()

    def reconnect(self) -> None:
        pass

    def stop_bot(self) -> None:
        self.stops += 1
        self.s.bot.stop()
        if self.on_stop:
            self.on_stop()

    def start_bot(self) -> None:
        self.start_calls += 1
        self.s.bot.start()

    def bot_active(self) -> bool:
        return self.s.bot.active

    def notify_errors(self, since: float) -> list[str]:
        return parse_notify_errors(self.s.am_log.read_text(errors="replace"))

    def extra_prechecks(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def _wait_http(url: str, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, auth=(USER, PASSWORD), timeout=1).ok:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def start_stack(tmp: Path) -> Stack:
    bot, smtp = StandInBot(free_port()), Smtp(free_port())
    s = Stack(tmp, bot, smtp, free_port(), free_port())
    bot.start()
    smtp.start()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (tmp / "web.yml").write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    s.rules_path.write_text(RULES)
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s, external_labels: {{cluster: rosey-bot}}}}
rule_files: [alert_rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{s.am_port}"]}}]
      basic_auth: {{username: {USER}, password: "{PASSWORD}"}}
scrape_configs:
  - job_name: rosey-bot
    metrics_path: /api/metrics
    static_configs: [{{targets: ["127.0.0.1:{bot.port}"], labels: {{env: test}}}}]
""")
    (tmp / "alertmanager.yml").write_text(f"""
global: {{smtp_smarthost: "127.0.0.1:{smtp.port}", smtp_from: am@lab.test, smtp_require_tls: false}}
route:
  receiver: email-default
  group_by: [alertname, cluster, env]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: email-critical
      continue: true
receivers:
  - name: email-default
    email_configs:
      - to: oncall@lab.test
        send_resolved: true
        headers: {{Subject: '[Rosey Bot] {{{{ .GroupLabels.alertname }}}}'}}
  - name: email-critical
    email_configs:
      - to: oncall@lab.test
        send_resolved: true
        headers: {{Subject: '[CRITICAL] Rosey Bot: {{{{ .GroupLabels.alertname }}}}'}}
""")
    env = dict(os.environ, GOMAXPROCS="1")
    am_log = open(s.am_log, "wb")  # noqa: SIM115 (lives as long as the process)
    s.procs.append(subprocess.Popen(
        [AM, f"--config.file={tmp}/alertmanager.yml", f"--storage.path={tmp}/am-data",
         f"--web.listen-address=127.0.0.1:{s.am_port}", "--cluster.listen-address=",
         f"--web.config.file={tmp}/web.yml", "--log.level=info"],
        stdout=am_log, stderr=subprocess.STDOUT, env=env))
    s.procs.append(subprocess.Popen(
        [PROM, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/prom-data",
         f"--web.listen-address=127.0.0.1:{s.prom_port}", f"--web.config.file={tmp}/web.yml"],
        stdout=open(tmp / "prometheus.log", "wb"), stderr=subprocess.STDOUT, env=env))  # noqa: SIM115
    try:
        _wait_http(f"http://127.0.0.1:{s.am_port}/-/ready")
        _wait_http(f"http://127.0.0.1:{s.prom_port}/-/ready")
    except AssertionError:
        s.stop()
        raise
    return s
