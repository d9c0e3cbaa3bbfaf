"""The TLS material a host's files carry: its cluster's gossip certificates and its web UIs' certificates,
from the private CAs of pki.py kept beside the secrets file.

Reading never writes: `material(...)` returns what this machine already has and a PENDING placeholder for
what is missing or due (so `inv status`, `verify`, `inv render`, dry runs and the pre-flight make nothing,
and a dry run's diff shows the file changing). Only `material(..., issue=True)`, which the steps that install
the files call on a real run (deploy-configs, install-services, via `issue_pending`), makes a CA or a
certificate.
"""

from __future__ import annotations

from pathlib import Path

from fabfile.config import pki
from fabfile.config.inventory import HostSettings, Inventory, InventoryError
from fabfile.config.needed_secrets import (
    GOSSIP_CA,
    GOSSIP_CERT,
    GOSSIP_KEY,
    WEB_CA,
    WEB_CERT,
    WEB_KEY,
    required_secrets,
)

WEB_CA_NAME = "rosey web UIs CA"
PENDING = "# rosey: to be issued by a real deploy:"  # starts every placeholder line; the rest says what


class CertError(InventoryError):
    """The PKI folder beside the secrets file cannot be read or written. Bad input: the run stops (exit 2)."""


def placeholder(what: str) -> str:
    return f"{PENDING} {what}\n"


def is_pending(value: str) -> bool:
    """The value (or, for a CA bundle, part of it) is a placeholder for a certificate not made yet."""
    return PENDING in value


def pending(secrets: dict[str, str]) -> list[str]:
    """What the placeholders in `secrets` stand for, once each, in order."""
    notes = (line[len(PENDING):].strip() for v in secrets.values() for line in v.splitlines()
             if line.startswith(PENDING))
    return list(dict.fromkeys(notes))


def web_pki_folder(inventory: Inventory, host: HostSettings) -> Path:
    """One web CA per secrets folder: hosts that share a secrets file share the CA."""
    return inventory.secrets_path(host).parent / pki.WEB_PKI_DIR


def gossip_pki_folder(inventory: Inventory, host: HostSettings) -> Path:
    """One gossip CA per cluster, beside the secrets file."""
    assert host.cluster is not None
    return inventory.secrets_path(host).parent / pki.PKI_DIR / host.cluster.name


def web_addresses(host: HostSettings) -> list[str]:
    """The names the host's UIs are reached by: loopback (the server's own checks, SSH tunnels), its
    address (a browser) and its peer address (the cluster's Prometheus servers)."""
    return list(dict.fromkeys(["127.0.0.1", "localhost", host.address, host.reached_by_peers]))


def material(inventory: Inventory, host: HostSettings, *, issue: bool = False) -> dict[str, str]:
    """The gossip and web TLS files `host` needs (none when it uses neither). `issue`: make what is missing
    or due (writes beside the secrets file); else read only, with placeholders for it."""
    out: dict[str, str] = {}
    if host.cluster and host.cluster.gossip_tls:
        out.update(gossip_material(inventory, host, issue=issue))
    if WEB_CA in required_secrets(host):  # its own UIs speak HTTPS, or a peer's do
        out.update(web_material(inventory, host, issue=issue))
    return out


def issue_pending(inventory: Inventory, host: HostSettings, secrets: dict[str, str]) -> list[str]:
    """Make the certificates `secrets` holds placeholders for and put them in (in place); returns what they
    stood for. Nothing pending: nothing is written, not even a lock file."""
    notes = pending(secrets)
    if notes:
        secrets.update(material(inventory, host, issue=True))
    return notes


def _member(folder: Path, ca_name: str, name: str, addresses: list[str], issue: bool,
            what: str) -> pki.MemberTLS:
    if issue:
        return pki.issue(folder, ca_name, name, addresses)
    tls = pki.current(folder, name, addresses)
    if isinstance(tls, pki.MemberTLS):
        return tls
    note = placeholder(f"{what} ({tls})")
    return pki.MemberTLS(pki.read_ca(folder) or note, note, note)  # a CA already there stays


def web_material(inventory: Inventory, host: HostSettings, *, issue: bool = False) -> dict[str, str]:
    """The host's web certificate and key (when its web.tls is on) and the CA bundle its clients trust:
    its own CA and every TLS peer's, once each."""
    folder = web_pki_folder(inventory, host)
    try:
        out: dict[str, str] = {}
        cas = []
        if host.web.tls:
            tls = _member(folder, WEB_CA_NAME, host.name, web_addresses(host), issue,
                          f"web certificate of {host.name} in {folder}")
            out.update({WEB_CERT: tls.cert, WEB_KEY: tls.key})
            cas.append(tls.ca_cert)
        for peer in host.cluster.peers if host.cluster else ():
            if peer.web_tls:
                theirs = web_pki_folder(inventory, inventory.host(peer.name))
                cas.append(pki.ca_cert(theirs, WEB_CA_NAME) if issue else
                           pki.read_ca(theirs) or placeholder(f"web CA in {theirs}"))
    except (OSError, ValueError) as e:
        raise CertError(f"{folder}: cannot make or read the web UIs' certificates "
                        f"({type(e).__name__}: {e}); check the folder's permissions or move it away to "
                        f"start a new CA") from None
    out[WEB_CA] = "".join(dict.fromkeys(cas))
    return out


def gossip_material(inventory: Inventory, host: HostSettings, *, issue: bool = False) -> dict[str, str]:
    """The member's gossip CA, certificate and key, from the cluster's PKI beside the secrets file."""
    assert host.cluster is not None
    folder = gossip_pki_folder(inventory, host)
    try:
        tls = _member(folder, pki.gossip_ca_name(host.cluster.name), host.name, [host.reached_by_peers],
                      issue, f"gossip certificate of {host.name} in {folder}")
    except (OSError, ValueError) as e:
        raise CertError(f"{folder}: cannot make or read the gossip certificates of cluster "
                        f"{host.cluster.name!r} ({type(e).__name__}: {e}); check the folder's permissions "
                        f"or move it away to start a new CA") from None
    return {GOSSIP_CA: tls.ca_cert, GOSSIP_CERT: tls.cert, GOSSIP_KEY: tls.key}
