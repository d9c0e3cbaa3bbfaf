"""render_host: test vs prod, determinism, no secrets in files, version-dependent units, basic auth on/off."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
import yaml

from fabfile.config import layout, render
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.receivers import RECEIVER_TYPES
from fabfile.config.rules_file import RulesFileError
from fabfile.config.versions import at_least, parse_version

SECRETS = {"smtp_password": "smtp-Pa55-word", "web_password": "web-Pa55-word",
           "slack_webhook_url": "https://hooks.slack.example/T0/B0/slack-secret-path",
           "discord_webhook_url": "https://discord.example/api/webhooks/1/discord-secret-path",
           "webhook_url": "https://hooks.example/alert/webhook-secret-path",
           "pagerduty_routing_key": "pd-routing-key-secret", "teams_webhook_url": "https://teams.example/secret",
           "heartbeat_url": "https://hc-ping.example/heartbeat-secret-uuid"}

BASE = """\
defaults:
  receivers:
    email: {to: [ops@example.com, dev@example.com], from: am@example.com, smarthost: smtp.example.com:587,
            auth_username: am@example.com}
  business_hours: {weekdays: [monday:friday], start: "08:30", end: "18:00", timezone: Europe/Berlin}
hosts:
  test: {address: t.invalid, env: test, bot_port: 8001}
  prod: {address: p.invalid, env: production, bot_port: 8000}
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    p = tmp_path / "alert_rules.yml"
    p.write_text("groups: []\n")
    return p


def inventory(tmp_path: Path, extra: str = ""):
    p = tmp_path / "hosts.yml"
    p.write_text(BASE + extra)
    return load_inventory(p)


def render_alias(tmp_path: Path, rules: Path, alias: str, extra: str = "", secrets=None) -> render.Rendered:
    inv = inventory(tmp_path, extra)
    host = inv.host(alias)
    from fabfile.config.needed_secrets import required_secrets
    wanted = secrets or {k: SECRETS[k] for k in required_secrets(host)}
    return render.render_host(inv, host, wanted, rules_path=rules)


def test_exactly_the_seven_files(tmp_path: Path, rules: Path) -> None:
    r = render_alias(tmp_path, rules, "test")
    assert list(r.files) == ["prometheus.yml", "alert_rules.yml", "alertmanager.yml", "notifications.tmpl",
                             "web.yml", "prometheus.service", "alertmanager.service"]
    assert r.files["notifications.tmpl"] == render.NOTIFICATIONS_SOURCE.read_text()
    assert r.files["alert_rules.yml"] == rules.read_text()


def test_test_and_prod_differ_in_port_and_env_only(tmp_path: Path, rules: Path) -> None:
    t, p = (render_alias(tmp_path, rules, a) for a in ("test", "prod"))
    tp, pp = yaml.safe_load(t.files["prometheus.yml"]), yaml.safe_load(p.files["prometheus.yml"])
    bot_t, bot_p = tp["scrape_configs"][0], pp["scrape_configs"][0]
    assert bot_t["static_configs"] == [{"targets": ["localhost:8001"],
                                        "labels": {"env": "test", "host": "test"}}]
    assert bot_p["static_configs"] == [{"targets": ["localhost:8000"],
                                        "labels": {"env": "production", "host": "prod"}}]
    assert bot_p["job_name"] == "rosey-bot" and bot_p["metrics_path"] == "/api/metrics"
    # every job carries env, so routing (group_by env) and the inhibit rule's equal work for all alerts,
    # and host, so every message says which server
    for job in pp["scrape_configs"]:
        assert job["static_configs"][0]["labels"] == {"env": "production", "host": "prod"}
    assert [j["job_name"] for j in pp["scrape_configs"]] == ["rosey-bot", "prometheus", "alertmanager"]
    assert pp["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s",
                            "external_labels": {"cluster": "rosey-bot"}}
    assert pp["rule_files"] == ["alert_rules.yml"]
    # apart from the header comment naming the host, Alertmanager's config is the same on both
    strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert strip(t.files["alertmanager.yml"]) == strip(p.files["alertmanager.yml"])


def web_hash(rendered) -> str:
    return yaml.safe_load(rendered.files["web.yml"])["basic_auth_users"]["admin"]


def test_rendering_is_byte_identical_given_the_servers_hash(tmp_path: Path, rules: Path) -> None:
    a = render_alias(tmp_path, rules, "prod")
    inv = load_inventory(tmp_path / "hosts.yml")
    b = render.render_host(inv, inv.host("prod"), SECRETS, rules_path=rules, web_hash=web_hash(a))
    assert a.files == b.files


