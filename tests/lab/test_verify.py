"""verify on a real server: all checks pass after sortie6, a stopped service fails it, in one command."""

from __future__ import annotations

import re

from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab_fixtures import lab_inventory


def test_verify_all_pass_after_sortie6(deployed_lab):
    d = deployed_lab
    p = d.inv("verify", "-H", d.host)
    assert p.returncode == 0, p.stdout
    lines = [ln for ln in p.stdout.splitlines() if re.search(r"\b(PASS|FAIL)\b", ln)]
    assert len(lines) >= 15 and all("PASS" in ln for ln in lines)
    assert re.search(r'bot_connected\{env="test",instance="localhost:8001",job="rosey-bot"\} 1\b', p.stdout)
    assert "target rosey-bot: 1/1 up" in p.stdout
    d.assert_no_secret(p.stdout)


def test_verify_is_one_ssh_command_and_reports_a_failure(deployed_lab):
    from fabfile.deploy.steps.base import StepContext
    from fabfile.deploy.steps.verify import verify
    from fabfile.masking import Masker
    from fabfile.ssh import transport
    from fabfile.ssh.connection import connect

    d = deployed_lab
    inv = lab_inventory()
    host = inv.host(d.host)
    ctx = StepContext(inventory=inv, secrets=d.secrets, masker=Masker(d.secrets.values()))
    d.lab.run("sudo systemctl stop alertmanager", check=True)
    try:
        conn = connect(host)
        try:
            res = verify(conn, host, ctx)
            assert transport.stats(conn).commands == 1
        finally:
            conn.close()
        assert res.status == "failed"
        failed = [ln for ln in res.details if ln.startswith("FAIL")]
        assert any("alertmanager service" in ln for ln in failed)
        assert any("alertmanager /-/healthy" in ln for ln in failed)
        assert all(not ln.startswith("FAIL  prometheus service") for ln in failed)
    finally:
        d.lab.run("sudo systemctl start alertmanager", check=True)


def test_a_unit_that_lost_its_web_config_fails_verify_until_install_services_puts_it_back(deployed_lab):
    """A hand-edited unit without --web.config.file serves everyone: the healthy checks still pass (they
    send the password, which an open UI ignores), so only the request without credentials notices."""
    d = deployed_lab
    unit = "/etc/systemd/system/alertmanager.service"
    d.lab.run(f"sudo sed -i '/--web.config.file=/d' {unit} && sudo systemctl daemon-reload && "
              "sudo systemctl restart alertmanager", check=True)
    try:
        p = d.inv("verify", "-H", d.host)
        assert p.returncode == 1, p.stdout
        assert "FAIL  alertmanager login required: HTTP 200 without credentials" in p.stdout
        assert "PASS  alertmanager /-/healthy" in p.stdout  # what the other checks see
        assert "PASS  prometheus login required" in p.stdout
    finally:
        fix = d.inv("install-services", "-H", d.host)
    assert fix.returncode == 0 and "alertmanager: unit updated, restarted" in fix.stdout, fix.stdout
    assert d.inv("verify", "-H", d.host).returncode == 0
