"""The release server: `python3 -m http.server` on the control machine's 127.0.0.1, serving the archives.

The guest reaches it at 10.0.2.2 (QEMU user-mode networking maps that to the host's loopback). It is shared by
all lab hosts, started by the first `lab.up` and stopped by the last `lab.down` (by its pidfile).
"""

from __future__ import annotations

import sys

from fabfile.lab import paths, procs


def _daemon(port: int) -> procs.LocalDaemon:
    argv = (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
            "--directory", str(paths.releases_dir()))
    return procs.LocalDaemon("release server", paths.cache_dir() / "run", f"releases-{port}", port, argv,
                             marker=f"http.server {port} --bind 127.0.0.1")


def running_pid(port: int) -> int | None:
    return _daemon(port).running_pid()


def ensure_running(port: int) -> None:
    _daemon(port).ensure_running()


def stop(port: int) -> None:
    _daemon(port).stop()
