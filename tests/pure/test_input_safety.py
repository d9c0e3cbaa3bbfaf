"""Issue 9 §2: inventory values that reach a root shell, a unit file or a config are validated with
full-string matching and quoted/escaped where they are used: a value can neither run a command nor end
a line early."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: "smtp.example.com:587"}
hosts:
  test: {address: t.invalid}
"""
SECRETS = {"web_password": "pw", "smtp_password": "s"}


def load(tmp_path: Path, text: str = BASE):
    p = tmp_path / "hosts.yml"
    p.write_text(text)
    return load_inventory(p)


def error_of(tmp_path: Path, host_yaml: str) -> str:
    """The one-line error for host `test` with `host_yaml` (block YAML under the host) added."""
    text = BASE.replace("  test: {address: t.invalid}\n", "  test:\n    address: t.invalid\n" + host_yaml)
    with pytest.raises(InventoryError) as e:
        load(tmp_path, text)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize(("yaml_text", "field"), [
    ('    prometheus: {retention_size: "10GB\\n"}\n', "prometheus.retention_size"),
    ('    prometheus: {retention_time: "15d\\n"}\n', "prometheus.retention_time"),
    ('    web: {username: "admin\\n"}\n', "web.username"),
    ('    ssh: {user: "rosey\\n"}\n', "ssh.user"),
    ('    business_hours: {start: "09:00\\n"}\n', "business_hours.start"),
    ('    receivers: {email: {smarthost: "smtp.example.com:587\\n"}}\n', "receivers.email.smarthost"),
    ('    receivers: {email: {from: "am@example.com\\n"}}\n', "receivers.email.from"),
    ('    env: "test\\n"\n', "env"),
])
def test_a_trailing_newline_is_refused_everywhere(tmp_path: Path, yaml_text: str, field: str) -> None:
    assert f"hosts.test.{field}:" in error_of(tmp_path, yaml_text)


def test_address_must_be_a_host_name_or_ip(tmp_path: Path) -> None:
    text = BASE.replace("{address: t.invalid}", '{address: "t.invalid; touch /tmp/x"}')
    with pytest.raises(InventoryError, match=r"hosts\.test\.address: expected a host name or IP"):
        load(tmp_path, text)


@pytest.mark.parametrize(("base_dir", "why"), [
    ("\"/opt/x';touch /tmp/PWNED;'\"", "absolute path of letters"),
    ('"/opt/x\\nExecStartPre=+/bin/sh"', "absolute path of letters"),
    ('"/opt/with space"', "absolute path of letters"),
    ("opt/rosey", "absolute path of letters"),
    ("/opt/rosey/../../etc", "normal form: '/etc'"),
    ("/opt/rosey/", "normal form: '/opt/rosey'"),
    ("/tmp", "system or shared directory"),
    ("/proc/rosey", "system or shared directory"),
    ("/var/tmp", "system or shared directory"),
    ("/", "system or shared directory"),
    ("/usr", "system or shared directory"),
    ("/etc", "system or shared directory"),
])
def test_base_dir_is_an_absolute_normal_safe_own_directory(tmp_path: Path, base_dir: str, why: str) -> None:
    msg = error_of(tmp_path, f"    base_dir: {base_dir}\n")
    assert "hosts.test.base_dir:" in msg and why in msg


def test_a_sound_base_dir_is_accepted(tmp_path: Path) -> None:
    text = BASE.replace("{address: t.invalid}", "{address: t.invalid, base_dir: /srv/rosey-mon_1.0}")
    assert load(tmp_path, text).host("test").base_dir == "/srv/rosey-mon_1.0"


@pytest.mark.parametrize("peer", ['"10.0.0.2\\nExecStartPre=+/bin/sh"', '"10.0.0.2 "', "peer.example.com",
                                  '"10.0.0.2:9094"'])
