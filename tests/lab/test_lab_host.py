"""The lab host of issue 3, checked on a real VM restored from the golden snapshot."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fabfile.lab import keys, privnet, releases
from fabfile.lab.vm import LabVM
from tests.lab_fixtures import lab_inventory

REPO = Path(__file__).resolve().parents[2]
METRICS = ["bot_connected", "bot_uptime_seconds", "bot_users", "bot_requests_total", "bot_errors_total"]


def _metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            out[name] = float(value)
    return out


def test_ssh_as_rosey_with_passwordless_sudo(lab_host):
    assert lab_host.run("id -un").stdout.strip() == "rosey"
    assert lab_host.run("sudo -n id -un").stdout.strip() == "root"


def test_system_is_running(lab_host):
    assert lab_host.run("systemctl is-system-running", check=False).stdout.strip() == "running"


def test_guest_clock_follows_host_after_restore(lab_host):
    # the guest's reading must fall inside the host's window around the command (a few ms of slack):
    # set before the SSH handshake, it would be seconds behind
    t0 = time.time()
    guest = float(lab_host.run("date +%s.%N").stdout)
    t1 = time.time()
    assert t0 - 0.25 <= guest <= t1 + 0.25, (t0, guest, t1)


def test_no_monitoring_stack_but_debian_web_assets(lab_host):
    probe = lab_host.run(
        "command -v prometheus alertmanager promtool amtool; getent passwd prometheus; "
        "test -f /usr/share/prometheus/alertmanager/default.tmpl && test -d /usr/share/prometheus/web "
        "&& echo assets",
        check=False,
    )
    assert probe.stdout.strip() == "assets"
    tools = lab_host.run("ls /usr/bin/curl /usr/bin/python3 /usr/sbin/ufw /usr/bin/sudo /usr/sbin/sshd")
    assert len(tools.stdout.split()) == 5


def test_bot_metrics_inside_guest(lab_host):
    out = lab_host.run("curl -sS -D - localhost:8001/api/metrics").stdout
    assert re.search(r"(?i)content-type: text/plain; charset=utf-8", out)
    body = out.split("\n\n", 1)[1]  # (text mode turned CRLF into LF)
    values = _metrics(body)
    assert sorted(values) == sorted(METRICS)
    assert values["bot_connected"] == 1
    assert "{" not in body  # no labels on the series


def test_bot_health_json_from_forwarded_port(lab_host):
    with urllib.request.urlopen(lab_host.url(8001, "/api/health"), timeout=10) as resp:
        health = json.load(resp)
    assert set(health) == {
        "status", "connected", "channel", "uptime_seconds", "version", "user_count", "requests_handled",
        "error_count",
    }  # fmt: skip
    assert health["status"] == "healthy" and health["connected"] is True


def test_bot_unit_matches_the_contract(lab_host):
    props = "User,Group,WorkingDirectory,Environment,Restart,RestartUSec,StartLimitBurst"
    props += ",StartLimitIntervalUSec,NoNewPrivileges,PrivateTmp,ExecStart"
    out = lab_host.run(f"systemctl show rosey-bot -p {props}").stdout
    show = dict(line.split("=", 1) for line in out.splitlines())
    assert show["User"] == "rosey" and show["Group"] == "rosey"
    assert show["WorkingDirectory"] == "/opt/rosey-bot"
    assert "PYTHONPATH=/opt/rosey-bot" in show["Environment"]
    assert "BOT_CONFIG=/opt/rosey-bot/config-test.json" in show["Environment"]
    assert show["Restart"] == "always" and show["RestartUSec"] == "10s"
    assert show["StartLimitBurst"] == "5" and show["StartLimitIntervalUSec"] == "1min"
    assert show["NoNewPrivileges"] == "yes" and show["PrivateTmp"] == "yes"
    assert "/usr/bin/python3 -m lib" in show["ExecStart"].replace("argv[]=", "").replace(" ;", "")
    assert lab_host.run("systemctl is-enabled rosey-bot").stdout.strip() == "enabled"
    config = json.loads(lab_host.run("cat /opt/rosey-bot/config-test.json").stdout)
    assert config["health_port"] == 8001


def test_bot_state_can_be_steered_while_it_runs(lab_host):
    lab_host.set_bot_state(connected=False, users=7, error_rate=20)
    try:
        first = _metrics(lab_host.run("curl -sS localhost:8001/api/metrics").stdout)
        time.sleep(1.5)
        second = _metrics(lab_host.run("curl -sS localhost:8001/api/metrics").stdout)
        assert first["bot_connected"] == 0 and first["bot_users"] == 7
        assert second["bot_errors_total"] >= first["bot_errors_total"] + 20
        health = json.loads(lab_host.run("curl -sS localhost:8001/api/health").stdout)
        assert health["status"] == "unhealthy" and health["connected"] is False
    finally:
        lab_host.reset_bot_state()
    again = _metrics(lab_host.run("curl -sS localhost:8001/api/metrics").stdout)
    assert again["bot_connected"] == 1 and again["bot_users"] == 5
    assert again["bot_errors_total"] >= second["bot_errors_total"]  # counters never go back


def test_smtp_catcher_keeps_mail_and_never_the_password(lab_host):
    lab_host.clear_mails()
    lab_host.send_test_mail("[Rosey Bot] lab check", login="catcher-check")
    mails = lab_host.mails()
    assert [m.subject for m in mails] == ["[Rosey Bot] lab check"]
    assert mails[0].recipients == ["oncall@lab.test"]
    assert mails[0].login == "catcher-check"  # the login name is kept (which sender), never the password
    assert "lab test mail" in mails[0].body
    leak = lab_host.run(
        "sudo grep -rl not-stored /var/lib/smtp-catcher; "
        "sudo journalctl -u smtp-catcher | grep -c not-stored",
        check=False,
    )
    assert leak.stdout.strip() == "0"
    lab_host.clear_mails()
    assert lab_host.mails() == []


def test_smtp_catcher_speaks_login_like_real_servers(lab_host):
    """Go's client (Alertmanager) insists on the "Username:"/"Password:" challenges of AUTH LOGIN."""
    code = (
        "import base64,smtplib\n"
        "s=smtplib.SMTP('localhost',2525,timeout=10); s.ehlo()\n"
        "print(s.esmtp_features['auth'])\n"
        "b=lambda x: base64.b64encode(x).decode()\n"
        "for cmd in (('AUTH','LOGIN'),(b(b'lab'),),(b(b'pw'),)):\n"
        "    c,r=s.docmd(*cmd); print(c, base64.b64decode(r).decode() if c==334 else r.decode())\n"
    )
    out = lab_host.run(f"python3 -c {shlex.quote(code)}").stdout.splitlines()
    assert set(out[0].split()) == {"LOGIN", "PLAIN"}
    assert out[1:3] == ["334 Username:", "334 Password:"]
    assert out[3].startswith("235")


