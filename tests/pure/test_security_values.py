"""Issue #30 (second review), findings 1, 5, 6 and 9: values the inventory took but meant something else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.config import validators
from fabfile.config.inventory import load_inventory
from fabfile.ssh.webauth import clear_text_warning
from tests.pure.test_inventory import error_of, with_host, write

# finding 1: "reachable by anyone" is decided on the networks, not on the word `any`

def test_a_slash_zero_network_with_host_bits_is_an_input_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, with_host(web="{basic_auth: false, allow_from: [203.0.113.7/0]}"))
    assert msg == ("hosts.yml: hosts.test.web.allow_from: 203.0.113.7/0 has address bits set after its /0 "
                   "prefix; write 0.0.0.0/0 for the whole network or 203.0.113.7/32 for the one address")


def test_host_bits_in_any_network_are_an_input_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, with_host(web="{allow_from: [203.0.113.7/24]}"))
    assert "write 203.0.113.0/24 for the whole network or 203.0.113.7/32" in msg


@pytest.mark.parametrize("nets", ["[0.0.0.0/0]", "['::/0']", "[10.0.0.0/8, 0.0.0.0/0]", "[any]"])
def test_every_everyone_network_needs_basic_auth_or_public(tmp_path: Path, nets: str) -> None:
    msg = error_of(tmp_path, with_host(web=f"{{basic_auth: false, allow_from: {nets}}}"))
    assert "web.basic_auth: is false while web.allow_from includes " in msg
    host = load_inventory(write(tmp_path, with_host(web=f"{{allow_from: {nets}}}"))).host("test")
    assert clear_text_warning(host) is not None, "basic auth over HTTP to everyone is warned about"


@pytest.mark.parametrize("nets", [("203.0.113.0/24",), ("10.0.0.0/8", "2001:db8::/32"), ("192.0.2.1",)])
def test_narrow_networks_are_not_everyone(nets: tuple[str, ...]) -> None:
    assert validators.everyone_source(nets) is None


def test_clear_text_warning_names_the_everyone_network(tmp_path: Path) -> None:
    host = load_inventory(write(tmp_path, with_host(web="{allow_from: [0.0.0.0/0, '::/0']}"))).host("test")
    assert "web.allow_from includes 0.0.0.0/0;" in (clear_text_warning(host) or "")
    tls = dataclasses.replace(host, web=dataclasses.replace(host.web, tls=True))
    assert clear_text_warning(tls) is None
