"""The operator's day on a real lab host: `inv status` (real values that move, --json, plain when piped),
`inv ui` tunnels while the firewall keeps 9090/9093 closed, and the runbook's UI checks in a real headless
Chromium (Debian's chromium + chromium-driver, Selenium) logged in with basic auth.

One deployment for the module (tests/lab/deployed.py); `inv status` on two hosts runs in
tests/lab/test_lab_cluster.py, where both are deployed. Screenshots of every page the browser read go to
artefacts/browser/ when a browser check fails. The `inv status` timings are printed (`-s` shows them);
figures belong in bench/, not here.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tests import helpers
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab_fixtures import lab_inventory_path

ARTEFACTS = helpers.REPO / "artefacts" / "browser"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ESC = "\x1b"


# ---------------------------------------------------------------- inv status


def status_json(d, *hosts: str) -> tuple[list[dict], float]:
    t0 = time.monotonic()
    p = d.inv("status", "-H", ",".join(hosts), "--json", timeout=60)
    seconds = time.monotonic() - t0
    assert p.returncode == 0, p.stdout
    return json.loads(p.stdout[:len(p.stdout) - len(p.stderr)]), seconds


def wait_for(read: Callable[[], dict], ok: Callable[[dict], bool], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(5)


def test_status_shows_real_values_that_move_with_the_bot(deployed_lab):
    d = deployed_lab
    [before], seconds = status_json(d, d.host)
    print(f"inv status -H {d.host} --json: {seconds:.1f}s (wall, one host)")
    assert before["ok"] and before["host"] == d.host
    # A sparkline can only show the change if a point of it predates the change: right after the deploy the
    # rate has no point yet (two scrapes in its window, on the minute grid), so wait until it has two.
    before = wait_for(lambda: status_json(d, d.host)[0][0],
                      lambda s: len([e for e in s["history"]["errors"] if e is not None]) >= 2)
    assert [e for e in before["history"]["errors"] if e is not None][-2:] == [0, 0], before["history"]
    assert before["values"]["connected"] == 1 and before["values"]["users"] == 5
    t0 = time.monotonic()
    p = d.inv("status", "-H", d.host, timeout=60)
    print(f"inv status -H {d.host}: {time.monotonic() - t0:.1f}s (wall, one host, table)")
    assert p.returncode == 0 and "connected" in p.stdout and "5 now" in p.stdout

    d.lab.set_bot_state(connected=False, users=3, error_rate=0.5)
    try:
        after = wait_for(lambda: status_json(d, d.host)[0][0],
                         lambda s: s["values"]["connected"] == 0 and s["values"]["users"] == 3
                         and (s["values"]["errors_per_s"] or 0) > 0)
        assert after["values"]["connected"] == 0, after["values"]
        assert after["values"]["users"] == 3 and after["values"]["errors_per_s"] > 0, after["values"]
        users = [u for u in after["history"]["users"] if u is not None]
        assert users[-1] == 3 and 5 in users, f"the users sparkline did not move: {users}"
        errors = [e for e in after["history"]["errors"] if e is not None]
        assert errors[-1] > 0 and min(errors) == 0, f"the errors sparkline did not move: {errors}"

        for env in ({"NO_COLOR": "1"}, {"NO_COLOR": None}):  # piped (captured) either way
            plain = d.inv("status", "-H", d.host, env=env, timeout=60)
            assert plain.returncode == 0
            assert ESC not in plain.stdout, f"escape codes in piped output with {env}"
            assert "DISCONNECTED" in plain.stdout and "3 now" in plain.stdout
    finally:
        d.lab.reset_bot_state()


# ---------------------------------------------------------------- inv ui + the browser


def closed_inventory(d, tmp_path: Path) -> dict[str, str]:
    """A copy of the inventory whose lab host admits only a CIDR without 10.0.2.2 (this machine, as the
    guest sees it) to 9090/9093."""
    import yaml

    doc = yaml.safe_load(lab_inventory_path().read_text())
    doc["hosts"][d.host]["web"] = {"allow_from": ["192.0.2.0/24"]}
    p = tmp_path / "inventory.yml"
    p.write_text(yaml.safe_dump(doc))
    return {"ROSEY_INVENTORY": str(p)}


def answers(url: str, auth: tuple[str, str] | None) -> int:
    try:
        return requests.get(url, auth=auth, timeout=4).status_code
    except requests.RequestException:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def inv_ui(d, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`inv ui -H <host>` as a user runs it; yields the two printed URLs; Ctrl-C (SIGINT) at the end."""
    pp, ap = free_port(), free_port()
    proc = subprocess.Popen([*helpers.INV, "ui", "-H", d.host, "--prometheus-port", str(pp),
                             "--alertmanager-port", str(ap)], cwd=helpers.REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip())
            if "Ctrl-C closes the tunnels" in line:
                break
        text = "\n".join(lines)
        print(text)
        urls = re.findall(r"(http://127\.0\.0\.1:\d+)/", text)
        assert urls == [f"http://127.0.0.1:{pp}", f"http://127.0.0.1:{ap}"], text
        assert "log in as 'admin' with the secret web_password" in text
        yield urls[0], urls[1]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        print(rest)


