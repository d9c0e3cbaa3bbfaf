"""A minimal QMP client (QEMU Machine Protocol over a unix socket): enough to stop, save, resume and quit."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path


class QMPError(RuntimeError):
    pass


class QMP:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.reader = self.sock.makefile("r")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments) -> dict:
        message: dict = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise QMPError(f"{command}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return", {})

    def status(self) -> str:
        return self.execute("query-status")["status"]

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def _read(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise QMPError("QMP connection closed")
        return json.loads(line)

    def __enter__(self) -> QMP:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