def test_a_render_not_deployed_skips_bcrypt_and_differs_only_in_the_hash(tmp_path: Path, rules: Path,
                                                                           monkeypatch) -> None:
    """Pre-flight, install-services, verify and the drill render only to read the units or the receivers:
    no bcrypt (its cost is on purpose), and everything but the hash is what a deploy renders."""
    inv = inventory(tmp_path, "")
    host = inv.host("test")
    from fabfile.config.needed_secrets import required_secrets
    wanted = {k: SECRETS[k] for k in required_secrets(host)}
    hashed = render.render_host(inv, host, wanted, rules_path=rules)

    def no_bcrypt(*a, **kw):
        raise AssertionError("bcrypt called")

    monkeypatch.setattr(render.bcrypt, "hashpw", no_bcrypt)
    monkeypatch.setattr(render.bcrypt, "checkpw", no_bcrypt)
    plain = render.render_host(inv, host, wanted, rules_path=rules, hash_password=False)
    assert render.current_web_hash(plain.files["web.yml"], "admin") == render.UNHASHED
    assert plain.files["web.yml"].replace(render.UNHASHED, web_hash(hashed)) == hashed.files["web.yml"]
    assert {k: v for k, v in plain.files.items() if k != "web.yml"} == \
        {k: v for k, v in hashed.files.items() if k != "web.yml"}
    assert render._env() is render._env()  # templates compiled once per process


def test_web_hash_has_a_random_salt_and_is_kept_while_the_password_matches(tmp_path: Path, rules: Path):
    first, again = render_alias(tmp_path, rules, "test"), render_alias(tmp_path, rules, "test")
    assert bcrypt.checkpw(SECRETS["web_password"].encode(), web_hash(first).encode())
    assert web_hash(first)[:29] != web_hash(again)[:29]  # "$2b$12$" + the 22-character salt: new each time
    kept = render.web_password_hash(SECRETS["web_password"], web_hash(first))
    assert kept == web_hash(first)
    replaced = render.web_password_hash("other-pass", web_hash(first))
    assert replaced != web_hash(first) and bcrypt.checkpw(b"other-pass", replaced.encode())
    assert bcrypt.checkpw(b"pw", render.web_password_hash("pw", "not a bcrypt hash").encode())
    assert render.current_web_hash(first.files["web.yml"], "admin") == web_hash(first)
    assert render.current_web_hash("", "admin") is None and render.current_web_hash("{", "admin") is None


def test_no_secret_value_in_any_file(tmp_path: Path, rules: Path) -> None:
    every = ", ".join(f"{t.name}: {{}}" for t in RECEIVER_TYPES)
    all_chats = f"alertmanager: {{version: 0.28.0}}, receivers: {{{every}}}"
    r = render_x(tmp_path, rules, all_chats)
    assert {s.name for s in r.secret_files} == set(SECRETS)
    for text in r.files.values():
        for value in SECRETS.values():
            assert value not in text
    for sf in r.secret_files:
        assert sf.content == SECRETS[sf.name] and sf.mode == 0o640
        assert sf.path == f"/opt/rosey-bot/monitoring/secrets/{sf.name}"
        assert SECRETS[sf.name] not in repr(sf)
    groups = {s.name: s.group for s in r.secret_files}
    assert groups["web_password"] == "prometheus" and groups["smtp_password"] == "alertmanager"


def test_alertmanager_routing_shape(tmp_path: Path, rules: Path) -> None:
    am = yaml.safe_load(render_alias(tmp_path, rules, "prod").files["alertmanager.yml"])
    route = am["route"]
    assert route["receiver"] == "email-default"
    assert route["group_by"] == ["alertname", "cluster", "env"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "10s", "3h")
    # last the info route; no catch-all after it (that one mailed every critical alert twice)
    assert route["routes"][-1] == {"matchers": ['severity="info"'], "receiver": "email-info",
                                   "active_time_intervals": ["business-hours"]}
    assert all(r["matchers"] for r in route["routes"])
    assert am["time_intervals"] == [{"name": "business-hours", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "08:30", "end_time": "18:00"}],
         "location": "Europe/Berlin"}]}]
    assert am["inhibit_rules"] == [{"source_matchers": ['alertname="BotDown"'],
                                    "target_matchers": ['component="bot"', 'alertname!="BotDown"'],
                                    "equal": ["cluster", "env"]}]
    g = am["global"]
    assert g["smtp_auth_password_file"] == "/opt/rosey-bot/monitoring/secrets/smtp_password"
    assert "smtp_auth_password" not in g
    # with no heartbeat configured the Watchdog goes first to a sink named as one (never mailed): an empty
    # receiver called "heartbeat" read as a channel left unconfigured (amlint's empty-receiver warning)
    assert route["routes"][0] == {"matchers": ['alertname="Watchdog"'], "receiver": "blackhole"}
    assert am["receivers"][-1] == {"name": "blackhole"}
    assert "heartbeat" not in {r["name"] for r in am["receivers"]}
    mail = [r for r in am["receivers"] if r["name"] != "blackhole"]
    subjects = {r["name"]: r["email_configs"][0]["headers"]["Subject"] for r in mail}
    assert subjects == {"email-default": "[Rosey Bot] {{ .GroupLabels.alertname }}",
                        "email-critical": "🚨 [CRITICAL] Rosey Bot: {{ .GroupLabels.alertname }}",
                        "email-info": "ℹ️ [INFO] Rosey Bot: {{ .GroupLabels.alertname }}"}
    for r in mail:
        assert r["email_configs"][0]["send_resolved"] is True
        assert r["email_configs"][0]["to"] == "ops@example.com, dev@example.com"


