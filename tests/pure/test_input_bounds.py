"""Issue 30 §8: every number read (inventory, secrets, environment, flags) has bounds, and anything past them
is one line naming the field or flag, never a traceback (a 5000-digit integer made int() raise)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from fabfile.alerting.silences import SilenceError
from fabfile.alerting.silences import parse_duration as silence_duration
from fabfile.cli import FlagError, number_flag, seconds_flag
from fabfile.config import validators, yaml_file
from fabfile.config.inventory import load_inventory
from fabfile.config.receivers import https_url
from fabfile.config.render_to_dir import OutDirError, render_to_dir
from fabfile.config.secrets import SecretsError, load_secrets
from fabfile.config.settings import YAML_KEYS, HostSettings
from fabfile.drill.scenarios.synthetic import chosen_alert
from fabfile.errors import UserError
from tests.pure.test_inventory import BASE, error_of, write
from tests.pure.test_security_values import host, nested

BIG = "1" * 5000  # past Python's 4300-digit int() limit


def _numeric_settings(cls: type = HostSettings, prefix: str = "") -> list[str]:
    """Every int (or tuple of ints) setting of the inventory, by its dotted YAML name: found, not listed,
    so a new numeric setting is under these tests the day it is added."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = args[0] if typing.get_origin(tp) in (typing.Union, type(int | None)) and args else tp
        name = prefix + YAML_KEYS.get(f.name, f.name)
        if dataclasses.is_dataclass(inner):
            out += _numeric_settings(inner, name + ".")
        elif inner is int or typing.get_args(inner) == (int, ...):
            out.append(name)
    return out


NUMERIC = _numeric_settings()


def test_the_numeric_settings_are_found() -> None:
    assert {"ssh.port", "ssh.connect_timeout", "bot_port", "firewall.open_ports", "lab_vm.memory_mb",
            "alertmanager.cluster_port"} <= set(NUMERIC)


@pytest.mark.parametrize("setting", NUMERIC)
@pytest.mark.parametrize("value", [BIG, f"'{BIG}'", "99999999999", "-1", "0"])
def test_every_numeric_setting_refuses_huge_negative_and_zero(tmp_path: Path, setting: str,
                                                              value: str) -> None:
    written = f"[{value}]" if setting.startswith("firewall.") else value
    msg = error_of(tmp_path, host(nested(setting, written)))
    assert msg.startswith(f"hosts.yml: hosts.test.{setting}"), msg
    assert len(msg) < 480 and BIG not in msg


def test_a_5000_digit_connect_timeout_names_the_field_and_its_bound(tmp_path: Path) -> None:
    """The review's input: a traceback from PyYAML's int() before; now the field and why."""
    msg = error_of(tmp_path, host(nested("ssh.connect_timeout", BIG)))
    assert msg == ("hosts.yml: hosts.test.ssh.connect_timeout: 5000 digits is more than any setting takes; "
                   "give the value its bound allows (README, the inventory table)")
    assert "expected 1 to 600 seconds, got 99999999999" in error_of(
        tmp_path, host(nested("ssh.connect_timeout", "99999999999")))


def test_a_5000_digit_number_where_text_is_wanted_says_quote_it(tmp_path: Path) -> None:
    msg = error_of(tmp_path, host(nested("ssh.key", BIG)))
    assert msg.startswith("hosts.yml: hosts.test.ssh.key: write it in quotes") and len(msg) <= 480


def test_yaml_keeps_a_long_integer_as_text_anywhere_in_the_file() -> None:
    doc = yaml_file.parse(f"a: {BIG}\nb: [{BIG}]\n12: 5\n")
    assert isinstance(doc["a"], yaml_file.LongNumber) and doc["a"].text == BIG and doc[12] == 5
    assert repr(doc["b"][0]) == "a 5000-digit number"


DURATIONS = ["prometheus.scrape_interval", "prometheus.evaluation_interval", "prometheus.retention_time",
             "alertmanager.group_wait", "alertmanager.group_interval", "alertmanager.repeat_interval",
             "alertmanager.resolve_timeout"]


@pytest.mark.parametrize("setting", DURATIONS)
@pytest.mark.parametrize("value", [BIG + "s", "99999999999999y", "101y"])
def test_every_duration_setting_has_an_upper_bound(tmp_path: Path, setting: str, value: str) -> None:
    msg = error_of(tmp_path, host(nested(setting, value)))
    assert msg.startswith(f"hosts.yml: hosts.test.{setting}: expected ") and BIG not in msg, msg


