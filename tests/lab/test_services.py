"""install-services on a real server: --dry-run shows the unit diff and what would restart, changing nothing;
the real run then restarts only the service whose unit changed, and a second run is a no-op."""

from __future__ import annotations

import re

from fabfile.config import layout
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)

MARK = "# edited on the server by the lab test"


def test_dry_run_shows_what_would_be_written_and_restarted_then_the_real_run_does_it(deployed_lab):
    d = deployed_lab
    name = d.lab.name
    unit = layout.remote_path(d.lab.settings, "alertmanager.service")
    d.lab.run(f"echo '{MARK}' | sudo tee -a {unit} >/dev/null", check=True)
    before = d.main_pids()

    dry = d.inv("install-services", "-H", name, "--dry-run")
    assert dry.returncode == 0, dry.stdout
    assert "would: alertmanager: unit updated, restarted (dry run)" in dry.stdout
    assert f"would write {unit}" in dry.stdout and f"-{MARK}" in dry.stdout
    assert "would run: systemctl daemon-reload" in dry.stdout
    assert "would restart alertmanager.service (unit updated) and wait for /-/healthy" in dry.stdout
    assert "prometheus.service" not in dry.stdout
    d.assert_no_secret(dry.stdout)
    assert MARK in d.lab.run(f"cat {unit}", check=True).stdout  # nothing written
    assert d.main_pids() == before  # nothing restarted

    real = d.inv("install-services", "-H", name)
    assert real.returncode == 0, real.stdout
    assert re.search(r"install-services: changed — alertmanager: unit updated, restarted", real.stdout)
    after = d.main_pids()
    assert after["prometheus"] == before["prometheus"] and after["alertmanager"] != before["alertmanager"]
    assert MARK not in d.lab.run(f"cat {unit}", check=True).stdout

    again = d.inv("install-services", "-H", name)
    assert again.returncode == 0 and "install-services: ok" in again.stdout
    assert d.main_pids() == after


def test_units_are_hardened_on_the_real_systemd(deployed_lab):
    """The guest's own systemd rates the running units (the services started, scrape and send mail under
    them: the rest of the lab suite runs on these units)."""
    d = deployed_lab
    for svc in ("prometheus", "alertmanager"):
        out = d.lab.run(f"systemd-analyze security --no-pager {svc}.service", check=True).stdout
        m = re.search(rf"Overall exposure level for {svc}\.service: ([\d.]+)", out)
        assert m, out
        print(f"{svc}.service on the lab host: systemd-analyze security exposure {m.group(1)}")
        assert float(m.group(1)) <= 2.5, out
        assert d.lab.run(f"systemctl is-active {svc}").stdout.strip() == "active"


def test_new_units_on_this_hosts_debian_leave_no_reload_pending(deployed_lab):
    """On the host's own Debian (the lone lab host runs 13, the pair 12): units installed new are loaded
    with nothing pending, so the next run is a no-op. Debian 13's systemd 257 said NeedDaemonReload=yes
    after `enable --no-reload` and the second sortie6 reported "install-services: changed — prometheus: ;"."""
    d = deployed_lab
    release = d.lab.settings.lab.release
    assert d.lab.run(". /etc/os-release; echo $VERSION_CODENAME").stdout.strip() == release
    units = " ".join(f"{s}.service" for s in layout.SERVICES)
    paths = " ".join(layout.remote_path(d.lab.settings, f"{s}.service") for s in layout.SERVICES)
    d.lab.run(f"sudo systemctl disable --now --quiet {units} && sudo rm -f {paths} && sudo systemctl "
              "daemon-reload", check=True)  # a host that never had them (data dirs stay)

    first = d.inv("install-services", "-H", d.host)
    assert first.returncode == 0, first.stdout
    assert "install-services: changed — prometheus: unit installed, enabled, started" in first.stdout
    show = d.lab.run(f"systemctl show -p LoadState,NeedDaemonReload,UnitFileState {units}").stdout
    assert sorted(show.split()) == sorted(["LoadState=loaded", "NeedDaemonReload=no",
                                           "UnitFileState=enabled"] * 2), show
    again = d.inv("install-services", "-H", d.host)
    assert again.returncode == 0 and "install-services: ok" in again.stdout, again.stdout
