"""Every release the lab has, run for real on loopback with our rendered units and configs.

For each pair the lab deploys together (2.42.0/0.25.0, 2.53.3/0.28.1, 3.5.3/0.33.1) the rendered units'
ExecStart flags start the real binaries (paths moved to a temp dir): both become ready, Prometheus scrapes the
lab's stand-in bot and both self-scrapes (basic auth), and neither logs a warning about our flags or configs.
The release's own promtool/amtool accept the rendered files without a warning.
"""

from __future__ import annotations

import re
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from fabfile.config.versions import at_least
from tests.local.release_bins import PASSWORD, USER, lab_releases, render_host, running, stand_in_bot, unpack

PAIRS = [("2.42.0", "0.25.0"), ("2.53.3", "0.28.1"), ("3.5.3", "0.33.1")]
JOBS = {"rosey-bot", "prometheus", "alertmanager"}
# log lines that speak about us (flags, config, matchers, scrapes), at warn level or above
_TROUBLE = re.compile(r"level=(warn|warning|error|fatal)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def releases() -> dict[str, dict[str, Path]]:
    """{family: {version: unpacked release dir}}; every pair's versions must be there."""
    out = {fam: {v: unpack(a) for v, a in versions.items()} for fam, versions in lab_releases().items()}
    for prom, am in PAIRS:
        assert prom in out["prometheus"] and am in out["alertmanager"], f"lab lacks {prom}/{am}: {out}"
    return out


def test_the_lab_has_every_version_of_the_matrix(releases: dict[str, dict[str, Path]]) -> None:
    # (a lab test may add a deliberately broken release of its own beside them)
    assert {"2.42.0", "2.53.3", "3.5.3"} <= set(releases["prometheus"])
    assert {"0.25.0", "0.28.1", "0.33.1"} <= set(releases["alertmanager"])
    # 3.x archives are as bare as the official ones: no console dirs to point flags at
    assert not (releases["prometheus"]["3.5.3"] / "consoles").exists()
    assert (releases["prometheus"]["2.53.3"] / "consoles").is_dir()


def _trouble(log: str) -> list[str]:
    return [line for line in log.splitlines() if _TROUBLE.search(line)]


@pytest.mark.parametrize(("prom", "am"), PAIRS, ids=[f"{p}+{a}" for p, a in PAIRS])
def test_rendered_units_run_the_real_release(releases: dict[str, dict[str, Path]], tmp_path: Path,
                                             prom: str, am: str) -> None:
    h = render_host(tmp_path, prom, am)
    flags = " ".join(h.argv("prometheus", releases["prometheus"][prom]))
    assert ("--web.console.templates" in flags) is (not at_least(prom, "3.0.0"))
    with running(h, tmp_path, releases["prometheus"][prom], releases["alertmanager"][am]):
        targets = h.wait_targets_up(JOBS)
        assert targets["rosey-bot"]["scrapeUrl"].endswith("/api/metrics")
        value = h.get("prometheus", "/api/v1/query", query='bot_connected{job="rosey-bot",env="test"}').json()
        assert [r["value"][1] for r in value["data"]["result"]] == ["1"]
        # Alertmanager 0.27+ has no API v1; everything we call is v2
        status = h.get("alertmanager", "/api/v2/status").json()
        assert status["versionInfo"]["version"].startswith(am)
        # Prometheus sees its Alertmanager (discovery through the rendered alerting section)
        ams = h.get("prometheus", "/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        assert [a["url"] for a in ams] == [f"http://localhost:{h.ports['alertmanager']}/api/v2/alerts"]
        logs = {s: h.log(s) for s in ("alertmanager", "prometheus")}  # before the stop's own warn line
        if at_least(am, "0.27.0"):  # (this probe logs a warning of its own)
            assert h.get("alertmanager", "/api/v1/status").status_code in (404, 410)
    assert _trouble(logs["alertmanager"]) == []
    assert _trouble(logs["prometheus"]) == []


@pytest.mark.parametrize(("prom", "am"), PAIRS, ids=[f"{p}+{a}" for p, a in PAIRS])
def test_release_tools_accept_rendered_files_without_warnings(releases: dict[str, dict[str, Path]],
                                                              tmp_path: Path, prom: str, am: str) -> None:
    h = render_host(tmp_path, prom, am)
    promtool, amtool = releases["prometheus"][prom] / "promtool", releases["alertmanager"][am] / "amtool"
    for argv in ([promtool, "check", "config", "prometheus.yml"],
                 [promtool, "check", "rules", "alert_rules.yml"],
                 [promtool, "check", "web-config", "web.yml"], [amtool, "check-config", "alertmanager.yml"]):
        proc = subprocess.run(list(map(str, argv)), capture_output=True, text=True, cwd=h.base)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert not re.search(r"warn|deprecat", out, re.IGNORECASE), out


class _NoContentType(BaseHTTPRequestHandler):
    """A bot that forgets its Content-Type header (the real bot never shipped; its framework may do this)."""

    def do_GET(self) -> None:  # noqa: N802
        body = b"bot_connected 1\nbot_uptime_seconds 5\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


def test_3x_scrapes_a_bot_without_content_type_only_thanks_to_the_fallback(
        releases: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    """Our bot job's fallback_scrape_protocol keeps such a bot scraped on 3.x: without it, `up` is 0."""
    h = render_host(tmp_path, "3.5.3", "0.33.1")
    text = h.rendered.files["prometheus.yml"]
    assert 'fallback_scrape_protocol: "PrometheusText0.0.4"' in text
    bot_job = text[text.index('  - job_name: "rosey-bot"'):text.index('  - job_name: "prometheus"')]
    line = '    fallback_scrape_protocol: "PrometheusText0.0.4"\n'
    bare = bot_job.replace('"rosey-bot"', '"bare"').replace(line, "")
    assert bare != bot_job.replace('"rosey-bot"', '"bare"')
    (h.base / "prometheus.yml").write_text(text + bare)
    bot = stand_in_bot(h.ports["bot"], tmp_path, handler=_NoContentType)
    try:
        h.start("alertmanager", releases["alertmanager"]["0.33.1"])
        h.start("prometheus", releases["prometheus"]["3.5.3"])
        h.wait_ready("prometheus")
        h.wait_targets_up({"rosey-bot"})
        deadline = time.monotonic() + 30
        while (targets := h.targets())["bare"]["health"] == "unknown" and time.monotonic() < deadline:
            time.sleep(0.5)  # not scraped yet
    finally:
        h.stop()
        bot.shutdown()
        bot.server_close()
    assert targets["rosey-bot"]["health"] == "up"
    assert targets["bare"]["health"] == "down"
    assert "Content-Type" in targets["bare"]["lastError"]


def test_rule_unit_tests_pass_under_every_promtool(releases: dict[str, dict[str, Path]]) -> None:
    """The same alert expectations (labels, values, times) hold under 2.42, 2.53 and 3.5 LTS."""
    tests = Path(__file__).resolve().parents[2] / "monitoring" / "tests"
    names = sorted(p.name for p in tests.glob("*.yml"))
    running = {v: subprocess.Popen([str(rel / "promtool"), "test", "rules", *names], cwd=tests, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for v, rel in sorted(releases["prometheus"].items())}
    for version, proc in running.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"promtool {version}:\n{out}"
        assert out.count("SUCCESS") == len(names), f"promtool {version}:\n{out}"


def test_upgrade_2x_to_3_5_keeps_samples_and_silences_on_the_real_binaries(
        releases: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    """What the live upgrade relies on: 3.5.3 reads 2.42.0's TSDB, 0.33.1 keeps 0.25.0's silences."""
    old = render_host(tmp_path / "old", "2.42.0", "0.25.0")
    bot = stand_in_bot(old.ports["bot"], tmp_path)
    try:
        old.start("alertmanager", releases["alertmanager"]["0.25.0"])
        old.start("prometheus", releases["prometheus"]["2.42.0"])
        old.wait_ready("alertmanager")
        old.wait_ready("prometheus")
        old.wait_targets_up(JOBS)
        sample = old.get("prometheus", "/api/v1/query", query="bot_connected").json()["data"]["result"]
        t_before = sample[0]["value"][0]
        silence = {"matchers": [{"name": "alertname", "value": "ChannelEmpty", "isRegex": False}],
                   "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                   "createdBy": "rel-test", "comment": "kept across the upgrade"}
        r = requests.post(old.url("alertmanager", "/api/v2/silences"), json=silence, auth=(USER, PASSWORD),
                          timeout=5)
        assert r.ok, r.text
        silence_id = r.json()["silenceID"]
    finally:
        old.stop()
        bot.shutdown()
        bot.server_close()
    new = render_host(tmp_path / "new", "3.5.3", "0.33.1")
    for data in ("data", "alertmanager-data"):
        (old.base / data).rename(new.base / data)  # the data dirs stay where they are on a server
    try:
        new.start("alertmanager", releases["alertmanager"]["0.33.1"])
        new.start("prometheus", releases["prometheus"]["3.5.3"])
        new.wait_ready("alertmanager")
        new.wait_ready("prometheus")
        kept = new.get("prometheus", "/api/v1/query", query="bot_connected", time=str(t_before)).json()
        silences = {s["id"]: s["status"]["state"] for s in new.get("alertmanager", "/api/v2/silences").json()}
    finally:
        new.stop()
    values = [(r["metric"]["job"], r["value"]) for r in kept["data"]["result"]]
    assert values == [("rosey-bot", [t_before, "1"])]
    assert silences == {silence_id: "active"}