@pytest.mark.parametrize("setting", [d for d in DURATIONS if d != "alertmanager.group_wait"])
def test_a_zero_interval_is_refused(tmp_path: Path, setting: str) -> None:
    """Prometheus silently takes its default for a 0s scrape_interval; Alertmanager refuses to start."""
    assert "expected " in error_of(tmp_path, host(nested(setting, "0s")))


@pytest.mark.parametrize("value", ["99999999999999999999999EB", "9EB", "0GB", BIG + "GB"])
def test_retention_size_fits_prometheus_64_bit_bytes(tmp_path: Path, value: str) -> None:
    msg = error_of(tmp_path, host(nested("prometheus.retention_size", value)))
    assert msg.startswith("hosts.yml: hosts.test.prometheus.retention_size: expected a size ")
    assert BIG not in msg


def test_a_version_with_a_5000_digit_part_is_an_error_not_a_crash(tmp_path: Path) -> None:
    msg = error_of(tmp_path, host(nested("prometheus.version", f"'{BIG}.0.0'")))
    assert msg.startswith("hosts.yml: hosts.test.prometheus.version: expected a release version")


def test_networks_that_together_hold_everyone_are_everyone(tmp_path: Path) -> None:
    """Not only `any` and /0: two halves of the internet are the whole of it (the guard and the firewall
    plan ask the same function)."""
    assert validators.everyone_source(["0.0.0.0/1", "128.0.0.0/1"]) == \
        "0.0.0.0/1 + 128.0.0.0/1 (together every IPv4 address)"
    assert validators.everyone_source(["::/1", "8000::/1", "10.0.0.0/8"]).endswith("every IPv6 address)")
    assert validators.everyone_source(["0.0.0.0/1", "128.0.0.0/2"]) is None
    msg = error_of(tmp_path, host("web: {basic_auth: false, allow_from: [0.0.0.0/1, 128.0.0.0/1]}"))
    assert "hosts.test.web.basic_auth: is false while web.allow_from includes 0.0.0.0/1 + 128.0.0.0/1" in msg


# ---- secrets from the environment


@pytest.mark.parametrize("var", ["ROSEY_WEB_PASSWORD", "ROSEY_TEST_WEB_PASSWORD"])
def test_a_non_utf8_password_variable_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             var: str) -> None:
    """os.environ keeps undecodable bytes as lone surrogates; the first write of the value crashed."""
    monkeypatch.delenv("ROSEY_WEB_PASSWORD", raising=False)
    monkeypatch.setenv(var, "pass\udcffword-long")
    inv = load_inventory(write(tmp_path, BASE))
    with pytest.raises(SecretsError) as e:
        load_secrets(inv, inv.host("test"))
    assert str(e.value) == (f"{var} is not UTF-8 text; set it again from a UTF-8 terminal or file "
                            "(the value is not shown)")


def test_a_5000_digit_password_in_the_secrets_file_says_quote_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSEY_WEB_PASSWORD", raising=False)
    (tmp_path / "secrets.yml").write_text(f"web_password: {BIG}\n")
    inv = load_inventory(write(tmp_path, BASE.replace("t.invalid,", "t.invalid, secrets_file: secrets.yml,")))
    with pytest.raises(SecretsError, match=r"secrets.yml: web_password: expected text \(quote it\)$"):
        load_secrets(inv, inv.host("test"))


# ---- flags


@pytest.mark.parametrize("given", ["abc", "-5", BIG, "1.5", "٥", "101", " "])
def test_number_flags_refuse_what_invoke_would_crash_on(given: str) -> None:
    if given.strip() == "":
        assert number_flag("--parallel", given, 0, 100, "hosts at once") == 0
        return
    with pytest.raises(FlagError) as e:
        number_flag("--parallel", given, 0, 100, "a number of hosts at once")
    msg = str(e.value)
    assert msg.startswith("--parallel ") and "expected a number of hosts at once, 1 to 100" in msg
    assert len(msg) < 160


@pytest.mark.parametrize(("flag", "given"), [("--watch", "-5"), ("--prometheus-port", "70000"),
                                             ("--alertmanager-port", "abc")])
def test_status_watch_and_ui_ports_are_checked(flag: str, given: str) -> None:
    with pytest.raises(FlagError, match=f"^{flag} '{given}': expected "):
        number_flag(flag, given, 0, 65535, "a local TCP port")


@pytest.mark.parametrize("given", [BIG, "1e300", "inf", "nan", "-1", "86401"])
def test_seconds_flags_have_an_upper_bound_and_a_short_line(given: str) -> None:
    with pytest.raises(FlagError) as e:
        seconds_flag("--timeout", given)
    assert "at most 86400" in str(e.value) and len(str(e.value)) < 160


