"""The per-cluster gossip PKI: made once, reused byte for byte, reissued only when it must be."""

from __future__ import annotations

import datetime as dt
import ssl
import stat

from cryptography import x509

from fabfile.config import pki as gossip_pki
from fabfile.config.pki import member_tls


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_a_member_gets_a_ca_signed_certificate_for_its_address_and_keys_stay_private(tmp_path) -> None:
    folder = tmp_path / "gossip-pki" / "rosey"
    tls = member_tls(folder, "rosey", "test", "10.0.0.1")
    cert, ca = _cert(tls.cert), _cert(tls.ca_cert)
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, cert.signature_algorithm_parameters)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert "PRIVATE KEY" in tls.key and tls.key not in repr(tls)
    for name in ("ca.key", "test.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # the pair really works as a TLS identity
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (tmp_path / "c.pem").write_text(tls.cert)
    (tmp_path / "k.pem").write_text(tls.key)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")


def test_a_second_run_reuses_everything_and_members_share_the_ca(tmp_path) -> None:
    folder = tmp_path / "rosey"
    first = member_tls(folder, "rosey", "test", "10.0.0.1")
    assert member_tls(folder, "rosey", "test", "10.0.0.1") == first  # byte-stable deploys
    other = member_tls(folder, "rosey", "prod", "10.0.0.2")
    assert other.ca_cert == first.ca_cert and other.cert != first.cert


def test_a_new_address_or_a_near_expiry_reissues_the_certificate(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "rosey"
    first = member_tls(folder, "rosey", "test", "10.0.0.1")
    moved = member_tls(folder, "rosey", "test", "10.0.0.9")
    assert moved.cert != first.cert and moved.ca_cert == first.ca_cert
    later = dt.datetime.now(dt.UTC) + gossip_pki.VALID_FOR - dt.timedelta(days=10)
    monkeypatch.setattr(gossip_pki, "_now", lambda: later)
    assert member_tls(folder, "rosey", "test", "10.0.0.9").cert != moved.cert


def test_another_clusters_ca_does_not_sign_this_one(tmp_path) -> None:
    a = member_tls(tmp_path / "a", "a", "test", "10.0.0.1")
    b = member_tls(tmp_path / "b", "b", "test", "10.0.0.1")
    assert _cert(a.ca_cert).public_key() != _cert(b.ca_cert).public_key()


def test_members_issued_at_once_all_get_the_one_ca_on_disk(tmp_path, monkeypatch) -> None:
    """Hosts deployed in parallel (threads here; two `inv` runs take the same file lock) issue at the same
    moment: the first makes the CA, the others wait and reuse it, so no certificate is left signed by a CA
    that lost the race. Key generation is slowed so every thread would find no CA without the lock."""
    import threading
    import time

    real = gossip_pki.ec.generate_private_key

    def slow(curve: object) -> object:
        time.sleep(0.05)
        return real(curve)

    monkeypatch.setattr(gossip_pki.ec, "generate_private_key", slow)
    folder = tmp_path / "rosey"
    start, out = threading.Barrier(6), {}

    def member(i: int) -> None:
        start.wait()
        out[i] = member_tls(folder, "rosey", f"m{i}", f"10.0.0.{i + 1}")

    threads = [threading.Thread(target=member, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ca = _cert((folder / "ca.crt").read_text())
    assert sorted(out) == list(range(6))
    for tls in out.values():
        assert _cert(tls.ca_cert) == ca
        c = _cert(tls.cert)
        ca.public_key().verify(c.signature, c.tbs_certificate_bytes, c.signature_algorithm_parameters)
