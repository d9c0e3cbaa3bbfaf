"""Gossip over mutual TLS with the real Alertmanager binary on loopback, using what deploy places: the
cluster's PKI (fabfile/config/pki.py) and the rendered --cluster.tls-config file.

- two members with certificates of one cluster CA form a cluster, and Alertmanager opens no UDP socket;
- a third Alertmanager with another cluster's certificate is refused at the handshake and stays alone;
- one without TLS at all cannot join either.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import requests

from fabfile.alerting.api import free_port
from fabfile.config import render
from fabfile.config.pki import member_tls
from tests.helpers import ALERTMANAGER_BIN


class Member:
    def __init__(self, tmp: Path, name: str, pki: Path | None, cluster: str = "rosey") -> None:
        self.dir = tmp / name
        self.dir.mkdir()
        self.web, self.gossip = free_port(), free_port()
        self.tls: Path | None = None
        if pki is not None:
            tls = member_tls(pki, cluster, name, "127.0.0.1")
            paths = {"ca": self.dir / "gossip_ca.crt", "cert": self.dir / "gossip.crt",
                     "key": self.dir / "gossip.key"}
            for key, text in (("ca", tls.ca_cert), ("cert", tls.cert), ("key", tls.key)):
                paths[key].write_text(text)
            self.tls = self.dir / "gossip_tls.yml"
            self.tls.write_text(render._env().get_template("monitoring/gossip_tls.yml.j2").render(
                cluster=cluster, host=name, **{k: str(v) for k, v in paths.items()}))
        self.proc: subprocess.Popen | None = None

    def start(self, peer: Member | None, config: Path) -> None:
        argv = [ALERTMANAGER_BIN, f"--config.file={config}", f"--storage.path={self.dir}",
                f"--web.listen-address=127.0.0.1:{self.web}",
                f"--cluster.listen-address=127.0.0.1:{self.gossip}",
                f"--cluster.advertise-address=127.0.0.1:{self.gossip}"]
        if peer is not None:
            argv.append(f"--cluster.peer=127.0.0.1:{peer.gossip}")
        if self.tls is not None:
            argv.append(f"--cluster.tls-config={self.tls}")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "am.log", "w"))  # noqa: SIM115

    def peers(self) -> list[str]:
        with contextlib.suppress(requests.RequestException, KeyError, ValueError):
            st = requests.get(f"http://127.0.0.1:{self.web}/api/v2/status", timeout=2).json()["cluster"]
            return sorted(p["address"] for p in st.get("peers") or [])
        return []

    def log(self) -> str:
        return (self.dir / "am.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


def _udp(m: Member) -> str:
    out = subprocess.run(["ss", "-Hlun", f"sport = :{m.gossip}"], capture_output=True, text=True).stdout
    return out.strip()


def _until(check, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    return check()


def test_members_of_one_ca_gossip_and_strangers_are_refused(tmp_path) -> None:
    config = tmp_path / "am.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    pki = tmp_path / "gossip-pki" / "rosey"
    a, b = Member(tmp_path, "a", pki), Member(tmp_path, "b", pki)
    other = Member(tmp_path, "x", tmp_path / "gossip-pki" / "other", cluster="other")
    plain = Member(tmp_path, "p", None)
    members = (a, b, other, plain)
    try:
        a.start(b, config)
        b.start(a, config)
        both = sorted(f"127.0.0.1:{m.gossip}" for m in (a, b))
        assert _until(lambda: a.peers() == both and b.peers() == both), (a.peers(), a.log())
        assert "using TLS for gossip" in a.log()
        assert _udp(a) == ""  # over TLS the gossip is TCP only: the firewall leaves UDP shut
        other.start(a, config)
        plain.start(a, config)
        assert _until(lambda: _udp(plain))  # the same check sees the plaintext member's UDP socket
        _until(lambda: "unknown authority" in other.log() or "failed to join" in other.log())
        time.sleep(5)  # a join that went through would show in the members' lists by now
        assert "unknown authority" in other.log(), other.log()
        assert a.peers() == both and b.peers() == both  # neither stranger got in
        for m in (other, plain):  # each alone in its own cluster (its API may still be starting)
            assert _until(lambda m=m: m.peers() == [f"127.0.0.1:{m.gossip}"]), (m.peers(), m.log())
    finally:
        for m in members:
            m.stop()
