"""The TLS material a host's files carry: its cluster's gossip certificates and its web UIs' certificates,
from the private CAs of pki.py kept beside the secrets file."""

from __future__ import annotations

from pathlib import Path

from fabfile.config.inventory import HostSettings, Inventory, InventoryError
from fabfile.config.needed_secrets import GOSSIP_CA, GOSSIP_CERT, GOSSIP_KEY, WEB_CA, WEB_CERT, WEB_KEY
from fabfile.config.pki import PKI_DIR, WEB_PKI_DIR, ca_cert, issue, member_tls

WEB_CA_NAME = "rosey web UIs CA"


class CertError(InventoryError):
    """The PKI folder beside the secrets file cannot be read or written. Bad input: the run stops (exit 2)."""


def web_pki_folder(inventory: Inventory, host: HostSettings) -> Path:
    """One web CA per secrets folder: hosts that share a secrets file share the CA."""
    return inventory.secrets_path(host).parent / WEB_PKI_DIR


def web_addresses(host: HostSettings) -> list[str]:
    """The names the host's UIs are reached by: loopback (the server's own checks, SSH tunnels), its
    address (a browser) and its peer address (the cluster's Prometheus servers)."""
    return list(dict.fromkeys(["127.0.0.1", "localhost", host.address, host.reached_by_peers]))


def web_material(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The host's web certificate and key (when its web.tls is on) and the CA bundle its clients trust:
    its own CA and every TLS peer's, once each."""
    folder = web_pki_folder(inventory, host)
    try:
        out: dict[str, str] = {}
        cas = []
        if host.web.tls:
            tls = issue(folder, WEB_CA_NAME, host.name, web_addresses(host))
            out.update({WEB_CERT: tls.cert, WEB_KEY: tls.key})
            cas.append(tls.ca_cert)
        for peer in host.cluster.peers if host.cluster else ():
            if peer.web_tls:
                cas.append(ca_cert(web_pki_folder(inventory, inventory.host(peer.name)), WEB_CA_NAME))
    except (OSError, ValueError) as e:
        raise CertError(f"{folder}: cannot make or read the web UIs' certificates "
                        f"({type(e).__name__}: {e}); check the folder's permissions or move it away to "
                        f"start a new CA") from None
    out[WEB_CA] = "".join(dict.fromkeys(cas))
    return out


def gossip_material(inventory: Inventory, host: HostSettings) -> dict[str, str]:
    """The member's gossip CA, certificate and key, from the cluster's PKI beside the secrets file."""
    assert host.cluster is not None
    folder = inventory.secrets_path(host).parent / PKI_DIR / host.cluster.name
    try:
        tls = member_tls(folder, host.cluster.name, host.name, host.reached_by_peers)
    except (OSError, ValueError) as e:
        raise CertError(f"{folder}: cannot make or read the gossip certificates of cluster "
                        f"{host.cluster.name!r} ({type(e).__name__}: {e}); check the folder's permissions "
                        f"or move it away to start a new CA") from None
    return {GOSSIP_CA: tls.ca_cert, GOSSIP_CERT: tls.cert, GOSSIP_KEY: tls.key}
