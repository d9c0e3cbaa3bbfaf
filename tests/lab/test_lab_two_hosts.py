"""Two lab hosts at once (`lab` and `lab2`): own loopback ports, a private network between them.

A cold boot from the run disk that comes back on the private network is shown by the cluster's host-down test
(`test_lab_cluster.py`: the VM is powered off and booted, and the two Alertmanagers gossip again).
"""

from __future__ import annotations

import json
import shlex
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from fabfile.lab import privnet


def test_two_lab_hosts_run_side_by_side(lab_host, lab_host2):
    assert lab_host.vm.pid() != lab_host2.vm.pid()
    assert lab_host.settings.ssh.port != lab_host2.settings.ssh.port
    lab_host2.set_bot_state(users=42)
    for host, users in ((lab_host, 5), (lab_host2, 42)):
        assert host.run("systemctl is-system-running", check=False).stdout.strip() == "running"
        with urllib.request.urlopen(host.url(8001, "/api/health"), timeout=10) as resp:
            assert json.load(resp)["user_count"] == users


def _private_nic(host) -> dict:
    """The private NIC as the guest sees it: the link whose PCI slot is privnet.PCI_SLOT."""
    out = host.run("ip -j addr show").stdout
    nics = [n for n in json.loads(out) if n.get("link_type") == "ether"]
    paths = host.run(
        "for n in /sys/class/net/*; do echo \"${n##*/} $(readlink -f $n/device/..)\"; done"
    ).stdout.split("\n")
    slot = f"0000:00:{privnet.PCI_SLOT:02x}.0"
    name = next(line.split()[0] for line in paths if line.strip().endswith(slot))
    return next(n for n in nics if n["ifname"] == name)


def test_each_host_has_its_private_address_and_mac(lab_host, lab_host2):
    macs = set()
    for host in (lab_host, lab_host2):
        nic = _private_nic(host)
        addrs = [(a["local"], a["prefixlen"]) for a in nic["addr_info"] if a["family"] == "inet"]
        assert addrs == [(host.private_address, privnet.PREFIX)], nic
        assert nic["address"] == privnet.mac_for(host.private_address)
        assert "UP" in nic["flags"]
        macs.add(nic["address"])
    assert len(macs) == 2  # the golden snapshot gave both the same MAC; lab.up made them distinct


def _tcp_from(host, address: str, port: int, check: bool = True) -> str:
    code = (
        "import socket,sys\n"
        "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5)\n"
        "s.settimeout(5); print(s.recv(64).decode(errors='replace').strip() or 'connected')\n"
    )
    return host.run(f"python3 -c {shlex.quote(code)} {address} {port}", timeout=30,
                    check=check).stdout.strip()


# answers each connection with the address it came from: what the peer saw, not what the sender meant
_ECHO_PEER = ("import socket\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('0.0.0.0', 7777)); s.listen(4)\n"
              "while True:\n"
              "    c, a = s.accept(); c.sendall(a[0].encode()); c.close()\n")


def _seen_by(src, dst) -> str:
    """The client address `dst` sees for a TCP connection from `src` to its private address."""
    deadline = time.monotonic() + 20
    while True:  # the listener needs a moment to start
        seen = _tcp_from(src, dst.private_address, 7777, check=False)  # refused until it listens
        if seen or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def test_hosts_reach_each_other_over_the_private_network(lab_host, lab_host2):
    for src, dst in ((lab_host, lab_host2), (lab_host2, lab_host)):
        ping = src.run(f"sudo ping -c 3 -i 0.2 -W 2 {dst.private_address}", check=False)  # (13: no setuid)
        assert ping.ok and " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
        assert _tcp_from(src, dst.private_address, 22).startswith("SSH-2.0-")
        health = src.run(f"curl -sS --max-time 10 http://{dst.private_address}:8001/api/health").stdout
        assert json.loads(health)["status"] == "healthy"
        # the peer really saw the sender's private address (no NAT on the way)
        dst.run(f"sudo systemd-run --unit=peer-echo python3 -c {shlex.quote(_ECHO_PEER)}", check=True)
        try:
            assert _seen_by(src, dst) == src.private_address
        finally:
            dst.run("sudo systemctl stop peer-echo", check=False)


def test_private_link_sockets_are_unix_datagram_not_root_devices(lab_host):
    sock = lab_host.vm.dir / privnet.SOCKET_NAME
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError):
            probe.bind(str(sock))  # bound by the running QEMU
    finally:
        probe.close()
    cmdline = Path(f"/proc/{lab_host.vm.pid()}/cmdline").read_bytes().split(b"\0")
    assert not any(b"tap" in arg or b"bridge" in arg for arg in cmdline)
