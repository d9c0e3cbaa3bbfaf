"""ufw in the guest filters the forwarded ports for real, and allowing SSH first keeps SSH working."""

from __future__ import annotations

import urllib.request

import pytest

pytestmark = pytest.mark.lab


def test_ufw_keeps_ssh_and_blocks_a_port_it_does_not_allow(lab_host):
    bot = lab_host.url(8001, "/api/health")
    with urllib.request.urlopen(bot, timeout=10) as resp:
        assert resp.status == 200
    lab_host.run("sudo ufw allow 22/tcp && sudo ufw --force enable")
    assert lab_host.run("sudo ufw status").stdout.startswith("Status: active")
    assert lab_host.run("id -un").stdout.strip() == "rosey"  # a new SSH connection still gets in
    with pytest.raises(OSError):  # blocked ports time out (slirp accepts, the guest drops): short timeout
        urllib.request.urlopen(bot, timeout=3).read()
    assert lab_host.run("curl -sf localhost:8001/api/health", check=False).ok  # the bot itself still runs
