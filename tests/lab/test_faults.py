"""Faults on a real server (issue 9, item 7): the disk full, a reload that hangs, the SSH connection dropped
in the middle of deploy-configs and of an install. Each ends with one clear line, leaves the previous config
or binary running, and a re-run converges.

The connection is dropped from the guest's side, the way a network cut or a reboot of a NAT box looks to the
server: a helper started by systemd (so it outlives SSH sessions) waits for the moment, then kills the SSH
user's session processes.
"""

from __future__ import annotations

import re
import shlex
import time

from fabfile.config.rules_file import RULES_ENV
from fabfile.ssh.stage import STAGE_ROOT
from fabfile.ssh.transport import DEPLOY_LOCK
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab.test_configs import RELOAD_RULE as FAULT_RULE
from tests.lab.test_configs import STATE, reload_ok, rule_names, rules_file
from tests.lab.test_deploy_install import variant

RULES = "/opt/rosey-bot/monitoring/alert_rules.yml"
CONFIG_DIR = "/opt/rosey-bot/monitoring"
FILL = "/var/tmp/rosey-test-fill"
HELPER = "rosey-test-drop-ssh"


def _lock_free(d, timeout: float = 180) -> bool:
    """The server-side script of a dropped run has finished (it holds the deploy lock to its end)."""
    r = d.lab.run(f"for _ in $(seq 1 {int(timeout)}); do flock -n {DEPLOY_LOCK} true && exit 0; sleep 1; "
                  "done; exit 1", timeout=timeout + 30)
    return r.ok


def _leftovers(d) -> str:
    return d.lab.run("sudo ls -d /tmp/rosey-* /run/rosey-* /opt/rosey-bot/monitoring/*.rosey-* "
                     "2>/dev/null; true").stdout.strip()


def _drop_ssh_when(d, condition: str) -> None:
    """Start the helper: once `condition` (shell) holds, kill every SSH session of the deploy user (OpenSSH
    10, Debian 13, names a session's process `sshd-session: USER@...`, older ones `sshd: USER@...`)."""
    user = d.lab.settings.ssh.user
    script = (f"for _ in $(seq 1 6000); do if {condition}; then "
              f"pkill -KILL -f '^sshd(-session)?: {user}@' && echo 'dropped the SSH session'; exit 0; fi; "
              "sleep 0.05; "
              "done; echo 'the moment never came'")
    d.lab.run(f"sudo systemd-run --quiet --collect --unit={HELPER} bash -c {shlex.quote(script)}", check=True)


def _helper_log(d) -> str:
    d.lab.run(f"sudo systemctl stop {HELPER} 2>/dev/null; true")
    return d.lab.run(f"sudo journalctl -u {HELPER} -o cat --no-pager").stdout


def _lost_line(out: str) -> None:
    assert re.search(r"FAILED — .*the SSH connection was lost before it finished; the server carries the "
                     r"change through on its own", out), out
    assert "Traceback" not in out


