"""unit_state's snippet run for real by bash against a stand-in systemctl (its parsing:
tests/pure/test_unit_state.py)."""

from __future__ import annotations

from fabfile.facts import units as unit_state


def test_the_snippet_itself_read_through_a_stand_in_systemctl(host, tmp_path, monkeypatch):
    """The shell part, run for real: a stand-in `systemctl` answers for one running process (a real one,
    so /proc/<pid>/exe resolves) and one unit that is not there; links, unit files and the clock are real."""
    import subprocess

    from fabfile.config import layout

    release, bins, units, stub = (tmp_path / n for n in ("release", "bin", "units", "stub"))
    for d in (release, bins, units, stub):
        d.mkdir()
    (release / "prometheus").write_text("x")
    (bins / "prometheus").symlink_to(release / "prometheus")
    (units / "prometheus.service").write_text("[Unit]\n")
    monkeypatch.setattr(layout, "BIN_DIR", str(bins))
    monkeypatch.setattr(layout, "SYSTEMD_DIR", str(units))
    proc = subprocess.Popen(["sleep", "30"])
    try:
        (stub / "systemctl").write_text(
            "#!/bin/sh\n"
            f"printf 'MainPID={proc.pid}\\nId=prometheus.service\\nActiveState=active\\n"
            "UnitFileState=enabled\\nNeedDaemonReload=no\\nExecMainStartTimestampMonotonic=1000000\\n\\n"
            "MainPID=0\\nId=alertmanager.service\\nActiveState=inactive\\nUnitFileState=\\n"
            "NeedDaemonReload=no\\nExecMainStartTimestampMonotonic=0\\n'\n")
        (stub / "systemctl").chmod(0o755)
        env = {"PATH": f"{stub}:/usr/bin:/bin", "LC_ALL": "C"}
        out = subprocess.run(["bash", "-c", unit_state.snippet(host)], capture_output=True, text=True,
                             env=env, timeout=30).stdout
    finally:
        proc.kill()
        proc.wait()
    got = unit_state.parse(host, out)
    p, a = got["prometheus"], got["alertmanager"]
    assert p.running and p.main_pid == proc.pid and p.enabled == "enabled"
    assert p.exe.endswith("/sleep") and p.binary == str(release / "prometheus")  # another binary: pending
    assert p.restart_pending
    assert p.unit_mtime == int((units / "prometheus.service").stat().st_mtime)
    assert p.started > 0  # one second after this machine booted, in epoch seconds
    assert not a.running and a.exe == "" and a.binary == str(bins / "alertmanager") and a.unit_mtime == 0
