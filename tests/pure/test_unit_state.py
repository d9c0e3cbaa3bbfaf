"""The systemd facts of both services, read once for deploy-configs, install-services and verify."""

from __future__ import annotations

import pytest

from fabfile.deploy.steps import configs, services, verify
from fabfile.deploy.steps.base import StepContext
from fabfile.facts import units as unit_state
from tests.helpers import fixture_inventory

# as systemd 252 (Debian 12) prints it: its own property order, a blank line between units; alertmanager
# never installed (systemd still answers, with defaults)
SERVER = """\
MainPID=812
Id=prometheus.service
NeedDaemonReload=no
ActiveState=active
UnitFileState=enabled
ExecMainStartTimestampMonotonic=61250000

MainPID=0
Id=alertmanager.service
NeedDaemonReload=no
ActiveState=inactive
UnitFileState=
ExecMainStartTimestampMonotonic=0
@exe 812 /usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64/prometheus
@bin /usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64/prometheus
@bin /usr/local/bin/alertmanager
@mtime /etc/systemd/system/prometheus.service 1796040000
@clock 1796045026,214587 3600.50"""


def test_one_answer_gives_each_service_its_facts(host):
    got = unit_state.parse(host, SERVER)
    p, a = got["prometheus"], got["alertmanager"]
    assert p.running and p.enabled == "enabled" and p.main_pid == 812 and not p.restart_pending
    assert p.started == pytest.approx(1796045026.214587 - 3600.50 + 61.25)  # the clock with a comma, too
    assert p.unit_mtime == 1796040000
    assert not a.running and a.enabled == "" and a.exe == "" and a.started == 0 and a.unit_mtime == 0


def test_a_switched_binary_is_a_pending_restart(host):
    got = unit_state.parse(host, SERVER.replace("@bin /usr/local/lib/rosey-monitoring/prometheus-2.42.0",
                                                "@bin /usr/local/lib/rosey-monitoring/prometheus-2.53.3"))
    assert got["prometheus"].restart_pending


def test_nothing_readable_is_unknown_and_not_running(host):
    got = unit_state.parse(host, "Failed to connect to bus: Host is down")
    assert all(not s.running and s.active == "unknown" for s in got.values())


def test_the_three_steps_ask_in_the_same_words_so_the_read_ahead_asks_once(host):
    ctx = StepContext(fixture_inventory(), {"web_password": "w" * 12, "smtp_password": "s" * 8})
    texts = {configs.reads(host, ctx).snippets["units"], services.reads(host, ctx).snippets["units"],
             verify.reads(host, ctx).snippets["units"]}
    assert len(texts) == 1
    assert next(iter(texts)).count("systemctl") == 1  # one systemd call for both services
