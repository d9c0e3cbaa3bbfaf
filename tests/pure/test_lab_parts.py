"""Lab pieces that need no VM: apt sources derivation, the stand-in bot's state and metrics (seconds)."""

from __future__ import annotations

import importlib
import json
import sys
import time

import pytest

from fabfile.lab import aptsrc, paths, privnet


def test_deb822_sources_give_the_mirror_and_skip_disabled_entries():
    text = (
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://other.invalid/debian\nSuites: trixie\nEnabled: no\n"
    )
    sources = aptsrc._parse_deb822(text)
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://mirror.invalid/debian", ("bookworm", "bookworm-updates"))
    ]


def test_one_line_sources_are_parsed():
    text = "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://m.invalid/debian bookworm main contrib\n"
    (source,) = aptsrc._parse_one_line(text)
    assert (source.uri, source.suites, source.components, source.signed_by) == (
        "http://m.invalid/debian", ("bookworm",), ("main", "contrib"), "/k.gpg",
    )  # fmt: skip


@pytest.fixture
def bot_lib(monkeypatch):
    monkeypatch.syspath_prepend(str(paths.GUEST_DIR / "rosey-bot"))
    for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
        monkeypatch.delitem(sys.modules, name)
    yield importlib.import_module("lib.state"), importlib.import_module("lib.server")
    for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
        monkeypatch.delitem(sys.modules, name)


def test_bot_counters_follow_the_steering_file(bot_lib, tmp_path):
    state_mod, server = bot_lib
    state_file = tmp_path / "state.json"
    bot = state_mod.BotState(str(state_file), "lab")
    first = bot.snapshot()
    assert server.health_status(first) == "healthy" and first["connected"] is True
    state_file.write_text(json.dumps({"connected": False, "users": 9, "error_rate": 100}))
    bot.snapshot()
    time.sleep(0.2)
    later = bot.snapshot()
    assert later["errors_total"] >= 15 and later["users"] == 9
    assert server.health_status(later) == "unhealthy"
    metrics = server.render_metrics(later)
    names = [line.split()[0] for line in metrics.splitlines() if not line.startswith("#")]
    assert names == [
        "bot_connected", "bot_uptime_seconds", "bot_users", "bot_requests_total", "bot_errors_total",
    ]  # fmt: skip
    assert "bot_connected 0" in metrics and "{" not in metrics
    state_file.unlink()
    reset = bot.snapshot()
    assert reset["connected"] is True and reset["errors_total"] >= later["errors_total"]


def _hosts(**links):
    """Lab hosts `name -> (private_address, private_peer)` as the inventory would build them."""
    from types import SimpleNamespace

    return {n: SimpleNamespace(lab=SimpleNamespace(private_address=a, private_peer=p)) for n, (a, p) in
            links.items()}


def test_private_links_must_name_each_other_and_share_a_subnet():
    good = _hosts(lab=("192.168.77.11", "lab2"), lab2=("192.168.77.12", "lab"), solo=(None, None))
    privnet.check_links(good)
    bad = {
        "is not a lab host": _hosts(lab=("192.168.77.11", "nope")),
        "must name lab back": _hosts(lab=("192.168.77.11", "lab2"), lab2=("192.168.77.12", None)),
        "already lab's": _hosts(lab=("192.168.77.11", None), lab2=("192.168.77.11", None)),
        "share one /24": _hosts(lab=("192.168.77.11", "lab2"), lab2=("192.168.78.12", "lab")),
        "on both ends": _hosts(lab=("192.168.77.11", "lab2"), lab2=(None, "lab")),
    }
    for message, hosts in bad.items():
        with pytest.raises(ValueError, match=message):
            privnet.check_links(hosts)


def test_private_nic_gets_a_mac_per_address_and_a_networkd_file():
    assert privnet.mac_for("192.168.77.11") == "52:54:00:a8:4d:0b"
    assert privnet.mac_for("192.168.77.12") != privnet.mac_for("192.168.77.11")
    assert privnet.mac_for("192.168.77.11") != privnet.USER_NIC_MAC
    text = privnet.network_file("192.168.77.11")
    assert "Address=192.168.77.11/24" in text and "MACAddress=52:54:00:a8:4d:0b" in text
    assert f"Path=pci-0000:00:{privnet.PCI_SLOT:02x}.0" in text
    image_nic = (paths.GUEST_DIR / "10-en.network").read_text()
    assert f"MACAddress={privnet.USER_NIC_MAC}" in image_nic  # the DHCP file never matches the private NIC


