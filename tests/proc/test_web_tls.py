"""web_get and the certificate fingerprint against real openssl and a loopback listener (the rest:
tests/pure/test_web_tls.py)."""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest

from fabfile.config.needed_secrets import WEB_CERT
from fabfile.config.pki import fingerprint
from fabfile.config.secrets import load_secrets_issuing
from fabfile.ssh.webauth import web_get_fn
from tests.helpers import skip_or_fail
from tests.pure.test_web_tls import setup


def test_fingerprint_is_what_browsers_show(tmp_path):
    inv, _ = setup(tmp_path)
    pem = load_secrets_issuing(inv, inv.host("test"))[WEB_CERT]
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem,
                         capture_output=True, text=True)
    if out.returncode != 0:
        skip_or_fail("openssl not available")
    assert out.stdout.strip().split("=", 1)[1] == fingerprint(pem)


class _Plain(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f"plain {self.path}".encode())

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("tls", [True, False])
def test_web_get_follows_the_listener_while_a_restart_is_pending(tmp_path, tls):
    """TLS just turned on (or off): until install-services restarts them, the services still speak the
    old scheme, and the waits of deploy-configs and install-services must still reach them."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inv, _ = setup(tmp_path)
        host = inv.host("test" if tls else "plain")
        script = f"{web_get_fn(host)}\nweb_get {server.server_port} /-/healthy -sS -m 3"
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        assert (out.returncode, out.stdout) == (0, "plain /-/healthy")
    finally:
        server.shutdown()


def test_api_clients_trust_the_web_ca_even_with_a_ca_bundle_in_the_environment(tmp_path, monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE override a session's `verify`: the clients pass theirs per request.
    A certificate from another CA is one clear line, not 'connection failed'."""
    import ssl

    from fabfile.alerting.api import ApiError, local_apis
    from fabfile.config import pki

    good = pki.issue(tmp_path / "ours", "ours", "srv", ["127.0.0.1"])
    (tmp_path / "srv.crt").write_text(good.cert)
    (tmp_path / "srv.key").write_text(good.key)
    (tmp_path / "ca.crt").write_text(good.ca_cert)
    other = pki.issue(tmp_path / "theirs", "theirs", "srv", ["127.0.0.1"])
    (tmp_path / "other-ca.crt").write_text(other.ca_cert)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "other-ca.crt"))
    try:
        assert local_apis(url, url, ca_file=str(tmp_path / "ca.crt")).prometheus.request("GET", "/x").ok
        with pytest.raises(ApiError, match="TLS check failed"):
            local_apis(url, url, ca_file=str(tmp_path / "other-ca.crt")).prometheus.request("GET", "/x")
    finally:
        server.shutdown()
