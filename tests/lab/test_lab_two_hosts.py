"""Two lab hosts at once (`lab` and `lab2`), each on its own loopback ports; plus a reboot."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.lab


def test_two_lab_hosts_run_side_by_side(lab_host, lab_host2):
    assert lab_host.vm.pid() != lab_host2.vm.pid()
    assert lab_host.settings.ssh.port != lab_host2.settings.ssh.port
    lab_host2.set_bot_state(users=42)
    for host, users in ((lab_host, 5), (lab_host2, 42)):
        assert host.run("systemctl is-system-running", check=False).stdout.strip() == "running"
        with urllib.request.urlopen(host.url(8001, "/api/health"), timeout=10) as resp:
            assert json.load(resp)["user_count"] == users


def test_reboot_brings_the_host_back(lab_host2):
    before = lab_host2.run("cat /proc/sys/kernel/random/boot_id").stdout
    lab_host2.vm.reboot()
    assert lab_host2.run("cat /proc/sys/kernel/random/boot_id").stdout != before
    assert lab_host2.run("systemctl is-active rosey-bot smtp-catcher").stdout.split() == ["active", "active"]