def test_no_smtp_auth_without_username(tmp_path: Path, rules: Path) -> None:
    text = BASE.replace("smtp.example.com:587,\n            auth_username: am@example.com}",
                        "smtp.example.com:587}")
    (tmp_path / "hosts.yml").write_text(text)
    inv = load_inventory(tmp_path / "hosts.yml")
    r = render.render_host(inv, inv.host("test"), {"web_password": "web-Pa55-word"}, rules_path=rules)
    assert "smtp_auth" not in r.files["alertmanager.yml"]
    assert [s.name for s in r.secret_files] == ["web_password"]


def test_basic_auth_on_and_off(tmp_path: Path, rules: Path) -> None:
    on = render_alias(tmp_path, rules, "test")
    prom = yaml.safe_load(on.files["prometheus.yml"])
    creds = {"username": "admin", "password_file": "/opt/rosey-bot/monitoring/secrets/web_password"}
    assert [j.get("basic_auth") for j in prom["scrape_configs"]] == [None, creds, creds]
    assert prom["alerting"]["alertmanagers"][0]["basic_auth"] == creds

    no_auth = "  web: {basic_auth: false, public: true}\nhosts:\n"
    (tmp_path / "hosts.yml").write_text(BASE.replace("hosts:\n", no_auth))
    inv = load_inventory(tmp_path / "hosts.yml")
    off = render.render_host(inv, inv.host("test"), {"smtp_password": "smtp-Pa55-word"}, rules_path=rules)
    assert yaml.safe_load(off.files["web.yml"]) == {"basic_auth_users": {}}
    assert "basic_auth" not in yaml.safe_load(off.files["prometheus.yml"])["alerting"]["alertmanagers"][0]
    assert "password_file" not in off.files["prometheus.yml"]
    assert [s.name for s in off.secret_files] == ["smtp_password"]
    for unit in ("prometheus.service", "alertmanager.service"):  # uniform: web.yml is always passed
        assert "--web.config.file=/opt/rosey-bot/monitoring/web.yml" in off.files[unit]


