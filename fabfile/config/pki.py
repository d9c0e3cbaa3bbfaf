"""Small private CAs, made on this machine once and kept beside the secrets file (never in git, keys 0600).

Two uses: the gossip of a cluster (a CA per cluster, mutual TLS: only a holder of a member's key can join;
a certificate signed by any other CA is refused at the handshake) and the web UIs (a CA per secrets
folder; Prometheus, Alertmanager, `inv ui` and the tunnelled API clients trust it and nothing else).

Reissued only when needed, so deploys stay byte-stable: a certificate is made again when it is missing,
names other addresses, was signed by another CA, or has less than RENEW_BEFORE left.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PKI_DIR = "gossip-pki"  # next to the secrets file; one folder per cluster
WEB_PKI_DIR = "web-pki"  # next to the secrets file: the web UIs' CA and one certificate per host
VALID_FOR = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class MemberTLS:
    """What one TLS endpoint needs: the CA, its certificate and its key (PEM)."""

    ca_cert: str
    cert: str
    key: str = field(repr=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic, and never readable by others even for an instant."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """One writer per folder (two hosts deployed at once, two `inv` runs): else both could make a CA, and
    the certificate signed by the one that lost the race would be signed by no CA on disk."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(subject: x509.Name, issuer: x509.Name,
             key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    """What the CA and the members' certificates share: `key`'s public half, a fresh serial, valid from now
    for VALID_FOR."""
    now = _now()
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALID_FOR))


def _ca(folder: Path, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = folder / "ca.key", folder / "ca.crt"
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)
    return key, cert


def cert_file(folder: Path, name: str) -> Path:
    """Where `issue` keeps `name`'s certificate (its key sits beside it as <name>.key)."""
    return folder / f"{name}.crt"


def ca_cert(folder: Path, common_name: str) -> str:
    """The CA's certificate (PEM), made with its key when the folder has none yet."""
    with _folder_locked(folder):
        return _cert_pem(_ca(folder, common_name)[1]).decode()


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in sans.get_values_for_type(x509.IPAddress)] + sans.get_values_for_type(x509.DNSName)


def _why_not(cert: x509.Certificate, ca: x509.Certificate, names: list[str]) -> str | None:
    """Why `cert` must be made again (None: it is still good)."""
    if sorted(_sans(cert)) != sorted(names):
        return "names other addresses"
    if cert.issuer != ca.subject:
        return "signed by another CA"
    if cert.not_valid_after_utc - _now() <= RENEW_BEFORE:
        return f"expires within {RENEW_BEFORE.days} days"
    return None


def _still_good(cert: x509.Certificate, ca: x509.Certificate, names: list[str]) -> bool:
    return _why_not(cert, ca, names) is None


def read_ca(folder: Path) -> str | None:
    """The CA's certificate (PEM, as `ca_cert` and `issue` give it) when the folder has one; reads only
    (no lock, nothing made)."""
    try:
        return _cert_pem(x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())).decode()
    except FileNotFoundError:
        return None


def current(folder: Path, name: str, addresses: list[str]) -> MemberTLS | str:
    """What `issue` would return without making anything, or why it would make something (missing, other
    names, another CA, about to expire). Reads only: no folder, lock or file is created."""
    ca_pem = read_ca(folder)
    cert_path = cert_file(folder, name)
    key_path = cert_path.with_suffix(".key")
    if ca_pem is None or not (folder / "ca.key").exists():
        return "no CA yet"
    if not (cert_path.exists() and key_path.exists()):
        return "missing"
    cert_pem = cert_path.read_text()
    why = _why_not(x509.load_pem_x509_certificate(cert_pem.encode()),
                   x509.load_pem_x509_certificate(ca_pem.encode()), list(dict.fromkeys(addresses)))
    return why or MemberTLS(ca_pem, cert_pem, key_path.read_text())


def issue(folder: Path, ca_name: str, name: str, addresses: list[str]) -> MemberTLS:
    """`name`'s certificate for `addresses` (IPs and DNS names, each a SAN) and its key, signed by the
    folder's CA; made only when missing or no longer right. Server and client use (gossip is mutual)."""
    with _folder_locked(folder):
        return _issue(folder, ca_name, name, addresses)


def _issue(folder: Path, ca_name: str, name: str, addresses: list[str]) -> MemberTLS:
    ca_key, ca_cert = _ca(folder, ca_name)
    names = list(dict.fromkeys(addresses))
    cert_path = cert_file(folder, name)
    key_path = cert_path.with_suffix(".key")
    if key_path.exists() and cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _still_good(cert, ca_cert, names):
            return MemberTLS(_cert_pem(ca_cert).decode(), cert_path.read_text(), key_path.read_text())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_cert.subject, key)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)
    return MemberTLS(_cert_pem(ca_cert).decode(), _cert_pem(cert).decode(), _key_pem(key).decode())


def gossip_ca_name(cluster: str) -> str:
    return f"rosey gossip CA {cluster}"


def member_tls(folder: Path, cluster: str, member: str, address: str) -> MemberTLS:
    """A gossip member's certificate (IP SAN = `address`, the one its peers dial) and key."""
    return issue(folder, gossip_ca_name(cluster), member, [address])


def fingerprint(cert_pem: str) -> str:
    """SHA-256 fingerprint as browsers show it (AB:CD:...), to check a certificate warning against."""
    digest = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)
