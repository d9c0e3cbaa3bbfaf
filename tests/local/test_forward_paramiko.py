"""The forward behind `inv ui`, `inv status` and the drill over a real paramiko transport (issue #30, 4):
an in-process paramiko SSH server on loopback accepts direct-tcpip channels and connects them to a real
HTTP server here, or refuses them as sshd does when nothing listens. Nothing but loopback; no lab."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import paramiko
import pytest
import requests

from fabfile.ssh.forward import LocalForward, bind_local, pump

KEY = paramiko.RSAKey.generate(1024)


class Server(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.targets: dict[int, tuple[str, int]] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid: int, origin: tuple, destination: tuple) -> int:
        try:
            socket.create_connection(destination, timeout=1).close()  # what sshd does: connect first
        except OSError:
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        self.targets[chanid] = destination
        return paramiko.OPEN_SUCCEEDED


@contextlib.contextmanager
def ssh_server() -> Iterator[paramiko.Transport]:
    """A client transport logged in to an in-process SSH server that relays direct-tcpip channels."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        t = paramiko.Transport(sock)
        t.add_server_key(KEY)
        server = Server()
        t.start_server(server=server)
        while not stop.is_set():
            chan = t.accept(0.2)
            if chan is not None:
                dest = socket.create_connection(server.targets[chan.get_id()])
                threading.Thread(target=lambda c=chan, d=dest: pump(c, d, stop), daemon=True).start()
        t.close()

    threading.Thread(target=serve, daemon=True).start()
    client = paramiko.Transport(socket.create_connection(listener.getsockname()))
    client.connect(username="u", password="p")
    try:
        yield client
    finally:
        stop.set()
        client.close()
        listener.close()


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"Healthy.\n" if self.path == "/-/healthy" else b"no\n"
        self.send_response(200 if self.path == "/-/healthy" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_requests_through_the_forward_reach_the_server_side_port(web):
    with ssh_server() as transport, LocalForward(transport, web, bind_local(0)) as fwd:
        for _ in range(3):  # one channel per connection
            r = requests.get(f"http://127.0.0.1:{fwd.port}/-/healthy", timeout=5)
            assert r.status_code == 200 and r.text == "Healthy.\n"
        assert fwd.last_error == ""
    with pytest.raises(requests.ConnectionError):  # closed: the port is not served any more
        requests.get(f"http://127.0.0.1:{fwd.port}/-/healthy", timeout=2)


def test_a_closed_server_side_port_is_kept_as_last_error_not_raised():
    closed = bind_local(0)
    port = closed.getsockname()[1]
    closed.close()
    with ssh_server() as transport, LocalForward(transport, port, bind_local(0)) as fwd:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{fwd.port}/-/healthy", timeout=5)
        assert "Connect failed" in fwd.last_error
