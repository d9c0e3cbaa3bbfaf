"""sortie6 / install / install-services against a real lab VM, through the real CLI (`inv ...`).

One VM for the whole module (the steps build on each other, a fresh sortie6 is the expensive part):
fresh deploy -> no-op re-run -> refused checksum -> upgrade to 3.x (TSDB kept; the way back refused) ->
offline upload ->
unreachable second host; every output of the module is finally searched for the secrets. (Services coming
back by themselves after the server went down: host-down in tests/lab/test_lab_cluster.py, a harder case.)
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from fabfile.config.secrets import load_secrets
from fabfile.deploy import steps
from fabfile.deploy.runner import READ_AHEAD
from fabfile.lab import broken_release
from fabfile.lab.paths import releases_dir
from tests import helpers
from tests.helpers import main_pids as pids
from tests.lab_fixtures import lab_inventory, lab_inventory_path

OUTPUTS: list[str] = []  # every CLI output of this module, searched for secrets at the end


@pytest.fixture(scope="module")
def lab(lab_host):
    return lab_host


@pytest.fixture(scope="module")
def secrets(lab) -> dict[str, str]:
    inv = lab_inventory()
    return load_secrets(inv, inv.host(lab.name))


def inv(*args: str, inventory: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """`inv <args>` (stdout+stderr in .stdout), `inventory` as ROSEY_INVENTORY; output kept for the end."""
    r = helpers.inv(*args, env={"ROSEY_INVENTORY": str(inventory)} if inventory else None, timeout=timeout)
    OUTPUTS.append(r.stdout)
    return r


def variant(lab, tmp_path: Path, name: str, host_over: dict | None = None,
            extra_hosts: dict | None = None) -> Path:
    """A copy of the inventory with `lab`'s settings changed (deep-merged) and extra hosts added."""
    doc = yaml.safe_load(lab_inventory_path().read_text())
    h = doc["hosts"][lab.name]
    for key, value in (host_over or {}).items():
        h[key] = {**h.get(key, {}), **value} if isinstance(value, dict) else value
    doc["hosts"].update(extra_hosts or {})
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def query(lab, secrets, promql: str, at: float | None = None) -> list:
    params = {"query": promql, **({"time": str(at)} if at else {})}
    r = requests.get(lab.url(9090, "/api/v1/query"), params=params, auth=("admin", secrets["web_password"]),
                     timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def wait_for(fn, timeout: float = 90):
    end = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except requests.RequestException:
            pass
        if time.monotonic() > end:
            return fn()
        time.sleep(2)


def profile(stdout: str) -> dict[str, tuple[float, int]]:
    """The recap's profile: {step: (wall seconds, SSH commands)}."""
    table = stdout.split("time per step (wall seconds, SSH commands):", 1)[1].splitlines()[2:]
    return {m.group(1): (float(m.group(2)), int(m.group(3)))
            for m in (re.match(r"\s+(\S+)\s+([\d.]+)s\s+(\d+)$", ln) for ln in table) if m}


def test_fresh_sortie6_deploys_and_scrapes_the_bot(lab, secrets):
    since = int(time.time()) - 1
    t0 = time.monotonic()
    r = inv("sortie6", "-H", lab.name)
    print(f"fresh sortie6: {time.monotonic() - t0:.0f}s")
    assert r.returncode == 0, r.stdout
    # every step changed something; each change ended with the next step's read, so the steps after the
    # first one needed no read of their own: one command each (verify reads for itself: it may wait)
    rows = profile(r.stdout)
    assert [rows[s][1] for s in steps.SORTIE6] == [1, 1, 1, 1, 1, 1], rows
    assert f"{lab.name}  ok=" in r.stdout and "failed=0" in r.stdout
    assert "install-prometheus: changed — prometheus none → 2.42.0" in r.stdout
    # the alertmanager release came beside prometheus' (same command); its own step only switched to it
    assert ("fetched and unpacked alertmanager 0.25.0 beside it (install-alertmanager switches to it)"
            in r.stdout)
    am = r.stdout[r.stdout.index("install-alertmanager: changed"):r.stdout.index("deploy-configs:")]
    assert "switch alertmanager/amtool to 0.25.0" in am and "fetch" not in am
    # new units: enabled and loaded without a systemd reload, nothing pending; no staging or work dir left
    show = lab.run("systemctl show -p LoadState,UnitFileState,NeedDaemonReload prometheus alertmanager")
    want = ["LoadState=loaded", "NeedDaemonReload=no", "UnitFileState=enabled"] * 2
    assert sorted(show.stdout.split()) == sorted(want), show.stdout
    reloads = lab.run(f"journalctl _PID=1 --since @{since} --no-pager | grep -c 'Reloading' || true").stdout
    assert reloads.strip() == "0", "systemd was reloaded for new units"
    assert lab.run("ls -d /tmp/rosey-stage.* /tmp/rosey-install.* 2>/dev/null", check=False).stdout == ""
    result = wait_for(lambda: query(lab, secrets, "bot_connected"))
    assert result and result[0]["value"][1] == "1"
    assert lab.run("stat -c %U:%G /opt/rosey-bot/monitoring/data").stdout.strip() == "prometheus:prometheus"
    assert "/usr/sbin/nologin" in lab.run("getent passwd prometheus alertmanager").stdout


def test_second_run_changes_and_restarts_nothing(lab):
    before = pids(lab)
    r = inv("sortie6", "-H", lab.name)
    assert r.returncode == 0, r.stdout
    assert "changed=0 failed=0" in r.stdout and ": changed" not in r.stdout
    assert pids(lab) == before
    # the recap's profile: every step with its wall seconds and SSH commands; a no-op is ONE round trip
    # (the read-ahead of every step's state), each step deciding from it
    rows = profile(r.stdout)
    assert set(steps.SORTIE6) <= set(rows), rows
    assert rows[READ_AHEAD][1] == 1 and all(rows[s][1] == 0 for s in steps.SORTIE6), rows
    assert rows["total"][1] == 1


def test_the_drill_right_after_a_fresh_deploy_passes(lab):
    """The quickstart's order: deploy, then the drill at once. Right after a start, an evaluation before the
    first scrape can leave BotDown pending (`absent(up)`) until the next one: the drill waits that out
    instead of failing its pre-check. Whether that evaluation came first depends on where the start fell in
    the two intervals, so the test says which case it saw."""
    r = inv("test-alert", "-H", lab.name, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout
    waited = "BotDown is pending while the target is up" in r.stdout
    print(f"BotDown was {'pending from before the first scrape: waited out' if waited else 'not pending'}")
    assert lab.run("systemctl is-active rosey-bot", check=False).stdout.strip() == "active"


def test_dry_run_changes_nothing(lab, tmp_path):
    path = variant(lab, tmp_path, "dry", {"prometheus": {"version": "2.53.3"}})
    before = lab.run("readlink /usr/local/bin/prometheus").stdout
    r = inv("install-prometheus", "-H", lab.name, "--dry-run", inventory=path)
    assert r.returncode == 0 and "would: prometheus 2.42.0 → 2.53.3" in r.stdout
    assert lab.run("readlink /usr/local/bin/prometheus").stdout == before
    new_release = "/usr/local/lib/rosey-monitoring/prometheus-2.53.3.linux-amd64"
    assert lab.run(f"test -e {new_release}", check=False).code


def test_checksum_mismatch_is_refused_and_changes_nothing(lab, tmp_path):
    path = variant(lab, tmp_path, "badsum", {"prometheus": {"version": "2.53.3", "sha256": "0" * 64}})
    state = "readlink /usr/local/bin/prometheus /usr/local/bin/promtool; ls /usr/local/lib/rosey-monitoring"
    before, pid = lab.run(state).stdout, pids(lab)
    r = inv("install-prometheus", "-H", lab.name, inventory=path)
    assert r.returncode != 0
    want = f"checksum mismatch for prometheus-2.53.3.linux-amd64.tar.gz: expected {'0' * 64}, got "
    assert want in r.stdout
    assert "nothing was installed" in r.stdout
    assert lab.run(state).stdout == before and pids(lab) == pid


def test_a_binary_that_does_not_start_is_rolled_back_and_the_data_kept(lab, secrets, tmp_path):
    """A release whose checksum and `--version` are right but whose server exits at start: install switches
    to it, install-services restarts it, gives up after systemd's crash restarts, switches the links back to
    the release that ran before, restarts that and fails the step with the new binary's journal lines."""
    broken = broken_release.ensure()  # served by the lab's release server like the real archives
    sample = wait_for(lambda: query(lab, secrets, "bot_connected"))[0]
    t_before = float(sample["value"][0])
    running = lab.run("readlink -f /usr/local/bin/prometheus").stdout.strip()
    pid = pids(lab)
    r = inv("sortie6", "-H", lab.name, inventory=variant(lab, tmp_path, "broken",
                                                         {"prometheus": {"version": broken.version}}))
    assert r.returncode == 1, r.stdout
    assert f"prometheus 2.42.0 → {broken.version}" in r.stdout  # install switched it
    head = next(x for x in r.stdout.splitlines() if "did not become healthy" in x)
    assert f"prometheus {broken.version} did not become healthy: it exited and systemd restarted it" in head
    assert "rolled back to prometheus 2.42.0, healthy again (data dir untouched)" in head
    assert "exits at start on purpose" in r.stdout  # the new binary's journal lines
    # the previous release runs again, both links point back at it; Alertmanager was left alone
    assert lab.run("readlink -f /usr/local/bin/prometheus").stdout.strip() == running
    assert "prometheus-2.42.0.linux-amd64/promtool" in lab.run("readlink -f /usr/local/bin/promtool").stdout
    after = pids(lab)
    assert after["alertmanager"] == pid["alertmanager"] and after["prometheus"] != pid["prometheus"]
    assert lab.run(f"sudo readlink /proc/{after['prometheus']}/exe").stdout.strip() == running
    old = wait_for(lambda: query(lab, secrets, "bot_connected", at=t_before))  # the data from before
    assert old and old[0]["value"][1] == "1"
    r = inv("sortie6", "-H", lab.name)  # the inventory's own version again: converges, nothing fails
    assert r.returncode == 0, r.stdout


def test_upgrade_to_3x_switches_restarts_and_keeps_tsdb(lab, secrets, tmp_path):
    """2.42 -> 3.5 LTS in one sortie6: the new config (3.x-only keys) is not reloaded into the old process,
    install-services restarts it with the new binary; the data written before stays queryable."""
    sample = wait_for(lambda: query(lab, secrets, "bot_connected"))[0]
    t_before = float(sample["value"][0])
    pid = pids(lab)
    path = variant(lab, tmp_path, "upgrade", {"prometheus": {"version": "3.5.3"}})
    r = inv("sortie6", "-H", lab.name, inventory=path)
    assert r.returncode == 0, r.stdout
    assert "install-prometheus: changed — prometheus 2.42.0 → 3.5.3" in r.stdout
    assert "restart pending (placed only; install-services loads them): prometheus" in r.stdout
    assert "binary changed" in r.stdout and "restarted" in r.stdout
    assert "3.5.3" in lab.run("/usr/local/bin/prometheus --version").stdout
    after = pids(lab)
    assert after["prometheus"] != pid["prometheus"] and after["alertmanager"] == pid["alertmanager"]
    # the previous release is kept for a rollback; the data written before the switch is still there
    lab.run("test -x /usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64/prometheus")
    old = wait_for(lambda: query(lab, secrets, "bot_connected", at=t_before))
    assert old and old[0]["value"][1] == "1"
    r = inv("sortie6", "-H", lab.name, inventory=path)  # and the upgraded host is steady again
    assert r.returncode == 0 and "changed=0" in r.stdout and pids(lab) == after
    # back to 2.42 would not read 3.x's data: refused in one line, nothing changed
    link = lab.run("readlink /usr/local/bin/prometheus").stdout
    r = inv("install-prometheus", "-H", lab.name)
    assert r.returncode == 1, r.stdout
    assert f"hosts.{lab.name}.prometheus.version: 2.42.0 cannot read the data Prometheus 3.5.3" in r.stdout
    assert lab.run("readlink /usr/local/bin/prometheus").stdout == link and pids(lab) == after


def test_alertmanager_upgrade_by_upload_keeps_silences_and_the_notification_path(lab, secrets, tmp_path):
    """The second half of the live upgrade to today's releases (Prometheus went to 3.5.3 above): Alertmanager
    0.25.0 -> 0.33.1, its archive uploaded from this machine (the guest cannot download it), one restart, a
    silence created before still active after (the data dir kept), and the synthetic drill passes on it."""
    if not (releases_dir() / "alertmanager" / "v0.33.1").is_dir():
        helpers.skip_or_fail("no Alertmanager 0.33.1 release in the lab")
    old = variant(lab, tmp_path, "before", {"prometheus": {"version": "3.5.3"}})
    s = inv("silence", "-H", lab.name, "--duration", "2h", "--comment", "kept across the upgrade",
            "alertname=ChannelEmpty", inventory=old)
    assert s.returncode == 0, s.stdout
    sid = re.search(r"silence (\S+) for 2h", s.stdout).group(1)
    pid = pids(lab)
    path = variant(lab, tmp_path, "upload", {
        "prometheus": {"version": "3.5.3"},
        "alertmanager": {"version": "0.33.1", "source": "upload",
                         "release_url": "http://127.0.0.1:9/unreachable/v{version}",  # must not be used
                         "archive_dir": str(releases_dir() / "alertmanager" / "v0.33.1")}})
    # the guest must not be able to download it: nothing is served for it under that URL
    r = inv("sortie6", "-H", lab.name, inventory=path)
    assert r.returncode == 0, r.stdout
    assert "uploading alertmanager-0.33.1.linux-amd64.tar.gz" in r.stdout
    assert "install-alertmanager: changed — alertmanager 0.25.0 → 0.33.1" in r.stdout
    assert "0.33.1" in lab.run("/usr/local/bin/amtool --version 2>&1").stdout
    after = pids(lab)
    assert after["alertmanager"] != pid["alertmanager"] and after["prometheus"] == pid["prometheus"]
    am = requests.get(lab.url(9093, "/api/v2/silences"), auth=("admin", secrets["web_password"]), timeout=10)
    kept = [x for x in am.json() if x["id"] == sid]
    assert kept and kept[0]["status"]["state"] == "active", am.text
    d = inv("test-alert", "-H", lab.name, "--synthetic", inventory=path)
    assert d.returncode == 0 and "synthetic drill passed" in d.stdout, d.stdout
    u = inv("unsilence", "-H", lab.name, "--id", sid, inventory=path)
    assert u.returncode == 0, u.stdout


def test_unreachable_host_fails_clearly_and_the_other_completes(lab, tmp_path):
    path = variant(lab, tmp_path, "ghost",
                   {"prometheus": {"version": "3.5.3"}, "alertmanager": {"version": "0.33.1"}},
                   extra_hosts={"ghost": {"address": "127.0.0.1",
                                          "ssh": {"port": 2299, "key": "~/.cache/rosey-lab/id_ed25519"},
                                          "secrets_file": "~/.cache/rosey-lab/secrets.yml"}})
    r = inv("sortie6", "-H", f"{lab.name},ghost", inventory=path)
    assert r.returncode != 0
    assert ("[ghost] install-prometheus: FAILED — cannot connect to host ghost (127.0.0.1:2299): connection "
            "refused — check ssh.address/ssh.port in hosts.yml or that the server is up") in r.stdout
    assert f"[{lab.name}] verify: ok" in r.stdout
    recap = r.stdout.split("recap:")[1]
    assert "ghost" in recap and "FAILED" in recap and "failed=0  done" in recap


def test_no_secret_in_any_output_or_guest_log(lab, secrets):
    assert OUTPUTS, "run the module's other tests first"
    for value in secrets.values():
        assert all(value not in out for out in OUTPUTS)
        found = lab.run("sudo journalctl --no-pager | grep -cF -f /dev/stdin || true", stdin=value + "\n")
        assert found.stdout.strip() == "0"
