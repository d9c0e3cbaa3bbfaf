"""The bad-binary rollback's decisions (fabfile/deploy/rollback.py) and install-services' use of them."""

from __future__ import annotations

import pytest

from fabfile.deploy import rollback
from fabfile.deploy.steps import services
from fabfile.facts import releases
from tests.pure.test_deploy_decisions import UNITS, svc_state

LIB = "/usr/local/lib/rosey-monitoring"
OLD = f"{LIB}/prometheus-2.42.0.linux-amd64"
NEW = f"{LIB}/prometheus-3.5.3.linux-amd64"


def test_previous_release_is_where_the_running_binary_lives():
    assert releases.previous_release("prometheus", f"{OLD}/prometheus", f"{NEW}/prometheus") == OLD


@pytest.mark.parametrize("exe, binary", [
    ("", f"{NEW}/prometheus"),  # not running
    (f"{NEW}/prometheus", f"{NEW}/prometheus"),  # same release: nothing to go back to
    (f"{OLD}/prometheus (deleted)", f"{NEW}/prometheus"),  # its files are gone
    ("/usr/bin/prometheus", f"{NEW}/prometheus"),  # a Debian package's binary, not one of our releases
    ("/usr/bin/dash", f"{NEW}/prometheus"),  # a wrapper script's interpreter
])
def test_no_previous_release_to_go_back_to(exe, binary):
    assert releases.previous_release("prometheus", exe, binary) is None


def test_release_version_from_the_dir_name():
    assert releases.release_version("prometheus", OLD) == "2.42.0"
    assert releases.release_version("prometheus", f"{LIB}/prometheus-2.42.0-broken.linux-amd64") == \
        "2.42.0-broken"


def test_binary_change_plans_a_rollback_to_the_running_release(host):
    state = svc_state(UNITS, exe={"prometheus": f"{OLD}/prometheus", "alertmanager": "/opt/x/am-old"},
                      binary={"prometheus": f"{NEW}/prometheus"})
    plans = {p.service: p for p in services.decide(host, UNITS, state)}
    assert plans["prometheus"].restart and plans["prometheus"].previous == OLD
    assert plans["alertmanager"].previous is None  # its running binary is not in a release dir of ours
    unit_only = services.decide(host, UNITS, svc_state(UNITS, unit_same=False))
    assert all(p.restart and p.previous is None for p in unit_only)


def test_apply_script_rolls_back_only_with_a_previous_release(host):
    state = svc_state(UNITS, exe={"prometheus": f"{OLD}/prometheus", "alertmanager": "/opt/x/am-old"},
                      binary={"prometheus": f"{NEW}/prometheus"})
    script = services.apply_script(host, services.decide(host, UNITS, state), [])
    assert f"ln -sfn {OLD}/prometheus /usr/local/bin/prometheus.rosey-new" in script
    assert f"ln -sfn {OLD}/promtool /usr/local/bin/promtool.rosey-new" in script
    assert "alertmanager.rosey-new" not in script
    assert script.index("systemctl restart prometheus.service") < script.index("healthy prometheus 9090")
    assert "/opt/rosey-bot/monitoring/data" not in script  # the data dir is never touched
    assert script.rstrip().endswith("exit $rc")


def test_report_after_a_rollback_names_both_versions_and_keeps_the_journal():
    out = "\n".join([
        f"{rollback.MARK} unhealthy prometheus it exited and systemd restarted it 2 times",
        "2026-11-29T18:00:00+0000 lab prometheus[1]: prometheus 2.42.0-broken: exits at start on purpose",
        f"{rollback.MARK} rolledback prometheus healthy",
    ])
    failure = rollback.report(out, {"prometheus": "2.42.0-broken", "alertmanager": "0.25.0"},
                              {"prometheus": OLD, "alertmanager": None})
    assert failure is not None
    assert failure.head.startswith("prometheus 2.42.0-broken did not become healthy: it exited and systemd "
                                   "restarted it 2 times; rolled back to prometheus 2.42.0, healthy again")
    assert "set prometheus.version back to 2.42.0" in failure.head
    assert failure.details == ["journal of prometheus 2.42.0-broken (new binary):",
                               "2026-11-29T18:00:00+0000 lab prometheus[1]: prometheus 2.42.0-broken: exits "
                               "at start on purpose"]


def test_report_when_the_old_release_fails_too_or_is_missing():
    out = (f"{rollback.MARK} unhealthy prometheus its unit failed\n"
           f"{rollback.MARK} rolledback prometheus unhealthy not within 120s (activating)\n")
    failure = rollback.report(out, {"prometheus": "3.5.3"}, {"prometheus": OLD})
    assert failure and "rolled back to prometheus 2.42.0, but it is not healthy either: not within 120s" \
        in failure.head
    gone = rollback.report(f"{rollback.MARK} unhealthy prometheus x\n"
                           f"{rollback.MARK} norollback prometheus {OLD} is gone\n",
                           {"prometheus": "3.5.3"}, {"prometheus": OLD})
    assert gone and gone.head.endswith(f"cannot roll back: {OLD} is gone")
    assert rollback.report("some output\n", {}, {}) is None
