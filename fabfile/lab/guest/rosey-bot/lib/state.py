"""The bot's simulated state: defaults, the steering file, and counters that advance with the rates."""

from __future__ import annotations

import json
import os
import threading
import time

DEFAULTS = {"connected": True, "users": 5, "error_rate": 0.0, "request_rate": 0.2, "channel": "lab"}


class BotState:
    def __init__(self, state_file: str, channel: str) -> None:
        self.state_file = state_file
        self.started = time.monotonic()
        self.values = dict(DEFAULTS, channel=channel)
        self.requests = 0.0
        self.errors = 0.0
        self._last = self.started
        self._mtime: float | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> dict:
        """Advance the counters to now (with the rates that were in force), then apply any new steering."""
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._last
            self._last = now
            self.requests += float(self.values["request_rate"]) * elapsed
            self.errors += float(self.values["error_rate"]) * elapsed
            self._reload()
            return {
                **self.values,
                "uptime": now - self.started,
                "requests_total": int(self.requests),
                "errors_total": int(self.errors),
            }

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.state_file).st_mtime
        except FileNotFoundError:
            if self._mtime is not None:
                self.values = dict(DEFAULTS, channel=self.values["channel"])
                self._mtime = None
            return
        if mtime == self._mtime:
            return
        try:
            with open(self.state_file) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return  # half-written or broken file: keep the old state until it is fixed
        self._mtime = mtime
        steered = {k: data[k] for k in DEFAULTS if k in data}
        self.values = {**DEFAULTS, "channel": self.values["channel"], **steered}
