"""Issue 30 §11 against real loopback servers: the server-side `dl` (real bash, curl, coreutils timeout) and
this machine's `fetch` refuse a redirect from https to http, follow http->http and https->https, and stop a
crawling download at the limit with one line (the flags and fakes: tests/pure/test_transfer_bounds.py)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabfile.deploy.download import EXIT_DOWNLOAD, FetchError, build_opener, fetch, shell_dl

BODY = b"release-bytes\n"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = serialization.Encoding.PEM
    (tmp / "k.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return tmp / "c.pem", tmp / "k.pem"


class Servers:
    http_port = https_port = 0


def _handler(ports: type[Servers]) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a) -> None: ...  # noqa: ANN002

        def do_GET(self) -> None:
            if self.path == "/file":
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)
            elif self.path in ("/to-http", "/to-https"):
                to_http = self.path == "/to-http"
                scheme, port = ("http", ports.http_port) if to_http else ("https", ports.https_port)
                self.send_response(302)
                self.send_header("Location", f"{scheme}://127.0.0.1:{port}/file")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/slow":  # a byte every 0.2 s: connected and answering, never done in time
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass
    return H


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[type[Servers], Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(tmp)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(Servers))
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(Servers))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    Servers.http_port, Servers.https_port = plain.server_address[1], tls.server_address[1]
    for s in (plain, tls):
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield Servers, cert
    for s in (plain, tls):
        s.shutdown()


def _dl(url: str, out: Path, cert: Path, seconds: int = 600) -> subprocess.CompletedProcess[str]:
    script = f"set -eu\n{shell_dl(url.startswith('https:'), seconds)}\ndl {url} {out}\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "CURL_CA_BUNDLE": str(cert)})


def test_the_server_s_dl_follows_https_to_https(servers, tmp_path: Path) -> None:
    ports, cert = servers
    p = _dl(f"https://127.0.0.1:{ports.https_port}/to-https", tmp_path / "a", cert)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "a").read_bytes() == BODY


def test_the_server_s_dl_refuses_https_to_http(servers, tmp_path: Path) -> None:
    ports, cert = servers
    p = _dl(f"https://127.0.0.1:{ports.https_port}/to-http", tmp_path / "a", cert)
    assert p.returncode == EXIT_DOWNLOAD and not (tmp_path / "a").exists()
    assert f"downloading https://127.0.0.1:{ports.https_port}/to-http failed (exit 1, see above)" in p.stderr


def test_the_server_s_dl_follows_http_to_http(servers, tmp_path: Path) -> None:
    ports, cert = servers
    p = _dl(f"http://127.0.0.1:{ports.http_port}/to-http", tmp_path / "a", cert)
    assert p.returncode == 0 and (tmp_path / "a").read_bytes() == BODY


def test_the_server_s_dl_stops_a_crawling_download_at_its_limit(servers, tmp_path: Path) -> None:
    ports, cert = servers
    started = time.monotonic()
    p = _dl(f"http://127.0.0.1:{ports.http_port}/slow", tmp_path / "a", cert, seconds=2)
    assert time.monotonic() - started < 15
    assert p.returncode == EXIT_DOWNLOAD
    assert p.stderr.strip().splitlines()[-1] == (
        f"downloading http://127.0.0.1:{ports.http_port}/slow took longer than 2 s (the limit): check the "
        "server's network or its proxy, or set source: upload")


@pytest.fixture
def trusting(servers, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("SSL_CERT_FILE", str(servers[1]))
    return servers[0]


def test_this_machine_s_fetch_refuses_https_to_http_and_follows_https(trusting, tmp_path: Path) -> None:
    with pytest.raises(FetchError,
                       match=r"the server redirected to http://127\.0\.0\.1:[0-9]+/file, which is not https"):
        fetch(f"https://127.0.0.1:{trusting.https_port}/to-http", tmp_path / "a", opener=build_opener())
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.part").exists()
    fetch(f"https://127.0.0.1:{trusting.https_port}/to-https", tmp_path / "b", opener=build_opener())
    assert (tmp_path / "b").read_bytes() == BODY


def test_this_machine_s_fetch_stops_a_crawling_download_at_its_limit(trusting, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 1 s"):
        fetch(f"http://127.0.0.1:{trusting.http_port}/slow", tmp_path / "a", seconds=1)
    assert time.monotonic() - started < 10
