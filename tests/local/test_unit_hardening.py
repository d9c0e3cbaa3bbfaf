"""The rendered systemd units are hardened: `systemd-analyze security` (offline, on the unit files) rates
both at or below 2.5. The lab tests run these same units on a real systemd (services start, reload, scrape,
send mail, pass the drill) and print the score the guest's systemd gives them (tests/lab/test_services.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.local.release_bins import render_host

TARGET = 2.5


def exposure(unit: Path) -> float:
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    return float(m.group(1))


@pytest.mark.parametrize(("prom", "am"), [("2.42.0", "0.25.0"), ("3.5.3", "0.33.1")])
def test_both_units_rate_at_most_2_5(tmp_path: Path, prom: str, am: str) -> None:
    h = render_host(tmp_path, prom, am)
    for name in ("prometheus.service", "alertmanager.service"):
        unit = tmp_path / name
        unit.write_text(h.rendered.files[name])
        score = exposure(unit)
        print(f"{name} ({prom}/{am}): systemd-analyze security exposure {score}")
        assert score <= TARGET, f"{name}: exposure {score} > {TARGET}"
        text = unit.read_text()
        assert "SystemCallFilter=@system-service" in text and "ProtectKernelTunables=true" in text
