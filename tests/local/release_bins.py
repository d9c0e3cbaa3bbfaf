"""The lab's release archives (Debian's real builds of every version the lab has), unpacked for local runs.

Each rendered host runs on loopback with the very ExecStart of its rendered unit, only its paths moved to a
temp dir: the binary from the unpacked archive, listen addresses on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from fabfile.config import layout, render
from fabfile.config.certs import web_material
from fabfile.config.inventory import load_inventory
from fabfile.config.local_tools import TOOLS_CACHE
from fabfile.config.needed_secrets import WEB_CA, required_secrets
from fabfile.config.settings import HostSettings
from fabfile.config.versions import at_least

GUEST_BOT = Path(__file__).resolve().parents[2] / "fabfile" / "lab" / "guest" / "rosey-bot"
USER, PASSWORD = "admin", "rel-Web-Pw-7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_releases(wanted: int = 6) -> dict[str, dict[str, Path]]:
    """{family: {version: archive}} of every release the lab has (built once from Debian's .debs).

    Reading the built archives takes milliseconds; asking the Debian indexes (ensure_all) takes a minute, so
    that is done only when fewer than `wanted` archives are there yet.
    """
    from fabfile.lab import releases

    found = releases.available()
    if len(found) < wanted:
        found = releases.ensure_all()
    out: dict[str, dict[str, Path]] = {}
    for r in found:
        out.setdefault(r.family, {})[r.version] = r.archive
    return out


def unpack(archive: Path) -> Path:
    """The archive unpacked once into a cache keyed by its checksum (a rebuilt archive gets a new one)."""
    digest = (archive.parent / "sha256sums.txt").read_text().split()[0]
    dest = TOOLS_CACHE / f"unpacked-{digest[:16]}"
    top = dest / archive.name.removesuffix(".tar.gz")
    if not (dest / ".done").exists():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        (dest / ".done").write_text("")
    return top


def exec_start(unit_text: str) -> list[str]:
    """The ExecStart argv of a rendered unit (backslash continuations joined)."""
    lines = unit_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    joined = ""
    for line in lines[start:]:
        joined += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            break
    return shlex.split(joined.removeprefix("ExecStart="))


def stand_in_bot(port: int, state_dir: Path, handler: type[BaseHTTPRequestHandler] | None = None
                 ) -> ThreadingHTTPServer:
    """The lab guest's own bot code (lib/server.py), served on 127.0.0.1 from a thread of this process."""
    if str(GUEST_BOT) not in sys.path:
        sys.path.insert(0, str(GUEST_BOT))
    from lib.server import make_handler
    from lib.state import BotState

    handler = handler or make_handler(BotState(str(state_dir / "state.json"), "lab"))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def running(h: RenderedHost, tmp: Path, prometheus: Path, alertmanager: Path) -> Iterator[None]:
    """The stand-in bot and both releases started from `h`'s rendered units and ready; all stopped after."""
    bot = stand_in_bot(h.ports["bot"], tmp)
    try:
        h.start("alertmanager", alertmanager)
        h.start("prometheus", prometheus)
        h.wait_ready("alertmanager")
        h.wait_ready("prometheus")
        yield
    finally:
        h.stop()
        bot.shutdown()
        bot.server_close()


def host_yaml(base: Path, prom: str, am: str, ports: dict[str, int], tls: bool = False) -> str:
    # webhook (url_file) where the release has it: one more secret-file option for amtool to parse
    extra = "    receivers: {webhook: {}}\n" if at_least(am, "0.26.0") else ""
    return f"""
defaults:
  receivers:
    email: {{to: [ops@lab.test], from: am@lab.test, smarthost: "127.0.0.1:{ports['smtp']}",
            auth_username: lab, require_tls: false}}
hosts:
  h:
    address: 127.0.0.1
    base_dir: {base}
    base_dir_outside_allowlist: true  # a temporary directory of this test
    bot_port: {ports['bot']}
    prometheus: {{version: {prom}, port: {ports['prometheus']}, scrape_interval: 1s, evaluation_interval: 1s}}
    alertmanager: {{version: {am}, port: {ports['alertmanager']}}}
    web: {{tls: {str(tls).lower()}}}
{extra}"""


@dataclass
class RenderedHost:
    host: HostSettings
    rendered: render.Rendered
    base: Path
    ports: dict[str, int]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ca_file: str | None = None  # web.tls: the CA bundle the clients here trust (and the scheme is https)

    def write(self) -> None:
        for name in layout.CONFIG_FILES:
            (self.base / name).write_text(self.rendered.files[name])
        (self.base / "secrets").mkdir(exist_ok=True)
        for sf in self.rendered.secret_files:
            Path(sf.path).write_text(sf.content)

    def argv(self, service: str, release: Path) -> list[str]:
        """The unit's ExecStart with the binary from `release` and listen addresses on loopback."""
        argv = exec_start(self.rendered.files[f"{service}.service"])
        assert argv[0] == layout.binary_path(service), argv[0]
        out = [str(release / service)]
        for arg in argv[1:]:
            arg = arg.replace(layout.release_dir(self.host, service), str(release))
            if arg.startswith("--web.listen-address=:"):
                arg = arg.replace("=:", "=127.0.0.1:")
            out.append(arg)
        return out

    def start(self, service: str, release: Path) -> None:
        log = open(self.base / f"{service}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.procs[service] = subprocess.Popen(self.argv(service, release), stdout=log,
                                               stderr=subprocess.STDOUT, cwd=self.base)

    def log(self, service: str) -> str:
        return (self.base / f"{service}.log").read_text(errors="replace")

    def url(self, service: str, path: str) -> str:
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.ports[service]}{path}"

    def get(self, service: str, path: str, **params: str) -> requests.Response:
        return requests.get(self.url(service, path), params=params, auth=(USER, PASSWORD), timeout=5,
                            verify=self.ca_file or True)

    def wait_ready(self, service: str, seconds: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            proc = self.procs[service]
            if proc.poll() is not None:
                raise AssertionError(f"{service} exited {proc.returncode}:\n{self.log(service)[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if self.get(service, "/-/ready").ok:
                    return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"{service} not ready in {seconds}s:\n{self.log(service)[-3000:]}")

    def targets(self) -> dict[str, dict]:
        doc = self.get("prometheus", "/api/v1/targets", state="active").json()
        return {t["labels"]["job"]: t for t in doc["data"]["activeTargets"]}

    def wait_targets_up(self, jobs: set[str], seconds: float = 30) -> dict[str, dict]:
        end = time.monotonic() + seconds
        seen: dict[str, dict] = {}
        while time.monotonic() < end:
            with contextlib.suppress(requests.RequestException, KeyError):
                seen = self.targets()
                if all(seen.get(j, {}).get("health") == "up" for j in jobs):
                    return seen
            time.sleep(0.5)
        health = {j: (t["health"], t["lastError"]) for j, t in seen.items()}
        raise AssertionError(f"targets not up: {health}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def render_host(tmp: Path, prom: str, am: str, tls: bool = False) -> RenderedHost:
    ports = {k: free_port() for k in ("prometheus", "alertmanager", "bot", "smtp")}
    base = tmp / "base"
    base.mkdir(parents=True)
    (tmp / "hosts.yml").write_text(host_yaml(base, prom, am, ports, tls))
    inv = load_inventory(tmp / "hosts.yml")
    host = inv.host("h")
    secrets = {"web_password": PASSWORD, "smtp_password": "x-smtp", "webhook_url": "http://127.0.0.1:9/hook"}
    if tls:  # the project's web CA and this host's certificate, made beside the (absent) secrets file
        secrets |= web_material(inv, host, issue=True)
    rendered = render.render_host(inv, host, {k: secrets[k] for k in required_secrets(host) if k in secrets})
    out = RenderedHost(host, rendered, base, ports)
    if tls:
        out.ca_file = layout.secret_path(host, WEB_CA)
    out.write()
    return out
