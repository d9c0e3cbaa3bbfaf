"""`inv ui`: the web UIs through SSH tunnels, so 9090/9093 can stay closed to the world (the runbook's own
advice). One SSH connection, two local forwards to the server's 127.0.0.1, open until Ctrl-C."""

from __future__ import annotations

import contextlib
import threading

from fabfile.alerting.api import tunnel
from fabfile.config.inventory import Inventory
from fabfile.config.pki import cert_file, fingerprint
from fabfile.config.secrets import env_var, web_pki_folder
from fabfile.config.settings import HostSettings
from fabfile.output import Output
from fabfile.ssh.connection import connect


def login_line(host: HostSettings, inventory: Inventory) -> str:
    if not host.web.basic_auth:
        return "no login (web.basic_auth is off)"
    return (f"log in as {host.web.username!r} with the secret web_password (from "
            f"{inventory.secrets_path(host)} or ${env_var('web_password', host.name)})")


def tls_line(host: HostSettings, inventory: Inventory) -> str | None:
    """What a browser needs to trust the UIs: the CA to import, or the fingerprint to check its warning
    against (None: plain HTTP)."""
    if not host.web.tls:
        return None
    folder = web_pki_folder(inventory, host)
    cert = cert_file(folder, host.name)
    seen = f"certificate SHA-256 {fingerprint(cert.read_text())}" if cert.exists() else \
        "no certificate made yet (inv deploy-configs makes it)"
    return f"HTTPS: {seen}; import {folder / 'ca.crt'} into the browser to trust it"


def cli_ui(inventory: Inventory, host: HostSettings, prometheus_port: int = 0, alertmanager_port: int = 0,
           stop: threading.Event | None = None) -> int:
    out = Output()
    scheme = host.web.scheme
    with connect(host) as conn, contextlib.ExitStack() as stack:
        pp = stack.enter_context(tunnel(conn, host.prometheus.port, prometheus_port))
        ap = stack.enter_context(tunnel(conn, host.alertmanager.port, alertmanager_port))
        out.line(f"[{host.name}] Prometheus:   {scheme}://127.0.0.1:{pp}/  (tunnel to {host.address}'s "
                 f"127.0.0.1:{host.prometheus.port})")
        out.line(f"[{host.name}] Alertmanager: {scheme}://127.0.0.1:{ap}/  (tunnel to {host.address}'s "
                 f"127.0.0.1:{host.alertmanager.port})")
        tls = tls_line(host, inventory)
        if tls:
            out.line(f"[{host.name}] {tls}")
        out.line(f"[{host.name}] {login_line(host, inventory)}; Ctrl-C closes the tunnels")
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
        out.line(f"[{host.name}] tunnels closed")
    return 0
