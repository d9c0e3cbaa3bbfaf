"""Issue #30 (second review), findings 1, 5, 6 and 9: values the inventory took but meant something else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.config import validators
from fabfile.config.inventory import load_inventory
from fabfile.ssh.webauth import clear_text_warning
from tests.pure.test_inventory import BASE, error_of, with_host, write

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


# finding 5: YAML values are not changed behind the user's back

def host(item: str) -> str:
    """BASE whose host `test` also has `item` (a YAML flow item; it replaces env/address if it sets them)."""
    own = {"address": "address: t.invalid", "env": "env: test", "bot_port": "bot_port: 8001"}
    own[item.split(":")[0].split(".")[0]] = item
    flow = "{" + ", ".join(own.values()) + "}"
    return BASE.replace("{address: t.invalid, env: test, bot_port: 8001}", flow)


def nested(dotted: str, value: str) -> str:
    """`a.b.c` and a value -> the flow item `a: {b: {c: value}}`."""
    first, *rest = dotted.split(".")
    for part in reversed(rest):
        value = f"{{{part}: {value}}}"
    return f"{first}: {value}"


@pytest.mark.parametrize(("item", "expected"), [
    ("env: 010", 'hosts.test.env: write it in quotes, like "010" (YAML read an unquoted 010 as the '
                 "number 8)"),
    ("web: {username: 0x1F}", 'hosts.test.web.username: write it in quotes, like "0x1F" (YAML read an '
                              "unquoted 0x1F as the number 31)"),
    ("ssh: {port: 1:22}", "hosts.test.ssh.port: write the number in plain decimal digits (YAML 1.1 reads "
                          "1:22 as 82)"),
    ("address: 0x7f000001", 'hosts.test.address: write it in quotes, like "0x7f000001" (YAML read an '
                            "unquoted 0x7f000001 as the number 2130706433)"),
    ("lab_vm: {forwards: {22: 2222, '22': 2223}}", "hosts.test.lab_vm.forwards.22: names 22 a second time; "
                                                   "keep one"),
])
def test_yaml_conversions_are_refused_with_how_to_quote(tmp_path: Path, item: str, expected: str) -> None:
    assert error_of(tmp_path, host(item)) == f"hosts.yml: {expected}"


@pytest.mark.parametrize(("alias", "read_as"), [("~", "as null"), ("yes", "as true"), ("1", "1 as a number")])
def test_host_aliases_must_be_text(tmp_path: Path, alias: str, read_as: str) -> None:
    msg = error_of(tmp_path, BASE.replace("  test:", f"  {alias}:"))
    assert msg.startswith("hosts.yml: hosts: host alias ") and "write it in quotes" in msg and read_as in msg


def test_aliases_differing_only_by_type_cannot_both_pass(tmp_path: Path) -> None:
    msg = error_of(tmp_path, BASE + "  '1': {address: a.invalid}\n  1: {address: b.invalid}\n")
    assert "host alias 1 is not text" in msg


def test_merge_keys_work_and_own_keys_override(tmp_path: Path) -> None:
    text = BASE.replace("  test: {", "  test: &t {") + "  test2: {<<: *t, env: prod}\n"
    inv = load_inventory(write(tmp_path, text))
    assert (inv.host("test2").env, inv.host("test2").bot_port, inv.host("test").env) == ("prod", 8001, "test")
    assert "key 'env' appears twice" in error_of(tmp_path, text.replace("env: prod}", "env: prod, env: x}"))


TEXT_SETTINGS = ["env", "web.username", "ssh.user", "address", "prometheus.version", "base_dir",
                 "alertmanager.group_wait", "receivers.email.smarthost", "business_hours.timezone"]


@pytest.mark.parametrize("setting", TEXT_SETTINGS)
@pytest.mark.parametrize("value", ["12", "010", "0x1F", "1:22", "yes", "~", "1.5"])
def test_every_text_setting_refuses_what_yaml_did_not_read_as_text(tmp_path: Path, setting: str,
                                                                   value: str) -> None:
    msg = error_of(tmp_path, host(nested(setting, value)))
    assert msg.startswith(f"hosts.yml: hosts.test.{setting}: "), msg
    assert "in quotes" in msg or "expected" in msg, msg


# finding 6: every numeric check is ASCII-only

NUMERIC = {"bot_port": "'8{d}'", "ssh.port": "'2{d}'", "ssh.connect_timeout": "'1{d}'",
           "prometheus.port": "'9{d}'", "alertmanager.cluster_port": "'9{d}'",
           "firewall.open_ports": "['44{d}']", "prometheus.version": "2.4{d}.0",
           "prometheus.retention_time": "1{d}d", "prometheus.retention_size": "1{d}GB",
           "alertmanager.repeat_interval": "{d}h", "business_hours.start": "0{d}:00",
           "receivers.email.smarthost": "smtp.example.com:58{d}", "web.allow_from": "[10.0.0.0/{d}]"}


@pytest.mark.parametrize("digit", ["２", "٥", "²"])
@pytest.mark.parametrize("setting", list(NUMERIC))
def test_every_numeric_setting_refuses_non_ascii_digits(tmp_path: Path, setting: str, digit: str) -> None:
    msg = error_of(tmp_path, host(nested(setting, NUMERIC[setting].format(d=digit))))
    assert msg.startswith(f"hosts.yml: hosts.test.{setting}"), msg


@pytest.mark.parametrize("digit", ["２", "٥", "²"])
def test_validators_take_ascii_digits_only(digit: str) -> None:
    assert not validators.ascii_digits(f"1{digit}")
    assert validators.version(f"2.{digit}.0") and validators.duration(f"{digit}s")
    assert validators.size(f"{digit}GB") and validators.hhmm(f"{digit}9:00")
    assert validators.hostport(f"h:{digit}")
    assert validators.sources([f"10.0.0.{digit}/32"])


# finding 9: accepted but wrong

def test_email_null_is_an_error_not_an_empty_route(tmp_path: Path) -> None:
    msg = error_of(tmp_path, host("receivers: {email: null}"))
    assert msg.startswith("hosts.yml: hosts.test.receivers.email: cannot be null or off: email is where "
                          "every alert goes")


@pytest.mark.parametrize("email", ["{}", "{to: [ops@example.com]}",
                                   "{from: a@example.com, smarthost: 'h:25'}"])
def test_email_without_addresses_or_smarthost_is_an_error(tmp_path: Path, email: str) -> None:
    text = f"hosts:\n  test: {{address: t.invalid, receivers: {{email: {email}}}}}\n"
    assert "required setting is missing" in error_of(tmp_path, text)


@pytest.mark.parametrize("url", ["https://r.example/{version:x}", "https://r.example/{version!r}",
                                 "https://r.example/{version[0]}", "https://r.example/{}"])
def test_release_url_takes_only_a_plain_version_placeholder(tmp_path: Path, url: str) -> None:
    msg = error_of(tmp_path, host(f"prometheus: {{release_url: '{url}'}}"))
    assert msg == ("hosts.yml: hosts.test.prometheus.release_url: the only placeholder allowed is {version} "
                   "(write a literal brace as {{ or }})")


@pytest.mark.parametrize("base_dir", ["/home/rosey", "/etc/ssh", "/usr/local/lib/rosey-monitoring",
                                      "/data/mon"])
def test_base_dir_is_below_opt_srv_or_var_lib_unless_said_otherwise(tmp_path: Path, base_dir: str) -> None:
    msg = error_of(tmp_path, host(f"base_dir: {base_dir}"))
    assert msg.startswith(f"hosts.yml: hosts.test.base_dir: {base_dir} is not below /opt, /srv or /var/lib")
    assert "base_dir_outside_allowlist: true" in msg
    if base_dir != "/etc/ssh":
        ok = load_inventory(write(tmp_path, host(f"base_dir: {base_dir}, base_dir_outside_allowlist: true")))
        assert ok.host("test").base_dir == base_dir
    for fine in ("/opt/mon", "/srv/rosey/mon", "/var/lib/rosey-monitoring"):
        assert load_inventory(write(tmp_path, host(f"base_dir: {fine}"))).host("test").base_dir == fine


def test_a_system_directory_stays_refused_even_with_the_opt_in(tmp_path: Path) -> None:
    msg = error_of(tmp_path, host("base_dir: /etc, base_dir_outside_allowlist: true"))
    assert "system or shared directory" in msg


BOMB = ("{public: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol], "
        "tls: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a], username: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b], "
        "basic_auth: [*c, *c, *c, *c, *c, *c, *c, *c, *c]}")


def test_an_alias_bomb_gives_a_short_error_line(tmp_path: Path) -> None:
    msg = error_of(tmp_path, host(f"web: {BOMB}"))  # web.basic_auth: 6561 words, 50 kB as repr
    assert len(msg) < 320, len(msg)
    assert msg.startswith("hosts.yml: hosts.test.web.basic_auth: expected true or false, got [[[['lol'")


def test_every_inventory_error_line_is_capped() -> None:
    from fabfile.config.inventory_error import InventoryError, shown
    line = str(InventoryError("hosts.yml: x: expected y, got " + "a" * 1_000_000 + "; do z"))
    assert len(line) < 500 and line.startswith("hosts.yml: x: expected y") and line.endswith("; do z")
    assert len(shown(list(range(10**5)))) < 240


def test_firewall_gives_a_peer_its_own_rule_unless_allow_from_already_holds_it() -> None:
    from fabfile.deploy.ufw_plan import _allowed
    assert _allowed(("any",), "2001:db8::5") and _allowed(("0.0.0.0/0",), "10.0.0.2")
    assert not _allowed(("0.0.0.0/0",), "2001:db8::5"), "0.0.0.0/0 holds no IPv6 peer"
    assert not _allowed(("203.0.113.0/24",), "10.0.0.2") and _allowed(("10.0.0.0/8",), "10.0.0.2")