def debian_web_assets(version: str) -> bytes:
    """Debian's Prometheus reads its (classic) UI's static files from /usr/share/prometheus/web instead of
    embedding them as the official release does; the lab's archives carry Debian's binary, so its UI needs
    them there. A tar of that directory from the same Debian package the lab archive was built from."""
    from fabfile.lab.debs import SUITES, unpack

    for suite in SUITES:
        u = unpack(suite, "prometheus")
        if u is not None and u.upstream_version == version:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(u.root / "usr/share/prometheus/web", arcname="web")
            return buf.getvalue()
    raise AssertionError(f"no Debian prometheus {version} among the lab's suites")


def install_web_assets(d) -> None:
    data = base64.b64encode(debian_web_assets(d.lab.settings.prometheus.version)).decode()
    d.lab.run("sudo mkdir -p /usr/share/prometheus && base64 -d | sudo tar -xzf - -C /usr/share/prometheus",
              stdin=data)


class Browser:
    """Headless Chromium driven by Selenium; every request carries the basic-auth header (CDP), as a
    browser does once the user typed the login into its dialog."""

    def __init__(self, auth: tuple[str, str], profile: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={profile}", "--window-size=1280,1000"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.pages: list[str] = []
        token = base64.b64encode(":".join(auth).encode()).decode()
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                                    {"headers": {"Authorization": f"Basic {token}"}})

    def read(self, url: str, until: Callable[[str], bool] = lambda _: True, timeout: float = 30) -> str:
        """Load `url` and return the page's visible text once `until(text)` holds (or the timeout)."""
        from selenium.webdriver.common.by import By

        self.driver.get(url)
        self.pages.append(url)
        deadline = time.monotonic() + timeout
        while True:
            text = self.driver.find_element(By.TAG_NAME, "body").text
            if until(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.5)

    def screenshots(self, name: str) -> None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        for i, url in enumerate(self.pages):
            with contextlib.suppress(Exception):
                self.driver.get(url)
                self.driver.save_screenshot(str(ARTEFACTS / f"{name}-{i}.png"))
        print(f"screenshots of {len(self.pages)} page(s) in {ARTEFACTS}")

    def quit(self) -> None:
        self.driver.quit()


def test_ui_tunnels_and_the_runbook_ui_checks_in_a_browser(deployed_lab, tmp_path):
    d = deployed_lab
    closed = closed_inventory(d, tmp_path)
    fw = d.inv("firewall", "-H", d.host, env=closed)
    assert fw.returncode == 0 and "firewall: changed" in fw.stdout
    browser = None
    try:
        # the firewall really keeps this machine (10.0.2.2 to the guest) out of 9090/9093
        assert answers(d.lab.url(9090, "/-/healthy"), d.auth) == 0
        assert answers(d.lab.url(9093, "/-/healthy"), d.auth) == 0
        install_web_assets(d)
        with inv_ui(d, closed) as (prom, am):
            assert answers(f"{prom}/-/healthy", d.auth) == 200
            assert answers(f"{am}/-/healthy", d.auth) == 200
            assert answers(f"{prom}/-/healthy", None) == 401  # the tunnel does not bypass the login

            browser = Browser(d.auth, tmp_path / "chromium-profile")
            try:
                # Status -> Targets, reached from the start page as a person would
                start = browser.read(f"{prom}/", lambda t: "Targets" in t or "Prometheus" in t)
                assert "Prometheus" in start, start[:300]
                from selenium.webdriver.common.by import By

                targets_href = browser.driver.find_element(By.XPATH, "//a[text()='Targets']") \
                    .get_attribute("href")
                targets = browser.read(targets_href, lambda t: "rosey-bot (1/1 up)" in t)
                assert "rosey-bot (1/1 up)" in targets, targets[:500]

                # Not checked here yet: the Graph page's table (classic UI, rendered by JavaScript) came up
                # without its assets on the lab's Debian 2.42 build, and Debian's Alertmanager 0.25 ships no
                # web UI at all; `inv status` and verify read the same samples and alerts through the API.
            except BaseException:
                browser.screenshots("operator")
                raise
    finally:
        if browser is not None:
            browser.quit()
        back = d.inv("firewall", "-H", d.host)
        assert back.returncode == 0
        assert answers(d.lab.url(9090, "/-/healthy"), d.auth) == 200