def host_with(tmp_path: Path, yaml_items: str):
    """Inventory whose host `x` has these extra flow items."""
    (tmp_path / "hosts.yml").write_text(BASE + f"  x: {{address: x.invalid, {yaml_items}}}\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    return inv, inv.host("x")


def render_x(tmp_path: Path, rules: Path, yaml_items: str) -> render.Rendered:
    from fabfile.config.needed_secrets import required_secrets
    inv, host = host_with(tmp_path, yaml_items)
    return render.render_host(inv, host, {k: SECRETS[k] for k in required_secrets(host)}, rules_path=rules)


def test_bot_job_falls_back_to_the_text_format_on_3x_only(tmp_path: Path, rules: Path) -> None:
    """3.x fails a scrape with a missing/odd Content-Type unless the job names a fallback; 2.x rejects it."""
    text04 = "PrometheusText0.0.4"
    for version, expected in (("2.53.3", None), ("3.0.0", text04), ("3.5.3", text04)):
        text = render_x(tmp_path, rules, f"prometheus: {{version: {version}}}").files["prometheus.yml"]
        jobs = {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}
        assert jobs["rosey-bot"].get("fallback_scrape_protocol") == expected, version
        assert not any("fallback_scrape_protocol" in jobs[j] for j in ("prometheus", "alertmanager"))


def test_prometheus_unit_flags_by_version(tmp_path: Path, rules: Path) -> None:
    old = render_x(tmp_path, rules, "prometheus: {version: 2.42.0}").files["prometheus.service"]
    rel = "/usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64"
    assert f"--web.console.templates={rel}/consoles" in old
    assert "--web.console.libraries=" in old
    new = render_x(tmp_path, rules, "prometheus: {version: 3.0.0}").files["prometheus.service"]
    assert "--web.console" not in new
    for unit in (old, new):
        for flag in ("--config.file=/opt/rosey-bot/monitoring/prometheus.yml",
                     "--storage.tsdb.path=/opt/rosey-bot/monitoring/data",
                     "--storage.tsdb.retention.time=15d", "--web.listen-address=:9090",
                     "--web.enable-lifecycle", "ReadWritePaths=/opt/rosey-bot/monitoring/data\n",
                     "User=prometheus", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                     "ExecReload=/bin/kill -HUP $MAINPID", "Restart=always", "RestartSec=10",
                     "SyslogIdentifier=prometheus", "After=network-online.target"):
            assert flag in unit
        assert "retention.size" not in unit
    sized = render_x(tmp_path, rules, "prometheus: {retention_size: 5GB}").files["prometheus.service"]
    assert "--storage.tsdb.retention.size=5GB" in sized


def test_alertmanager_unit_clustering(tmp_path: Path, rules: Path) -> None:
    solo = render_x(tmp_path, rules, "env: test").files["alertmanager.service"]
    assert "--cluster.listen-address=\n" in solo and "--cluster.peer" not in solo
    assert "--storage.path=/opt/rosey-bot/monitoring/alertmanager-data" in solo
    assert "ReadWritePaths=/opt/rosey-bot/monitoring/alertmanager-data\n" in solo
    assert "User=alertmanager" in solo
    # clustered hosts: tests/pure/test_cluster.py


OLDEST_AM = "0.25.0"  # time_intervals location: no host runs an older Alertmanager


def _table_cases() -> list:
    """Every receiver type and variant of the table: its settings, the version that loads it, one too old."""
    cases = []
    for t in RECEIVER_TYPES:
        for variant, integ in t.integrations.items():
            settings = f"{{{t.variant_setting}: {variant}}}" if variant else "{}"
            ok = integ.since if at_least(integ.since, OLDEST_AM) else OLDEST_AM
            major, minor, _ = parse_version(integ.since)
            too_old = f"{major}.{minor - 1}.0" if at_least(integ.since, "0.26.0") else None
            cases.append(pytest.param(t, settings, integ, ok, too_old, id=f"{t.name}-{variant}".rstrip("-")))
    return cases


def test_table_holds_what_upstream_says() -> None:
    """The minimum versions, checked against Alertmanager's source history (see each entry's `source`)."""
    got = {(t.name, v): (i.config_key, i.file_option, i.since)
           for t in RECEIVER_TYPES for v, i in t.integrations.items()}
    assert got == {
        ("slack", ""): ("slack_configs", "api_url_file", "0.22.0"),
        ("discord", ""): ("discord_configs", "webhook_url_file", "0.28.0"),
        ("webhook", ""): ("webhook_configs", "url_file", "0.26.0"),
        ("pagerduty", ""): ("pagerduty_configs", "routing_key_file", "0.25.0"),
        ("teams", "workflows"): ("msteamsv2_configs", "webhook_url_file", "0.28.0"),
        ("teams", "connector"): ("msteams_configs", "webhook_url_file", "0.28.0"),
        ("heartbeat", ""): ("webhook_configs", "url_file", "0.26.0"),
    }


@pytest.mark.parametrize(("rtype", "settings", "integ", "ok_version", "too_old"), _table_cases())
def test_chat_receivers_need_their_file_option(tmp_path: Path, rules: Path, rtype, settings: str, integ,
                                               ok_version: str, too_old: str | None) -> None:
    receiver = rtype.name
    items = f"alertmanager: {{version: {ok_version}}}, receivers: {{{receiver}: {settings}}}"
    r = render_x(tmp_path, rules, items)
    am = yaml.safe_load(r.files["alertmanager.yml"])
    extra = next(x for x in am["receivers"] if x["name"] == rtype.receiver)
    assert list(extra) == ["name", integ.config_key]
    cfg = extra[integ.config_key][0]
    assert cfg[integ.file_option] == f"/opt/rosey-bot/monitoring/secrets/{rtype.secret}"
    assert [s.name for s in r.secret_files if s.name == rtype.secret] == [rtype.secret]
    route = next(x for x in am["route"]["routes"] if x["receiver"] == rtype.receiver)
    assert route["matchers"] == list(rtype.route.matchers)
    assert route.get("continue", False) is rtype.route.continue_
    if too_old:
        with pytest.raises(InventoryError) as e:
            render_x(tmp_path, rules,
                     f"alertmanager: {{version: {too_old}}}, receivers: {{{receiver}: {settings}}}")
        msg = str(e.value)
        assert msg.startswith(f"hosts.yml: hosts.x.receivers.{receiver}: needs ")
        assert f"alertmanager {too_old} lacks (since {ok_version})" in msg
        assert f"remove receivers.{receiver}" in msg


def test_too_old_releases_are_refused(tmp_path: Path, rules: Path) -> None:
    with pytest.raises(InventoryError,
                       match=r"hosts\.x\.alertmanager\.version: needs time_intervals location"):
        render_x(tmp_path, rules, "alertmanager: {version: 0.24.0}")
    with pytest.raises(InventoryError, match=r"hosts\.x\.prometheus\.version: needs --web\.config\.file"):
        render_x(tmp_path, rules, "prometheus: {version: 2.23.0}")


def test_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="alert rules not found"):
        render_x(tmp_path, tmp_path / "nope.yml", "env: test")