def test_a_full_disk_stops_deploy_configs_before_anything_changes(deployed_lab, tmp_path):
    d = deployed_lab
    before, live = d.lab.run(STATE, check=True).stdout, rule_names(d)
    env = {RULES_ENV: str(rules_file(tmp_path, FAULT_RULE))}
    # where the uploads are staged decides which write the full disk refuses: asked, not assumed by release
    devices = d.lab.run(f"stat -c %d {STAGE_ROOT} {CONFIG_DIR}", check=True).stdout.split()
    staged_on_root = len(set(devices)) == 1
    print(f"staging {STAGE_ROOT} on the config dir's filesystem: {staged_on_root}")
    # every free block of / (root may use the reserved ones too), then the last few byte by byte; ext4
    # keeps a pool for its own metadata that `stat -f` counts as free but nobody can write to
    fill = (f"fallocate -l $(( $(stat -f -c '%f*%S' /) - 4194304 )) {FILL}; "
            f"{{ dd if=/dev/zero of={FILL}.2 bs=4k; dd if=/dev/zero of={FILL}.3 bs=1; true; }} 2>/dev/null; "
            f"df -Pk / | awk 'NR==2 {{print $4}}'; dd if=/dev/zero of={FILL}.4 bs=64k count=1 2>&1 | "
            "grep -c 'No space left'")
    try:
        free = d.lab.run(f"sudo bash -c {shlex.quote(fill)}", check=True, timeout=300).stdout.split()
        assert free == ["0", "1"], f"not full: {free} (KiB available, root's write refused)"
        p = d.inv("deploy-configs", "-H", d.host, env=env)
        full = d.lab.run(STATE, check=True).stdout
    finally:
        d.lab.run(f"sudo rm -f {FILL} {FILL}.2 {FILL}.3 {FILL}.4", check=True)
    assert p.returncode == 1, p.stdout
    if staged_on_root:  # the upload is what the full disk refuses
        assert re.search(r"deploy-configs: FAILED — uploading alert_rules\.yml to \S+ failed \(.*\): no "
                         r"space left on the server \(/tmp has 0 KiB free\); free some space \(df -h\), then "
                         r"run again\. Nothing was changed", p.stdout), p.stdout
    else:  # /tmp elsewhere (Debian 13's tmpfs): the upload goes through, the copy into place is refused
        assert re.search(r"deploy-configs: FAILED — could not activate configs: .*No space left on "
                         r"device.*; the previous files are in place, nothing reloaded; the server's disk is "
                         r"full: free some space \(df -h\), then run again$", p.stdout, re.M), p.stdout
    assert "Traceback" not in p.stdout
    d.assert_no_secret(p.stdout)
    assert full == before  # nothing touched while the disk was full
    assert rule_names(d) == live and reload_ok(d) == {"prometheus": "1", "alertmanager": "1"}
    again = d.inv("deploy-configs", "-H", d.host, env=env)  # space again: the same command goes through
    assert again.returncode == 0 and "deploy-configs: changed" in again.stdout, again.stdout
    assert "ReloadTestRule" in rule_names(d)
    assert _leftovers(d) == ""


def test_a_reload_that_hangs_is_bounded_and_the_previous_files_come_back(deployed_lab, tmp_path):
    """Prometheus frozen (SIGSTOP): it never confirms; the step gives up after its wait, puts the previous
    files back, and says the service does not answer. Woken up, Prometheus loads the files that are there."""
    d = deployed_lab
    d.inv("deploy-configs", "-H", d.host)  # the inventory's own rules (a test before may have added one)
    pid = d.main_pids()["prometheus"]
    before, live = d.lab.run(STATE, check=True).stdout, rule_names(d)
    env = {RULES_ENV: str(rules_file(tmp_path, FAULT_RULE))}
    d.lab.run(f"sudo kill -STOP {pid}", check=True)
    try:
        t0 = time.monotonic()
        p = d.inv("deploy-configs", "-H", d.host, env=env)
        took = time.monotonic() - t0
        frozen = d.lab.run(STATE, check=True).stdout
    finally:
        d.lab.run(f"sudo kill -CONT {pid}", check=True)
    assert p.returncode == 1, p.stdout
    assert ("prometheus: reload not confirmed within 45 s: it does not answer at all (hung? systemctl status "
            "prometheus)") in p.stdout
    assert "previous files restored, but their reload was not confirmed either: check the server" in p.stdout
    assert "prometheus: reload not confirmed within 10 s" in p.stdout  # the short second wait
    print(f"hung reload: the step ended after {took:.0f}s")
    assert took < 45 + 10 + 90, took  # both waits plus the command's own time (slow beside other VMs)
    assert frozen == before  # the previous files, byte for byte, while it was still frozen
    end = time.monotonic() + 60  # awake: the pending SIGHUP makes it read the (previous) files
    while reload_ok(d)["prometheus"] != "1" and time.monotonic() < end:
        time.sleep(2)
    assert reload_ok(d) == {"prometheus": "1", "alertmanager": "1"}
    assert rule_names(d) == live and d.main_pids()["prometheus"] == pid
    assert _leftovers(d) == ""


