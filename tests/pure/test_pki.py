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