@pytest.mark.parametrize("given", ["99999999999999999d", BIG + "s", "366d"])
def test_a_silence_is_at_most_a_year_and_the_line_is_short(given: str) -> None:
    with pytest.raises(SilenceError) as e:
        silence_duration(given)
    assert str(e.value).startswith("bad duration ") and len(str(e.value)) < 160


def test_render_onto_a_directory_where_a_file_goes_is_one_line(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-long-enough")
    inv = load_inventory(write(tmp_path, BASE))
    (tmp_path / "out" / "prometheus.yml").mkdir(parents=True)
    with pytest.raises(OutDirError, match=r"^--out .*/out: cannot write prometheus.yml \(Is a directory\); "):
        render_to_dir(inv, [inv.host("test")], tmp_path / "out")


@pytest.mark.parametrize("rules", [f"groups: [{{rules: [{{alert: BotDown, for: {BIG}}}]}}]\n",
                                   f"groups: [{{rules: [{{alert: BotDown, for: '{BIG}m'}}]}}]\n",
                                   "groups: [{rules: [{alert: BotDown, for: 5 minutes}]}]\n",
                                   "groups: rules\n"])
def test_a_malformed_rules_file_is_one_line_for_the_drill(tmp_path: Path, rules: str) -> None:
    from fabfile.config.rules_file import RulesFileError, load_rule

    (tmp_path / "r.yml").write_text(rules)
    with pytest.raises(RulesFileError) as e:
        load_rule("BotDown", tmp_path / "r.yml")
    assert "\n" not in str(e.value) and len(str(e.value)) < 480 and str(tmp_path) in str(e.value)


@pytest.mark.parametrize("given", ["x", "../../api/v2/status", BIG])
def test_unsilence_takes_only_silence_ids_and_says_so_before_contacting_a_host(tmp_path: Path,
                                                                               given: str) -> None:
    from fabfile.alerting.silences import cli_unsilence

    inv = load_inventory(write(tmp_path, BASE))
    with pytest.raises(SilenceError) as e:
        cli_unsilence(inv, [inv.host("test")], given)  # t.invalid: a connection attempt would fail this tier
    assert str(e.value).startswith("--id ") and "not a silence ID" in str(e.value) and len(str(e.value)) < 200


@pytest.mark.parametrize("url", ["https://u:pa55word@x.test/{version}", "https://token@x.test/{version}"])
def test_a_release_url_with_credentials_is_refused_without_showing_them(tmp_path: Path, url: str) -> None:
    """The URL is printed ("downloading ..."), sits in git and on the server's command line."""
    msg = error_of(tmp_path, host(nested("prometheus.release_url", f"'{url}'")))
    assert msg.startswith("hosts.yml: hosts.test.prometheus.release_url: has a user name or password in it")
    assert "pa55word" not in msg and "token" not in msg


@pytest.mark.parametrize("key", ["/nonexistent/id_ed25519", "DIR"])
def test_an_unusable_ssh_key_is_a_preflight_problem_before_any_connection(tmp_path: Path, key: str,
                                                                          monkeypatch) -> None:
    """paramiko reads the key only after the TCP connection; the pre-flight says it first, exit 2."""
    import io

    from fabfile.deploy import runner

    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-long-enough")
    key = str(tmp_path) if key == "DIR" else key
    inv = load_inventory(write(tmp_path, BASE.replace("t.invalid,", f"t.invalid, ssh: {{key: '{key}'}},")))
    out = io.StringIO()
    code = runner.run(inv, [inv.host("test")], [], stream=out)  # the real connector: it must not be reached
    assert code == 2
    assert f"error: hosts.test.ssh.key: {key}: " in out.getvalue()
    assert "remove ssh.key to use your ssh-agent" in out.getvalue()


@pytest.mark.parametrize(("url", "why"), [
    ("not-a-url-at-all", "is not an https:// URL"), ("https://h.test/a'b", "is not an https:// URL"),
    ("http://hooks.slack.test/T0/B0/x", "is plain http:// to a public host"),
    ("https://h.test:99999999999/x", "its host or port cannot be read"), ("ftp://hc.test/x1", "not an https://")])
def test_a_webhook_url_secret_must_be_a_url_and_https_off_the_private_network(url: str, why: str) -> None:
    assert why in (validators.secret_url(url) or "")


@pytest.mark.parametrize("url", ["https://hooks.slack.test/T0/B0/x", "http://10.0.2.2:8080/ping/abc",
                                 "http://127.0.0.1:9/hook"])
def test_https_and_private_http_webhooks_are_accepted(url: str) -> None:
    assert validators.secret_url(url) is None


def test_a_bad_webhook_secret_is_one_line_that_never_shows_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-long-enough")
    monkeypatch.setenv("ROSEY_SLACK_WEBHOOK_URL", "http://hooks.slack.test/T0/B0/s3cret-path")
    inv = load_inventory(write(tmp_path, BASE.replace("t.invalid,", "t.invalid, receivers: {slack: {}},")))
    with pytest.raises(SecretsError) as e:
        load_secrets(inv, inv.host("test"))
    assert str(e.value).startswith("secret 'slack_webhook_url' for host test: is plain http:// to a public")
    assert "s3cret" not in str(e.value)


@pytest.mark.parametrize(("item", "expected"), [
    ('receivers: {slack: {channel: "#x\\ny"}}', "receivers.slack.channel: expected a Slack channel"),
    ("receivers: {heartbeat: {repeat_interval: 0s}}", "receivers.heartbeat.repeat_interval: expected 10s "),
    (f"receivers: {{heartbeat: {{repeat_interval: {BIG}s}}}}", "receivers.heartbeat.repeat_interval: "),
])
def test_receiver_settings_are_bounded_too(tmp_path: Path, item: str, expected: str) -> None:
    assert f"hosts.test.{expected}" in error_of(tmp_path, host(item))


def test_yaml_nested_past_the_parser_s_depth_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    deep = "[" * 1000 + "]" * 1000  # past Python's default recursion limit (PyYAML recurses per level)
    msg = error_of(tmp_path, host(f"env: {deep}"))
    assert msg.startswith("hosts.yml: not valid YAML: lists or mappings are nested too deeply to read")
    with pytest.raises(yaml_file.TooDeep):
        yaml_file.parse(f"a: {deep}\n")


def test_an_empty_out_is_refused_not_the_current_directory() -> None:
    from fabfile.config.render_to_dir import out_dir

    with pytest.raises(OutDirError, match=r"^--out '': give the directory"):
        out_dir("  ")
    assert out_dir(".") == Path(".")  # said explicitly: that is where the user wants them


@pytest.mark.parametrize(("value", "named"),
                         [(BIG, "a 5000-digit number"), ("{a: 1}", "dict"), ("1.5", "float")])
def test_a_wrong_type_is_named_as_yaml_reads_it_never_by_our_class_names(tmp_path: Path, value: str,
                                                                       named: str) -> None:
    msg = error_of(tmp_path, f"default_hosts: {value}\n" + BASE)
    assert msg == f"hosts.yml: default_hosts: expected a list, got {named}"


@pytest.mark.parametrize(("fw", "expected"), [
    ("{open_ports: [9093]}", "firewall.open_ports[0]: 9093 is alertmanager.port (opened by web.allow_from)"),
    ("{open_ports: [9090]}", "firewall.open_ports[0]: 9090 is prometheus.port"),
    ("{open_ports: [9094]}", "firewall.open_ports[0]: 9094 is alertmanager.cluster_port"),
    ("{close_ports: [22]}", "firewall.close_ports[0]: 22 is ssh.port (always kept open)"),
    ("{open_ports: [443], close_ports: [443]}", "firewall.close_ports[0]: 443 is also in open_ports"),
])
def test_the_firewall_lists_cannot_bypass_allow_from_or_contradict_themselves(tmp_path: Path, fw: str,
                                                                             expected: str) -> None:
    """open_ports opens to everyone: the UI ports there would pass the public-UI guard by the side door."""
    narrow = "t.invalid, web: {basic_auth: false, allow_from: [10.0.0.0/8]},"
    msg = error_of(tmp_path, host(f"firewall: {fw}").replace("t.invalid,", narrow))
    assert f"hosts.test.{expected}" in msg


@pytest.mark.parametrize(("url", "why"), [
    ("https://h.test/" + "x" * 3000, "3015 characters long"),
    ("https://" + "s" * 300 + "/p", "longer than DNS"),
    ("https://user:pw@h.test/x", "user name or password")])
def test_one_https_rule_for_secrets_pagerduty_and_remote_write(url: str, why: str) -> None:
    """validators.secret_url (webhook secrets) and https_url (PagerDuty's url, remote_write) are one rule."""
    assert why in (validators.secret_url(url) or "")
    shown = https_url("https://e.test/x", "the key")(url) or ""
    assert why in shown and len(shown) < 400


@pytest.mark.parametrize(("alert", "severity", "start"), [
    ("A" * 5000, "", "--alert 'AAAA"), ("", "critical\nx", "--severity 'critical\\nx': unknown")])
def test_synthetic_drill_flags_are_one_short_line(alert: str, severity: str, start: str) -> None:
    with pytest.raises(UserError) as e:
        chosen_alert(alert, severity)
    assert str(e.value).startswith(start) and "\n" not in str(e.value) and len(str(e.value)) < 600