def test_ssh_dropped_during_deploy_configs_the_server_finishes_and_a_rerun_is_a_noop(deployed_lab, tmp_path):
    d = deployed_lab
    d.inv("deploy-configs", "-H", d.host)
    pids, live = d.main_pids(), rule_names(d)
    assert "ReloadTestRule" not in live
    env = {RULES_ENV: str(rules_file(tmp_path, FAULT_RULE))}
    ino = d.lab.run(f"stat -c %i {RULES}", check=True).stdout.strip()
    _drop_ssh_when(d, f'[ "$(stat -c %i {RULES})" != {ino} ]')  # the new rules file just landed
    try:
        p = d.inv("deploy-configs", "-H", d.host, env=env)
    finally:
        log = _helper_log(d)
    assert "dropped the SSH session" in log, log
    assert p.returncode == 1, p.stdout
    _lost_line(p.stdout)
    d.assert_no_secret(p.stdout)
    assert _lock_free(d), "the server-side script did not finish"
    # it went through to its end on its own: files in place, Prometheus reloaded (not restarted) and happy
    assert "ReloadTestRule" in rule_names(d)
    assert reload_ok(d) == {"prometheus": "1", "alertmanager": "1"}
    assert d.main_pids() == pids
    assert _leftovers(d) == ""
    again = d.inv("deploy-configs", "-H", d.host, env=env)
    assert again.returncode == 0 and "deploy-configs: ok" in again.stdout, again.stdout


def test_ssh_dropped_during_an_install_keeps_the_old_binary_running_and_a_rerun_converges(deployed_lab,
                                                                                          tmp_path):
    d = deployed_lab
    old = d.lab.settings.alertmanager.version
    new = next(v for v in ("0.28.1", "0.33.1") if v != old)  # another of the lab's releases, whichever host
    pid = d.main_pids()["alertmanager"]
    running = d.lab.run(f"sudo readlink /proc/{pid}/exe", check=True).stdout.strip()
    path = variant(d.lab, tmp_path, "am-next", {"alertmanager": {"version": new}})
    _drop_ssh_when(d, "ls -d /tmp/rosey-install.* >/dev/null 2>&1")  # fetching/unpacking the archive
    try:
        p = d.inv("sortie6", "-H", d.host, env={"ROSEY_INVENTORY": str(path)})
    finally:
        log = _helper_log(d)
    assert "dropped the SSH session" in log, log
    assert p.returncode == 1, p.stdout
    _lost_line(p.stdout)
    assert "install-services" not in p.stdout.split("FAILED", 1)[1].split("recap")[0]  # nothing after it
    assert _lock_free(d), "the server-side script did not finish"
    # the old binary ran all along (the restart is install-services' job, which never ran)
    assert d.main_pids()["alertmanager"] == pid
    assert d.lab.run(f"sudo readlink /proc/{pid}/exe", check=True).stdout.strip() == running
    assert new in d.lab.run("readlink -f /usr/local/bin/alertmanager", check=True).stdout  # switched whole
    assert _leftovers(d) == ""
    again = d.inv("sortie6", "-H", d.host, env={"ROSEY_INVENTORY": str(path)})
    assert again.returncode == 0, again.stdout
    assert re.search(r"install-alertmanager: ok", again.stdout), again.stdout  # nothing left to fetch
    assert new in d.lab.run("/usr/local/bin/alertmanager --version 2>&1", check=True).stdout
    assert d.main_pids()["alertmanager"] != pid  # restarted once, onto the new binary
    back = d.inv("sortie6", "-H", d.host)  # the inventory's own version again, for the modules after
    assert back.returncode == 0, back.stdout
    assert old in d.lab.run(f"sudo readlink /proc/{d.main_pids()['alertmanager']}/exe", check=True).stdout
