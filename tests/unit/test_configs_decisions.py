"""deploy-configs decisions without a server: what changed, what to reload, what the dry run shows."""

from __future__ import annotations

import hashlib

import pytest

from fabfile import render
from fabfile.inventory import load_inventory
from fabfile.masking import Masker
from fabfile.steps import configs

SECRETS = {"web_password": "pw-Very-Secret-1", "smtp_password": "smtp-Secret-2"}


@pytest.fixture(scope="module")
def setup():
    inv = load_inventory()
    host = inv.host("lab")
    rendered = render.render_host(inv, host, SECRETS)
    return host, rendered, configs.targets(host, rendered)


def server_state(tgts, skip=(), edit=None):
    """sha/stat answers of a server holding exactly `tgts` (minus `skip`, with `edit` applied)."""
    sha, stat = {}, {}
    for t in tgts:
        if t.name in skip:
            continue
        data = edit(t) if edit else t.data
        sha[t.path] = hashlib.sha256(data).hexdigest()
        stat[t.path] = (t.owner, t.group, t.mode)
    return sha, stat


def test_targets_exclude_units_and_put_secrets_first(setup):
    host, rendered, tgts = setup
    names = [t.name for t in tgts]
    assert not any(n.endswith(".service") for n in names)
    assert sorted(names[:2]) == ["smtp_password", "web_password"]
    secret = {t.name: t for t in tgts if t.secret}
    assert secret["web_password"].mode == 0o640 and secret["web_password"].group == "prometheus"
    assert secret["smtp_password"].group == "alertmanager" and secret["smtp_password"].owner == "root"


def test_nothing_changed_means_no_change(setup):
    _, _, tgts = setup
    assert configs.plan(tgts, *server_state(tgts)) == []


def test_changed_rule_reloads_only_prometheus(setup):
    _, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: t.data + b"#" if t.name == "alert_rules.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    assert [c.name for c in changes] == ["alert_rules.yml"]
    both = {"prometheus": True, "alertmanager": True}
    assert configs.services_to_reload(changes, both) == (["prometheus"], [])


def test_alertmanager_config_reloads_only_alertmanager(setup):
    _, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: b"old" if t.name == "alertmanager.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    assert configs.services_to_reload(changes, {"prometheus": True, "alertmanager": True}) == (
        ["alertmanager"], [])


def test_not_running_services_are_not_reloaded(setup):
    _, _, tgts = setup
    changes = configs.plan(tgts, {}, {})  # fresh server: everything missing
    assert len(changes) == len(tgts)
    assert configs.services_to_reload(changes, {}) == ([], ["prometheus", "alertmanager"])


def test_owner_drift_is_fixed_without_reload(setup):
    _, _, tgts = setup
    sha, stat = server_state(tgts)
    path = next(t.path for t in tgts if t.name == "smtp_password")
    stat[path] = ("root", "root", 0o644)
    changes = configs.plan(tgts, sha, stat)
    assert [(c.name, c.content_changed) for c in changes] == [("smtp_password", False)]
    assert configs.services_to_reload(changes, {"prometheus": True, "alertmanager": True}) == ([], [])


def test_dry_run_diff_is_masked_and_secrets_are_only_named(setup):
    _, _, tgts = setup
    changes = configs.plan(tgts, {}, {})
    server = {c.path: "old: pw-Very-Secret-1\n" for c in changes if c.name == "prometheus.yml"}
    lines = configs.diff_lines(changes, server, Masker(SECRETS.values()))
    text = "\n".join(lines)
    assert "pw-Very-Secret-1" not in text and "smtp-Secret-2" not in text
    assert "-old: ********" in text
    assert any(ln.startswith("would change") and "secrets/smtp_password" in ln for ln in lines)
    assert any(ln.startswith("+++ ") and ln.endswith("alert_rules.yml (rendered)") for ln in lines)


def test_apply_script_validates_before_activating(setup):
    host, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: b"x" if t.name == "alert_rules.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    script = configs.apply_script(host, {"alert_rules.yml": "/tmp/rosey-stage.x/ab-alert_rules.yml"},
                                  changes, ["prometheus"], True, [t for t in tgts if t.secret])
    assert script.index("promtool check config") < script.index("install -o root") < script.index(
        "systemctl reload prometheus")
    assert "systemctl restart" not in script
    assert "systemctl reload alertmanager" not in script
    assert "pw-Very-Secret-1" not in script  # the password reaches curl via stdin only
    assert "/usr/local/bin/promtool" in script and "/usr/local/bin/amtool" in script


def test_probe_parsers():
    assert configs.parse_stat("root prometheus 640 /opt/x/secrets/web_password\n") == {
        "/opt/x/secrets/web_password": ("root", "prometheus", 0o640)}
    assert configs._parse_active("prometheus active\nalertmanager inactive") == {
        "prometheus": True, "alertmanager": False}