def test_peer_address_is_an_ip(tmp_path: Path, peer: str) -> None:
    msg = error_of(tmp_path, f"    peer_address: {peer}\n")
    assert "hosts.test.peer_address: expected an IP address" in msg


@pytest.mark.parametrize("url", ["https://example.com/{version.__class__}", "https://example.com/{arch}/{version}",
                                 "https://example.com/{0}", "https://example.com/{version",
                                 "https://example.com/v{version} ; rm", "https://example.com/$(id)/{version}"])
def test_release_url_only_takes_the_version_placeholder(tmp_path: Path, url: str) -> None:
    msg = error_of(tmp_path, f"    prometheus: {{release_url: {url!r}}}\n")
    assert "hosts.test.prometheus.release_url:" in msg


def test_release_url_with_version_is_accepted(tmp_path: Path) -> None:
    text = BASE.replace("{address: t.invalid}",
                        "{address: t.invalid, prometheus: {release_url: 'https://10.0.2.2:8089/p/v{version}'}}")
    assert load(tmp_path, text).host("test").prometheus.url() == "https://10.0.2.2:8089/p/v2.48.0"


def test_plain_http_downloads_need_a_pinned_checksum(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "    alertmanager: {release_url: 'http://mirror.example.com/am/v{version}'}\n")
    assert msg.endswith("hosts.test.alertmanager.release_url: plain http:// without a pinned sha256: the "
                        "checksum file would come from the same unauthenticated source; use https:// or pin "
                        "alertmanager.sha256")
    url = "'http://mirror.example.com/am/v{version}'"
    pinned = f"    alertmanager: {{release_url: {url}, sha256: {'a' * 64}}}\n"
    local = "    alertmanager: {release_url: 'http://127.0.0.1:8089/am/v{version}'}\n"
    for ok in (pinned, local):
        text = BASE.replace("  test: {address: t.invalid}\n", "  test:\n    address: t.invalid\n" + ok)
        assert load(tmp_path, text).host("test").alertmanager.release_url.startswith("http://")


@pytest.mark.parametrize("value", ["0", "-5", "601", "99999999999"])
def test_connect_timeout_must_be_within_its_bounds(tmp_path: Path, value: str) -> None:
    assert "hosts.test.ssh.connect_timeout: expected 1 to 600 seconds" in \
        error_of(tmp_path, f"    ssh: {{connect_timeout: {value}}}\n")


# ---- quoting at the place of use: even a value that slipped past validation stays one argument


def _exec_start(unit: str) -> str:
    """The ExecStart setting with its continuation lines joined, as systemd reads it."""
    text = unit.replace("\\\n", " ")
    lines = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1
    return lines[0]


def test_an_unvalidated_flag_value_cannot_end_the_exec_line(tmp_path: Path) -> None:
    inv = load(tmp_path)
    host = inv.host("test")
    evil = dataclasses.replace(host, prometheus=dataclasses.replace(
        host.prometheus, retention_size="1GB\nExecStartPre=+/bin/touch /tmp/PWNED %h $HOME"))
    unit = render.render_host(inv, evil, SECRETS).files["prometheus.service"]
    assert not any(line.startswith("ExecStartPre") for line in unit.splitlines())
    exec_start = _exec_start(unit)
    assert "--web.config.file=/opt/rosey-bot/monitoring/web.yml" in exec_start
    quoted = '"--storage.tsdb.retention.size=1GB\\nExecStartPre=+/bin/touch /tmp/PWNED %%h $$HOME"'
    assert quoted in exec_start


def test_plain_flags_are_written_unquoted(tmp_path: Path) -> None:
    inv = load(tmp_path)
    unit = render.render_host(inv, inv.host("test"), SECRETS).files["alertmanager.service"]
    assert "--cluster.listen-address=\n" in unit
    assert '"' not in _exec_start(unit)


def test_unit_paths_refuse_what_systemd_cannot_quote() -> None:
    with pytest.raises(ValueError, match="unsafe path"):
        render.unit_path("/opt/x y")
