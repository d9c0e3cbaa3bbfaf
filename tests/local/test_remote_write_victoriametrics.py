"""A real Prometheus release writes into a real VictoriaMetrics (Debian's `victoria-metrics`) on loopback.

The rendered unit's flags and prometheus.yml, basic auth from the secret file against VictoriaMetrics's own
`-httpAuth.*`: the series arrive queryable with the labels we chose (`writer`, `env`, `host`, and the
external `cluster`), rule outputs that lack `host` get it filled, and in agent mode the bot's series arrive
all the same.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fabfile.config import render
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import required_secrets
from fabfile.lab import store
from tests.helpers import skip_or_fail
from tests.local import release_bins as rb

VM_USER, VM_PASSWORD = "rosey", "vm-Basic-pass-9"
AUTH = (VM_USER, VM_PASSWORD)
AM = {"2.53.3": "0.28.1", "3.5.3": "0.33.1"}


@contextlib.contextmanager
def victoria_metrics() -> Iterator[str]:
    """The lab's store (fabfile/lab/store.py) on a free loopback port, stopped by its pidfile after; yields
    its base URL. Its data directory goes with it, and its log once it stopped cleanly."""
    if shutil.which(store.BINARY) is None:
        skip_or_fail("victoria-metrics not installed (scripts/bootstrap.sh installs Debian's package)")
    port = rb.free_port()
    daemon = store.daemon(port, AUTH)
    url = f"http://127.0.0.1:{port}"
    try:
        daemon.ensure_running()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            time.sleep(0.2)
        yield url
    finally:
        daemon.stop()
        shutil.rmtree(store.data_dir(port), ignore_errors=True)
    assert daemon.running_pid() is None and not daemon.pidfile.exists()
    (daemon.run_dir / f"{daemon.name}.log").unlink(missing_ok=True)  # one per free port: they pile up


def _host(tmp: Path, version: str, vm_url: str, agent: bool) -> rb.RenderedHost:
    ports = {k: rb.free_port() for k in ("prometheus", "alertmanager", "bot", "smtp")}
    base = tmp / "base"
    base.mkdir()
    text = rb.host_yaml(base, version, AM[version], ports) + f"""    remote_write:
      - name: vm
        url: {vm_url}/api/v1/write
        auth: basic
        username: {VM_USER}
        queue: {{batch_send_deadline: 1s}}
"""
    if agent:
        text = text.replace("evaluation_interval: 1s}", "evaluation_interval: 1s, mode: agent}")
    (tmp / "hosts.yml").write_text(text)
    inv = load_inventory(tmp / "hosts.yml")
    host = inv.host("h")
    secrets = {"web_password": rb.PASSWORD, "smtp_password": "x-smtp-pass", "webhook_url": "http://127.0.0.1:9/h",
               "remote_write_vm_password": VM_PASSWORD}
    # a rule whose output has no label at all, evaluated every second (the real rules' groups run every 15 s)
    rules = tmp / "rules.yml"
    rules.write_text("groups: [{name: t, interval: 1s, rules: [{record: rosey_up_total, expr: sum(up)}]}]\n")
    wanted = {k: secrets[k] for k in required_secrets(host)}
    rendered = render.render_host(inv, host, wanted, rules_path=rules)
    out = rb.RenderedHost(host, rendered, base, ports)
    out.write()
    return out


def _wait_for(vm_url: str, promql: str, seconds: float = 30) -> list[dict]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = store.query(vm_url, promql, AUTH)
        if found:
            return found
        time.sleep(0.5)
    return []


@pytest.mark.parametrize(("version", "agent"), [("3.5.3", False), ("2.53.3", True)], ids=["server", "agent"])
def test_prometheus_writes_into_victoriametrics(tmp_path: Path, version: str, agent: bool) -> None:
    release = rb.unpack(rb.lab_releases()["prometheus"][version])
    with victoria_metrics() as vm_url:
        h = _host(tmp_path, version, vm_url, agent)
        assert requests.get(f"{vm_url}/api/v1/query", params={"query": "up"}, timeout=5).status_code == 401
        bot = rb.stand_in_bot(h.ports["bot"], tmp_path)
        try:
            h.start("prometheus", release)
            h.wait_ready("prometheus")
            up = _wait_for(vm_url, 'up{job="rosey-bot"}')
            recorded = [] if agent else _wait_for(vm_url, "rosey_up_total")
            log = h.log("prometheus")
        finally:
            h.stop()
            bot.shutdown()
            bot.server_close()
    assert up, f"no sample arrived:\n{log[-2000:]}"
    want = {"writer": "h", "env": "test", "host": "h", "cluster": "rosey-bot",
            "instance": f"localhost:{h.ports['bot']}"}
    assert store.labels_of(up, list(want)) == [want]
    if not agent:  # a rule output has no label of its own: the write relabels filled env and host
        assert recorded, f"no rule output arrived:\n{log[-2000:]}"
        assert recorded[0]["metric"] == {"__name__": "rosey_up_total", "env": "test", "host": "h",
                                         "writer": "h", "cluster": "rosey-bot"}
    assert VM_PASSWORD not in log
