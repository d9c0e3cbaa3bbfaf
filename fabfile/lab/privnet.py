"""The private link between two lab VMs: a second NIC joined by unix datagram sockets, no root, no bridge.

Each VM binds `<run dir>/link.sock` and sends its frames to its peer's socket (QEMU's `-netdev dgram`).
No connection and no start order: a frame sent while the peer is down is dropped, and the link works
from the moment both run. The NIC is part of every lab VM (a saved state restores only onto the same
devices), so one golden snapshot serves all hosts; its MAC and address are per host and set in the guest
after the restore, as a systemd-networkd file on the run disk, so a reboot keeps them.
"""

from __future__ import annotations

import ipaddress
import shlex
from pathlib import Path
from typing import Any

PREFIX = 24
PCI_SLOT = 8  # fixed, so the guest matches the NIC by its PCI path (00:08.0) whatever its MAC
USER_NIC_MAC = "52:54:00:12:34:56"  # the user-mode NIC; the image's 10-en.network matches this MAC
NETWORK_FILE = "/etc/systemd/network/20-private.network"
SOCKET_NAME = "link.sock"


def mac_for(address: str | None) -> str:
    """A MAC unique per private address (52:54:00 + its last three octets); unaddressed NICs share one."""
    if address is None:
        return "52:54:00:77:00:00"
    octets = ipaddress.IPv4Address(address).packed[1:]
    return "52:54:00:" + ":".join(f"{b:02x}" for b in octets)


NO_PEER_SOCKET = "no-peer.sock"  # never bound: a lone VM's frames go nowhere, as to a peer that is down


def qemu_args(lab: Any, run_dir: Path, peer_run_dir: Path | None) -> list[str]:
    """`-netdev dgram` on this VM's socket, sending to the peer's. QEMU needs a remote for a unix dgram
    netdev, so a VM without a peer sends to a socket nobody binds: its frames are dropped, exactly as a
    linked VM's are while its peer is down."""
    remote = run_dir / NO_PEER_SOCKET if peer_run_dir is None else peer_run_dir / SOCKET_NAME
    netdev = (f"dgram,id=net1,local.type=unix,local.path={run_dir / SOCKET_NAME}"
              f",remote.type=unix,remote.path={remote}")
    device = f"virtio-net-pci,netdev=net1,mac={mac_for(lab.private_address)},addr={PCI_SLOT:#x}"
    return ["-netdev", netdev, "-device", device]


def network_file(address: str) -> str:
    """systemd-networkd config of the private NIC: static address, this host's MAC, IPv4 only."""
    return (
        f"[Match]\nPath=pci-0000:00:{PCI_SLOT:02x}.0*\n\n"
        f"[Link]\nMACAddress={mac_for(address)}\n\n"
        f"[Network]\nAddress={address}/{PREFIX}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        "ConfigureWithoutCarrier=yes\n"
    )


def apply_script(address: str, wait_seconds: float = 15) -> str:
    """Guest shell (rosey + sudo): install the file from stdin if it differs, reload, wait for the address."""
    f = shlex.quote(NETWORK_FILE)
    tries = int(wait_seconds / 0.1)
    return (
        f"set -e; t=$(mktemp); cat > $t; "
        f"if ! sudo -n cmp -s $t {f}; then sudo -n install -m 0644 $t {f}; sudo -n networkctl reload; fi; "
        f"rm -f $t; for i in $(seq {tries}); do "
        f"ip -4 -o addr show | grep -q ' {address}/{PREFIX} ' && exit 0; sleep 0.1; done; "
        f"echo 'private address {address} not assigned' >&2; ip -o link >&2; exit 1"
    )


def check_links(hosts: dict[str, Any], where: str = "hosts.yml") -> None:
    """Peers must be lab hosts naming each other, addresses distinct and in one /24; else ValueError."""
    labs = {n: h for n, h in hosts.items() if getattr(h, "lab", None) is not None}
    seen: dict[str, str] = {}
    for name, host in labs.items():
        lab = host.lab
        field = f"{where}: hosts.{name}.lab_vm"
        if lab.private_address:
            if lab.private_address in seen:
                raise ValueError(f"{field}.private_address: {lab.private_address} is already "
                                 f"{seen[lab.private_address]}'s; give each lab host its own")
            seen[lab.private_address] = name
        if lab.private_peer is None:
            continue
        peer = labs.get(lab.private_peer)
        if peer is None:
            raise ValueError(f"{field}.private_peer: {lab.private_peer!r} is not a lab host; "
                             f"name one of: {', '.join(n for n in labs if n != name)}")
        if peer.lab.private_peer != name:
            raise ValueError(f"{field}.private_peer: {lab.private_peer} must name {name} back "
                             f"(its private_peer is {peer.lab.private_peer!r}): a link has two ends")
        if not (lab.private_address and peer.lab.private_address):
            raise ValueError(f"{field}: a private_peer needs private_address on both ends")
        net = ipaddress.ip_network(f"{lab.private_address}/{PREFIX}", strict=False)
        if ipaddress.IPv4Address(peer.lab.private_address) not in net:
            raise ValueError(f"{field}.private_address: {lab.private_address} and {lab.private_peer}'s "
                             f"{peer.lab.private_address} must share one /{PREFIX}")
