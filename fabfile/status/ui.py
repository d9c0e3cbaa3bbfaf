"""`inv ui`: the web UIs through SSH tunnels, so 9090/9093 can stay closed to the world (the runbook's own
advice). One SSH connection, two local forwards to the server's 127.0.0.1, open until Ctrl-C; the URLs are
printed only after each forward answered /-/healthy, and every failure is one `error:` line."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from fabric import Connection

from fabfile.alerting.api import ApiError, Http, ca_bundle_file, local_apis, web_auth
from fabfile.config.certs import web_pki_folder
from fabfile.config.inventory import Inventory
from fabfile.config.pki import cert_file, fingerprint
from fabfile.config.secrets import env_var, load_secrets
from fabfile.config.settings import HostSettings
from fabfile.drill.errors import why
from fabfile.errors import UserError
from fabfile.masking import Masker
from fabfile.output import Output
from fabfile.ssh.connection import connect
from fabfile.ssh.forward import LocalForward, bind_local
from fabfile.ssh.transport import describe_connect_error


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


PORT_FLAGS = "--prometheus-port/--alertmanager-port"


def connect_problem(e: BaseException, host: HostSettings) -> str:
    """One line for an SSH connection that could not be opened."""
    return (describe_connect_error(e, host.name, host.address, host.ssh.port)
            or f"cannot connect to host {host.name} ({host.address}:{host.ssh.port}): {why(e)}")


def forward_problem(name: str, api: Http, fwd: LocalForward, host: HostSettings) -> str | None:
    """None when `name` answers /-/healthy through its forward (with the login, over TLS when the UI is
    TLS); else one line saying where it broke: the server's end (nothing listening) or the answer."""
    try:
        api.request("GET", "/-/healthy")
        return None
    except ApiError as e:
        if fwd.last_error:
            return (f"{name} on {host.name}: nothing answers on the server's 127.0.0.1:{fwd.remote[1]} "
                    f"(SSH: {fwd.last_error}); is it running? (inv status -H {host.name})")
        return f"{name} on {host.name} does not answer through the tunnel: {e}"


def cli_ui(inventory: Inventory, host: HostSettings, prometheus_port: int = 0, alertmanager_port: int = 0,
           stop: threading.Event | None = None,
           connector: Callable[[HostSettings], Connection] = connect) -> int:
    """0 after Ctrl-C; 1 when the host or a UI cannot be reached through the tunnels (one `error:` line);
    a taken local port or a missing secret is a UserError (exit 2). The URLs are printed only once both
    forwards answered: the local ports are bound first, by us, so nothing else can be listening there."""
    out = Output()
    secrets = load_secrets(inventory, host)
    masker = Masker(secrets.values())
    wanted = [("Prometheus", host.prometheus.port, prometheus_port),
              ("Alertmanager", host.alertmanager.port, alertmanager_port)]
    with contextlib.ExitStack() as stack:
        listeners = [bind_local(port, PORT_FLAGS) for _, _, port in wanted]
        for sock in listeners:
            stack.callback(sock.close)
        conn = stack.enter_context(connector(host))
        try:
            conn.open()
        except UserError:  # the host key: the user's to check (exit 2, as everywhere)
            raise
        except Exception as e:  # noqa: BLE001  (refused, timed out, login refused: one line each)
            out.error(masker(connect_problem(e, host)))
            return 1
        fwds = [stack.enter_context(LocalForward(conn.transport, remote, sock))
                for (_, remote, _), sock in zip(wanted, listeners, strict=True)]
        ca = stack.enter_context(ca_bundle_file(host, secrets))
        apis = local_apis(*(f"{host.web.scheme}://127.0.0.1:{f.port}" for f in fwds),
                          web_auth(host, secrets), masker, timeout=10, ca_file=ca)
        for api in (apis.prometheus, apis.alertmanager):
            stack.callback(api.session.close)
        problems = [p for (name, _, _), api, f in zip(wanted, (apis.prometheus, apis.alertmanager), fwds,
                                                         strict=True)
                    if (p := forward_problem(name, api, f, host))]
        if problems:
            for p in problems:
                out.error(masker(p))
            return 1
        for (name, remote, _), f in zip(wanted, fwds, strict=True):
            out.line(f"[{host.name}] {name + ':':<13} {host.web.scheme}://127.0.0.1:{f.port}/  (tunnel to "
                     f"{host.address}'s 127.0.0.1:{remote})")
        tls = tls_line(host, inventory)
        if tls:
            out.line(f"[{host.name}] {tls}")
        out.line(f"[{host.name}] {login_line(host, inventory)}; Ctrl-C closes the tunnels")
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
        out.line(f"[{host.name}] tunnels closed")
    return 0