# deployed on a guest by the lab deploy tests (download, checksum and start included): not fetched again here
DEPLOYED_ELSEWHERE = {("prometheus", "2.42.0"), ("alertmanager", "0.25.0"), ("prometheus", "3.5.3"),
                      ("alertmanager", "0.33.1")}


def test_guest_downloads_release_archives_and_checksums_verify(lab_host):
    """Every archive the lab serves downloads, verifies and runs in the bookworm guest; the ones a deploy test
    installs anyway are proven there."""
    built = releases.available()
    assert {(r.family, r.version) for r in built} >= DEPLOYED_ELSEWHERE
    port = lab_host.settings.lab.releases_port
    for rel in (r for r in built if (r.family, r.version) not in DEPLOYED_ELSEWHERE):
        base = f"http://10.0.2.2:{port}/{rel.family}/v{rel.version}"
        name = rel.archive.name
        binary = rel.family
        out = lab_host.run(
            f"set -e; d=$(mktemp -d); cd $d; curl -fsS -O {base}/{name} -O {base}/sha256sums.txt; "
            f"sha256sum -c --ignore-missing sha256sums.txt; tar xzf {name}; "
            f"./{name.removesuffix('.tar.gz')}/{binary} --version 2>&1 | head -1; cd /; rm -rf $d",
            timeout=300,
        ).stdout
        assert f"{name}: OK" in out
        assert f"version {rel.version}" in out  # the binary runs in the bookworm guest and is that version


def test_inventory_lab_entry_points_at_the_served_archives(lab_host):
    s = lab_host.settings
    assert s.prometheus.url() == f"http://10.0.2.2:{s.lab.releases_port}/prometheus/v{s.prometheus.version}"
    assert releases.release_dir("prometheus", s.prometheus.version).joinpath("sha256sums.txt").exists()
    assert releases.release_dir("alertmanager", s.alertmanager.version).joinpath("sha256sums.txt").exists()
    assert oct(keys.ensure_secrets().stat().st_mode & 0o777) == "0o600"


def test_lab_ssh_task_runs_one_command_with_its_status(lab_host):
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "lab.ssh", "-H", lab_host.name, "--command", "echo hi; exit 3"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3 and done.stdout.strip() == "hi"
    status = subprocess.run(
        [sys.executable, "-m", "invoke", "lab.status", "-H", lab_host.name],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert f"{lab_host.name}: running" in status.stdout


def test_stopping_the_bot_closes_its_port(lab_host):
    lab_host.run("sudo systemctl stop rosey-bot")
    try:
        refused = lab_host.run("curl -sS --max-time 3 localhost:8001/api/metrics", check=False)
        assert refused.code == 7  # curl: couldn't connect
        with pytest.raises(OSError):
            urllib.request.urlopen(lab_host.url(8001, "/api/metrics"), timeout=3).read()
    finally:
        lab_host.run("sudo systemctl start rosey-bot")
    deadline = time.monotonic() + 30
    while lab_host.run("curl -sf localhost:8001/api/metrics", check=False).code != 0:
        assert time.monotonic() < deadline, "rosey-bot did not come back"
        time.sleep(0.5)
    values = _metrics(lab_host.run("curl -sS localhost:8001/api/metrics").stdout)
    assert values["bot_uptime_seconds"] < 30  # a new process: uptime restarted


def test_private_nic_is_addressed_without_its_peer(lab_host):
    """lab alone (lab2 not running): its private NIC has its address; the boot did not wait for the peer."""
    peer = LabVM(lab_inventory().host(lab_host.settings.lab.private_peer))
    assert not peer.is_running(), "this module runs lab alone"
    out = lab_host.run("ip -4 -o addr show").stdout
    assert f" {lab_host.private_address}/{privnet.PREFIX} " in out
    assert lab_host.run("systemctl is-system-running", check=False).stdout.strip() == "running"
    ping = lab_host.run(f"ping -c 1 -W 1 {peer.settings.lab.private_address}", check=False)
    assert ping.code == 1  # no reply: nobody at the other end (2 would be an error on this side)
