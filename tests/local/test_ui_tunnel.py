"""`inv ui` (issue #30, finding 4): the local ports are bound by us before anything else, a taken one is one
line (exit 2) and the squatter gets nothing, and the URLs are printed only after both forwards answered
/-/healthy with the login; every tunnel failure is one `error:` line, exit 1.

Real here: the listening sockets on 127.0.0.1, the forwards' relay threads, the HTTP requests (requests,
basic auth). Faked: the SSH side. `FakeConn.transport.open_channel` hands back one end of a socketpair
whose other end is a tiny in-process HTTP server standing in for Prometheus/Alertmanager on the server's
127.0.0.1 (or raises paramiko's ChannelException, as a server does when nothing listens there). No lab.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
import time

import paramiko
import pytest
import requests
from invoke.exceptions import Exit

from fabfile.cli import user_errors
from fabfile.config.needed_secrets import WEB_CA, WEB_CERT, WEB_KEY
from fabfile.config.secrets import load_secrets_issuing
from fabfile.ssh.forward import LocalPortInUse
from fabfile.status.ui import cli_ui
from tests.pure.test_deploy_runner import write_inventory

PASSWORD = "ui-w3b-S3cret"


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    inv = write_inventory(tmp_path, monkeypatch, "  lab: {address: 192.0.2.10, secrets_file: none.yml}\n")
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", PASSWORD)
    return inv


def serve_http(sock: socket.socket, password: str) -> None:
    """One HTTP/1.0-style exchange: 200 for /-/healthy with the right login, 401 otherwise."""
    with sock:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.decode("latin-1")
        good = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        ok = head.startswith("GET /-/healthy ") and f"Authorization: {good}" in head
        body = b"Healthy.\n" if ok else b"Unauthorized\n"
        status = b"200 OK" if ok else b"401 Unauthorized"
        sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)


def serve_https(sock: socket.socket, password: str, context: ssl.SSLContext) -> None:
    with contextlib.suppress(OSError):
        serve_http(context.wrap_socket(sock, server_side=True), password)


class FakeTransport:
    def __init__(self, listening: set[int], password: str = PASSWORD,
                 tls: ssl.SSLContext | None = None) -> None:
        self.listening, self.password, self.tls = listening, password, tls
        self.opened: list[tuple[str, int]] = []

    def open_channel(self, kind, dest_addr=None, src_addr=None, window_size=None, max_packet_size=None,
                     timeout=None):
        assert kind == "direct-tcpip"
        self.opened.append(dest_addr)
        if dest_addr[1] not in self.listening:
            raise paramiko.ChannelException(2, "Connect failed")
        ours, theirs = socket.socketpair()
        serve, args = (serve_https, (self.tls,)) if self.tls else (serve_http, ())
        threading.Thread(target=serve, args=(theirs, self.password, *args), daemon=True).start()
        return ours


class FakeConn:
    def __init__(self, transport: FakeTransport | None, error: Exception | None = None) -> None:
        self.transport, self.error, self.opened, self.closed = transport, error, False, False

    def open(self) -> None:
        self.opened = True
        if self.error:
            raise self.error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True


def run_ui(inventory, conn: FakeConn, **ports: int) -> tuple[int, threading.Event]:
    """cli_ui in a thread; stops it as soon as it waits for Ctrl-C (or returns on failure)."""
    host = inventory.host("lab")
    stop = threading.Event()
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(cli_ui(inventory, host, stop=stop,
                                                             connector=lambda h: conn, **ports)))
    t.start()
    return t, stop, result


def test_a_taken_local_port_is_one_line_exit_2_and_the_squatter_gets_nothing(inventory):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(4)
    port = squatter.getsockname()[1]
    conn = FakeConn(FakeTransport({9090, 9093}))
    with pytest.raises(LocalPortInUse, match=rf"^local port {port} is in use; pick another with "
                                              r"--prometheus-port/--alertmanager-port$"):
        cli_ui(inventory, inventory.host("lab"), prometheus_port=port, connector=lambda h: conn)
    with pytest.raises(Exit) as e:  # as `inv ui` says it
        user_errors(cli_ui)(inventory, inventory.host("lab"), alertmanager_port=port,
                            connector=lambda h: conn)
    assert e.value.code == 2 and e.value.message == (
        f"error: local port {port} is in use; pick another with --prometheus-port/--alertmanager-port")
    assert not conn.opened  # no SSH at all
    squatter.settimeout(0.3)
    with pytest.raises(TimeoutError):
        squatter.accept()  # nobody connected: no request, no basic-auth header
    squatter.close()


def test_urls_are_printed_once_both_forwards_answered_and_they_work(inventory, capsys):
    check_happy_path(inventory, capsys, FakeTransport({9090, 9093}), "http")


def test_a_tls_ui_is_checked_over_https_with_the_hosts_own_ca(tmp_path, monkeypatch, capsys):
    inv = write_inventory(tmp_path, monkeypatch,
                         "  lab: {address: 192.0.2.10, secrets_file: none.yml, web: {tls: true}}\n")
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", PASSWORD)
    secrets = load_secrets_issuing(inv, inv.host("lab"))  # makes the host's web CA and certificate
    (tmp_path / "web.crt").write_text(secrets[WEB_CERT])
    (tmp_path / "web.key").write_text(secrets[WEB_KEY])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "web.crt", tmp_path / "web.key")
    (tmp_path / "ca.crt").write_text(secrets[WEB_CA])
    check_happy_path(inv, capsys, FakeTransport({9090, 9093}, tls=context), "https", str(tmp_path / "ca.crt"))


def check_happy_path(inventory, capsys, transport: FakeTransport, scheme: str, ca: str | bool = True) -> None:
    t, stop, result = run_ui(inventory, FakeConn(transport))
    deadline, seen = time.monotonic() + 10, ""
    while "Ctrl-C closes the tunnels" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen += capsys.readouterr().out
    lines = seen.splitlines()
    assert transport.opened == [("127.0.0.1", 9090), ("127.0.0.1", 9093)]  # checked before printing
    url = lines[0].split()[2]
    assert lines[0].startswith(f"[lab] Prometheus:   {scheme}://127.0.0.1:")
    assert "(tunnel to 192.0.2.10's 127.0.0.1:9090)" in lines[0]
    assert lines[1].startswith(f"[lab] Alertmanager: {scheme}://127.0.0.1:")
    r = requests.get(url + "-/healthy", auth=("admin", PASSWORD), timeout=5, verify=ca)  # it works
    assert r.status_code == 200 and r.text == "Healthy.\n"
    stop.set()
    t.join(10)
    assert result == [0] and "[lab] tunnels closed" in capsys.readouterr().out


@pytest.mark.parametrize(("conn", "expected"), [
    (lambda: FakeConn(FakeTransport({9090})),
     "error: Alertmanager on lab: nothing answers on the server's 127.0.0.1:9093 (SSH: "),
    (lambda: FakeConn(FakeTransport({9090, 9093}, password="other")),
     "error: Prometheus on lab does not answer through the tunnel: prometheus: GET /-/healthy: 401 "),
    (lambda: FakeConn(None, paramiko.ssh_exception.NoValidConnectionsError(
        {("192.0.2.10", 22): ConnectionRefusedError(111, "refused")})),
     "error: cannot connect to host lab (192.0.2.10:22): connection refused"),
], ids=["remote-port-closed", "wrong-login", "host-unreachable"])
def test_every_tunnel_failure_is_one_line_exit_1_and_no_url(inventory, capsys, conn, expected):
    t, stop, result = run_ui(inventory, conn())
    t.join(20)
    captured = capsys.readouterr()
    stop.set()
    assert result == [1]
    lines = captured.out.splitlines()
    assert any(ln.startswith(expected) for ln in lines), captured.out
    assert all(ln.startswith("error: ") for ln in lines) and "http://" not in captured.out
    assert "Traceback" not in captured.err and PASSWORD not in captured.out