@pytest.mark.parametrize(("version", "minimum", "expected"), [
    ("2.42.0", "2.24.0", True), ("2.48.0", "3.0.0", False), ("3.0.0", "3.0.0", True),
    ("2.9.0", "2.10.0", False), ("3.0.0-rc.0", "3.0.0", True), ("0.25.0", "0.26.0", False),
    ("2.42.0+ds", "2.42.0", True),
])
def test_version_helper(version: str, minimum: str, expected: bool) -> None:
    assert at_least(version, minimum) is expected


def test_version_helper_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_version("latest")


def test_deploy_path_helpers(tmp_path: Path) -> None:
    inv, host = host_with(tmp_path, "base_dir: /srv/mon")
    assert layout.remote_path(host, "prometheus.yml") == "/srv/mon/prometheus.yml"
    assert layout.remote_path(host, "alertmanager.service") == "/etc/systemd/system/alertmanager.service"
    assert layout.remote_path(host, "smtp_password") == "/srv/mon/secrets/smtp_password"
    assert layout.data_dirs(host) == {"/srv/mon/data": "prometheus",
                                      "/srv/mon/alertmanager-data": "alertmanager"}
    assert layout.services_for("alert_rules.yml") == ("prometheus",)
    assert layout.services_for("web.yml") == ("prometheus", "alertmanager")
    assert layout.binary_path("amtool") == "/usr/local/bin/amtool"
    with pytest.raises(KeyError):
        layout.remote_path(host, "other.yml")


def test_downgrade_from_3x_below_2_55_is_refused_in_one_line() -> None:
    from fabfile.config.versions import prometheus_downgrade_refusal as refuse

    data = "/opt/rosey-bot/monitoring/data"
    line = refuse("prod", "3.5.3", "2.42.0", data)
    assert line is not None and "\n" not in line
    assert line.startswith("hosts.prod.prometheus.version: 2.42.0 cannot read the data Prometheus 3.5.3 ")
    assert "2.55.0 or newer" in line and "nothing was changed" in line and data in line
    assert refuse("prod", "3.5.3", "2.54.1", data) is not None
    for installed, target in (("3.5.3", "2.55.0"), ("3.5.3", "2.55.1"), ("3.5.3", "3.0.0"),
                              ("2.53.3", "2.42.0"), (None, "2.42.0"), ("2.42.0", "3.5.3")):
        assert refuse("prod", installed, target, data) is None, (installed, target)


@pytest.mark.parametrize(("email", "critical"), [
    ("", "ops@example.com"),  # default: critical mail to `to`
    ("critical_to: [pager@example.com]", "pager@example.com, ops@example.com"),  # copied to `to`
    ("critical_to: [pager@example.com], critical_cc_default: false", "pager@example.com"),
    ("critical_to: [ops@example.com]", "ops@example.com"),  # equal addresses: once
])
def test_critical_addresses(tmp_path: Path, rules: Path, email: str, critical: str) -> None:
    (tmp_path / "hosts.yml").write_text(
        "hosts:\n  h:\n    address: h.invalid\n    receivers:\n      email: {to: [ops@example.com], "
        f"from: am@example.com, smarthost: smtp.example.com:25, require_tls: false, {email}}}\n")
    inv = load_inventory(tmp_path / "hosts.yml")
    am = yaml.safe_load(render.render_host(inv, inv.host("h"), {"web_password": "w"}, rules_path=rules)
                        .files["alertmanager.yml"])
    to = {r["name"]: r["email_configs"][0]["to"] for r in am["receivers"] if "email_configs" in r}
    assert to == {"email-default": "ops@example.com", "email-critical": critical,
                  "email-info": "ops@example.com"}
