"""web.tls on the real releases: the rendered units start Prometheus and Alertmanager on HTTPS with the
certificate from the project's web CA, Prometheus scrapes itself and Alertmanager and sends alerts over
HTTPS trusting only that CA, plain HTTP is refused, the release's promtool accepts web_tls.yml, and a
client that does not trust the CA gets no answer (its TLS check fails, not a 401)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import requests

from fabfile.config import layout
from fabfile.config.needed_secrets import WEB_TLS_CONFIG
from tests.local.release_bins import PASSWORD, USER, lab_releases, render_host, running, unpack

# the oldest and the newest pair the lab deploys
PAIRS = [("2.42.0", "0.25.0"), ("3.5.3", "0.33.1")]
JOBS = {"rosey-bot", "prometheus", "alertmanager"}


@pytest.fixture(scope="module")
def releases() -> dict[str, dict[str, Path]]:
    return {fam: {v: unpack(a) for v, a in versions.items()} for fam, versions in lab_releases().items()}


@pytest.mark.parametrize(("prom", "am"), PAIRS, ids=[f"{p}+{a}" for p, a in PAIRS])
def test_the_stack_runs_on_https_with_the_rendered_files(releases, tmp_path: Path, prom: str, am: str):
    h = render_host(tmp_path, prom, am, tls=True)
    web_tls = layout.secret_path(h.host, WEB_TLS_CONFIG)
    promtool = releases["prometheus"][prom] / "promtool"
    check = subprocess.run([str(promtool), "check", "web-config", web_tls], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with running(h, tmp_path, releases["prometheus"][prom], releases["alertmanager"][am]):
        targets = h.wait_targets_up(JOBS)
        # the self-scrapes went over HTTPS, checked against the web CA (an unchecked cert would be an error)
        for job in ("prometheus", "alertmanager"):
            assert targets[job]["scrapeUrl"].startswith("https://localhost:"), targets[job]
        ams = h.get("prometheus", "/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        assert [a["url"] for a in ams] == [f"https://localhost:{h.ports['alertmanager']}/api/v2/alerts"]
        logs = {s: h.log(s) for s in ("alertmanager", "prometheus")}  # before the deliberate bad clients
        for svc in ("prometheus", "alertmanager"):
            plain = requests.get(f"http://127.0.0.1:{h.ports[svc]}/-/healthy", auth=(USER, PASSWORD),
                                 timeout=5)
            assert plain.status_code == 400, (svc, plain.status_code)
            # a client that trusts only the system's CAs does not get through
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(h.url(svc, "/-/healthy"), auth=(USER, PASSWORD), timeout=5)
            assert requests.get(h.url(svc, "/-/healthy"), timeout=5, verify=h.ca_file).status_code == 401
    for svc, log in logs.items():
        assert not [ln for ln in log.splitlines() if re.search(r"level=(warn|error)|TLS handshake error", ln,
                                                               re.IGNORECASE)], (svc, log[-2000:])
