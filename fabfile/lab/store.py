"""The lab's long-term store: Debian's VictoriaMetrics on the control machine, for remote_write (issue #33).

Run like the shared mail catcher (mailbox.py): one on 127.0.0.1:<port> that every lab VM reaches at
10.0.2.2, its data under the lab cache, found again by its pidfile (never by name). Started and stopped by
the caller (the lab's receiver tests); `lab.up` does not start it. With a username and password it asks
basic auth of every request (`-httpAuth.*`), so a wrong credential is refused like a hosted store would.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fabfile.lab import paths, procs
from fabfile.lab.mailbox import GUEST_ADDRESS

BINARY = "victoria-metrics"  # Debian's package of that name (scripts/bootstrap.sh installs it)
WRITE_PATH = "/api/v1/write"


def data_dir(port: int) -> Path:
    path = paths.cache_dir() / "victoria-metrics" / str(port)
    path.mkdir(parents=True, exist_ok=True)
    return path


def argv(port: int, data: Path, auth: tuple[str, str] | None = None) -> list[str]:
    """Its command line: loopback only, data in `data`, searchable at once (no latency offset, no cache)."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise RuntimeError(f"{BINARY} is not installed: scripts/bootstrap.sh installs Debian's package")
    out = [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data}", "-retentionPeriod=1d",
           "-search.latencyOffset=0s", "-search.disableCache"]
    if auth:  # (a lab credential, never a real one: it shows in this process's command line)
        out += [f"-httpAuth.username={auth[0]}", f"-httpAuth.password={auth[1]}"]
    return out


def daemon(port: int, auth: tuple[str, str] | None = None) -> procs.LocalDaemon:
    return procs.LocalDaemon("long-term store (VictoriaMetrics)", paths.cache_dir() / "run",
                             f"victoria-metrics-{port}", port, argv(port, data_dir(port), auth),
                             marker=f"-httpListenAddr=127.0.0.1:{port}")


def write_url(port: int) -> str:
    """What a lab host's `remote_write[].url` says to write here (a private IP: plain http is allowed)."""
    return f"http://{GUEST_ADDRESS}:{port}{WRITE_PATH}"


def query(base: str, promql: str, auth: tuple[str, str] | None = None,
          timeout: float = 5) -> list[dict[str, Any]]:
    """An instant query's `data.result` (`base`: http://127.0.0.1:<port>)."""
    req = urllib.request.Request(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (our own loopback URL)
        return json.loads(resp.read())["data"]["result"]


def labels_of(result: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, str]]:
    """Only `keys` of each series' labels, for comparing what arrived with what was meant to."""
    return [{k: r["metric"].get(k, "") for k in keys} for r in result]
