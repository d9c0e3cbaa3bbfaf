"""deploy-configs decisions without a server: what changed, what to reload, what the dry run shows."""

from __future__ import annotations

import hashlib

import pytest

from fabfile.config import render
from fabfile.deploy.steps import configs
from fabfile.facts import files
from fabfile.facts import units as unit_state
from fabfile.masking import Masker
from tests.helpers import fixture_inventory, units_answer

SECRETS = {"web_password": "pw-Very-Secret-1", "smtp_password": "smtp-Secret-2"}


@pytest.fixture(scope="module")
def setup():
    inv = fixture_inventory()
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
    # the step reads these paths before it renders: the same list, from the settings alone
    assert configs.target_paths(host) == [t.path for t in tgts]


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
        "reload_svc prometheus 9090")
    assert "systemctl restart" not in script
    assert "reload_svc alertmanager" not in script
    assert "pw-Very-Secret-1" not in script  # the password reaches curl via stdin only
    assert "/usr/local/bin/promtool" in script and "/usr/local/bin/amtool" in script


def test_probe_parsers():
    assert files.parse_stat("root prometheus 640 /opt/x/secrets/web_password\n") == {
        "/opt/x/secrets/web_password": ("root", "prometheus", 0o640)}
    host = fixture_inventory().host("lab")
    running = unit_state.parse(host, units_answer(host))
    assert configs.reloadable(running) == {"prometheus": True, "alertmanager": True}
    stopped = unit_state.parse(host, units_answer(host, active="inactive"))
    assert configs.reloadable(stopped) == {"prometheus": False, "alertmanager": False}
    # install switched the binary, the old process still runs: no reload (it may reject the new release's
    # config; install-services' restart loads it)
    switched = unit_state.parse(host, units_answer(host, binary={"prometheus": "/usr/local/lib/y/prom"}))
    assert configs.reloadable(switched) == {"prometheus": False, "alertmanager": True}


def test_apply_script_keeps_copies_before_anything_moves(setup):
    host, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: b"x" if t.name == "alert_rules.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    script = configs.apply_script(host, {"alert_rules.yml": "/tmp/rosey-stage.x/ab-alert_rules.yml"},
                                  changes, ["prometheus"], True, [t for t in tgts if t.secret])
    keep = script.index("cp -a -- /opt/rosey-bot/monitoring/alert_rules.yml")
    assert script.index("promtool check rules") < keep
    assert script.index("cp -a --") < script.index("install -o root")
    assert "; fail 20; }" in script and "|| exit 20" in script.split("install -o root")[0]
    assert "reload_svc prometheus 9090 || { restore_reload; exit $?; }" in script
    assert "reload_svc alertmanager" not in script
    assert "rm -f -- /tmp/rosey-stage.x/ab-alert_rules.yml" in script  # in the EXIT trap: always
    assert "rmdir /tmp/rosey-stage.x" in script


def test_no_reload_means_no_restore_reload(setup):
    host, _, tgts = setup
    sha, stat = server_state(tgts)
    path = next(t.path for t in tgts if t.name == "smtp_password")
    stat[path] = ("root", "root", 0o644)
    changes = configs.plan(tgts, sha, stat)
    script = configs.apply_script(host, {}, changes, [], False, [t for t in tgts if t.secret])
    assert "restore_reload" not in script and "reload_svc" not in script
    assert "rmdir" not in script  # nothing staged, no staging dir of ours to remove


def test_reload_failure_picks_the_verdict_line():
    verdict = "prometheus: reload rejected (prometheus_config_last_reload_successful=0)"
    assert configs.reload_failure(verdict + '\n  journal: msg="Error reloading config"') == verdict
    assert configs.reload_failure("alertmanager: reload not confirmed within 45 s (x=?)\n").startswith(
        "alertmanager: reload not confirmed")
    assert configs.reload_failure("") == "no output"


def test_outcome_of_a_failed_restore_says_to_check_the_server(setup):
    sec = {"reload": "prometheus: reload rejected (prometheus_config_last_reload_successful=0)",
           "restore": "could not restore /opt/rosey-bot/monitoring/alert_rules.yml"}
    _, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: b"x" if t.name == "alert_rules.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    res = configs._outcome(31, sec, changes, ["prometheus"], [], Masker())
    assert res.failed and "restoring the previous files FAILED" in res.summary
    assert "could not restore /opt/rosey-bot/monitoring/alert_rules.yml" in res.details
    res = configs._outcome(32, sec, changes, ["prometheus"], [], Masker())
    assert "their reload was not confirmed either" in res.summary


def test_outcome_of_a_copy_into_a_full_disk_says_to_free_space(setup):
    """Where staging is another filesystem (Debian 13's tmpfs /tmp) the upload goes through and the copy
    into place is what the full disk refuses: the line still says the disk is full and what to do."""
    _, _, tgts = setup
    sha, stat = server_state(tgts, edit=lambda t: b"x" if t.name == "alert_rules.yml" else t.data)
    changes = configs.plan(tgts, sha, stat)
    said = ("cp: error writing '/opt/rosey-bot/monitoring/alert_rules.yml.rosey-new': "
            f"{configs.DISK_FULL}")
    res = configs._outcome(20, {"activate": said}, changes, [], [], Masker())
    assert res.failed
    assert res.summary == (f"could not activate configs: {said}; the previous files are in place, nothing "
                           "reloaded; the server's disk is full: free some space (df -h), then run again")
    other = configs._outcome(20, {"activate": "chown: invalid group"}, changes, [], [], Masker())
    assert "disk is full" not in other.summary
