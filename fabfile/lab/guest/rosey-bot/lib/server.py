"""HTTP side: GET /api/health (JSON) and GET /api/metrics (Prometheus text, no labels)."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lib.state import BotState

VERSION = "0.0.0-lab-standin"


def health_status(state: dict) -> str:
    if not state["connected"]:
        return "unhealthy"
    return "degraded" if float(state["error_rate"]) > 0 else "healthy"


def render_metrics(state: dict) -> str:
    connected = int(bool(state["connected"]))
    rows = [
        ("bot_connected", "gauge", "1 while connected to the chat server, else 0", connected),
        ("bot_uptime_seconds", "counter", "Seconds since the bot process started", round(state["uptime"], 3)),
        ("bot_users", "gauge", "Users in the channel", int(state["users"])),
        ("bot_requests_total", "counter", "Requests handled", state["requests_total"]),
        ("bot_errors_total", "counter", "Errors seen", state["errors_total"]),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(lines) + "\n"


def make_handler(bot: BotState):
    class Handler(BaseHTTPRequestHandler):
        server_version = "rosey-bot-standin"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/api/health":
                bot.count_request()
                state = bot.snapshot()
                body = {
                    "status": health_status(state),
                    "connected": bool(state["connected"]),
                    "channel": str(state["channel"]),
                    "uptime_seconds": round(state["uptime"], 3),
                    "version": VERSION,
                    "user_count": int(state["users"]),
                    "requests_handled": state["requests_total"],
                    "error_count": state["errors_total"],
                }
                self._send(200, "application/json", json.dumps(body))
            elif path == "/api/metrics":
                self._send(200, "text/plain; charset=utf-8", render_metrics(bot.snapshot()))
            else:
                self._send(404, "text/plain; charset=utf-8", "not found\n")

        def _send(self, code: int, ctype: str, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # scrapes every few seconds would flood the journal

    return Handler


def main() -> None:
    config_path = os.environ.get("BOT_CONFIG", "/opt/rosey-bot/config-prod.json")
    with open(config_path) as handle:
        config = json.load(handle)
    bot = BotState(config.get("state_file", "/opt/rosey-bot/state.json"), config.get("channel", "lab"))
    server = ThreadingHTTPServer(("0.0.0.0", int(config["health_port"])), make_handler(bot))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"rosey-bot stand-in listening on :{config['health_port']}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