def test_inventory_lab_hosts_are_wired_to_each_other():
    from fabfile.config import inventory, settings
    from fabfile.config.inventory import load_inventory
    from fabfile.config.inventory_error import InventoryError

    inv = load_inventory(None)
    privnet.check_links(inv.hosts)
    lab, lab2 = inv.host("lab").lab, inv.host("lab2").lab
    assert (lab.private_peer, lab2.private_peer) == ("lab2", "lab")
    assert lab.mail_port == lab2.mail_port  # one catcher for both
    assert 9094 in lab.forwards and 9094 in lab2.forwards
    with pytest.raises(InventoryError, match="private_address: expected a private IPv4"):
        inventory._build(settings.LabVMSettings, {"private_address": "8.8.8.8"}, "hosts.yml",
                         "hosts.lab.lab_vm")


def test_a_lone_vm_sends_its_private_frames_to_a_socket_nobody_binds(tmp_path):
    """QEMU refuses a unix dgram netdev without a remote; a lone VM (lab3) gets one in its own run dir that
    nothing binds, while a linked VM sends to its peer's."""
    from types import SimpleNamespace

    lone = ",".join(privnet.qemu_args(SimpleNamespace(private_address=None), tmp_path / "a", None))
    assert f"local.path={tmp_path / 'a' / privnet.SOCKET_NAME}" in lone
    assert f"remote.path={tmp_path / 'a' / privnet.NO_PEER_SOCKET}" in lone
    assert privnet.NO_PEER_SOCKET != privnet.SOCKET_NAME
    linked = ",".join(privnet.qemu_args(SimpleNamespace(private_address="192.168.77.11"), tmp_path / "a",
                                        tmp_path / "b"))
    assert f"remote.path={tmp_path / 'b' / privnet.SOCKET_NAME}" in linked


def test_each_lab_host_names_its_debian_release_and_each_release_has_its_own_image(monkeypatch):
    from types import SimpleNamespace

    from fabfile.config import inventory, settings
    from fabfile.config.inventory_error import InventoryError
    from fabfile.lab import image

    assert inventory._build(settings.LabVMSettings, {}, "hosts.yml", "hosts.lab.lab_vm").release == "bookworm"
    assert inventory._build(settings.LabVMSettings, {"release": "trixie"}, "hosts.yml",
                            "hosts.lab.lab_vm").release == "trixie"
    with pytest.raises(InventoryError, match=r"hosts\.lab\.lab_vm\.release: expected bookworm or trixie, got "
                                             r"'buster'"):
        inventory._build(settings.LabVMSettings, {"release": "buster"}, "hosts.yml", "hosts.lab.lab_vm")

    def inv(*releases):
        hosts = {f"h{i}": SimpleNamespace(lab=SimpleNamespace(release=r)) for i, r in enumerate(releases)}
        return SimpleNamespace(hosts={**hosts, "prod": SimpleNamespace(lab=None)})

    assert image.releases_of(inv()) == ["bookworm"]  # the default image is always built
    assert image.releases_of(inv("trixie", "trixie")) == ["bookworm", "trixie"]
    # one image folder per release; a folder from before releases were named is bookworm's
    monkeypatch.setattr(image, "recipe_key", lambda release: f"key-of-{release}")  # no key files read
    assert image.current("trixie").directory.name == "trixie-key-of-trixie"
    assert image.current("trixie").release == "trixie"
    assert [image._release_of(n) for n in ("dc13a5e7bacc177b", "bookworm-1", "trixie-2")] == [
        "bookworm", "bookworm", "trixie"]
    assert set(image.SOURCES) == set(image.RELEASES)


def test_a_record_still_being_written_is_not_read_and_a_cleared_one_is_skipped(tmp_path, monkeypatch):
    """The catchers write `.<name>` and rename it into place; stop 37's CI7 read a hook catcher's dot file
    just before its rename (FileNotFoundError in the rule proofs)."""
    from fabfile.lab import hooks, mailbox

    record = {"channel": "slack", "token": "t", "status": 200, "accepted": True, "problems": [], "body": "{}"}
    (tmp_path / "0001-0001-slack.json").write_text(json.dumps(record))
    (tmp_path / ".0002-0002-slack.json").write_text('{"chan')  # half written, not renamed yet
    assert [h.name for h in hooks.read_spool(tmp_path)] == ["0001-0001-slack.json"]
    real_glob = type(tmp_path).glob
    monkeypatch.setattr(type(tmp_path), "glob", lambda self, pattern: [*real_glob(self, pattern),
                                                                       self / "0003-0003-gone.json"])
    assert [h.name for h in hooks.read_spool(tmp_path)] == ["0001-0001-slack.json"]  # cleared meanwhile
    monkeypatch.undo()
    monkeypatch.setattr(mailbox, "spool", lambda port: tmp_path)
    (tmp_path / "0001-0001.eml").write_bytes(b"Subject: a\r\n\r\nx")
    (tmp_path / ".0002-0002.eml").write_bytes(b"Subj")
    assert [n for n, _ in mailbox.read_all(2526)] == ["0001-0001.eml"]
    mailbox.clear(2526)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".eml") == [".0002-0002.eml"]
