"""Adversarial inputs against the real CLI (issue #30): malformed inventories, secrets and command lines.

Each case runs `inv` in a new process (render, sortie6 --dry-run and the other tasks' flags) with an
inventory whose host is 127.0.0.1 on a port nothing listens on, so nothing but loopback is ever contacted.
An outcome is one of:

  clean           one `error:` line on stderr, exit 2 (or, for a case that must run, no traceback)
  traceback       a Python traceback, or more than one line where one was due
  accepted-wrong  bad input that was accepted (exit 0/1 instead of 2)

    /work/venv/bin/python bench/adversarial_inputs.py [-v] [-k SUBSTRING] [-j 2]

Prints one line per case that is not clean, then the counts; exit 1 when any case is not clean.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INV = [str(Path(sys.executable).with_name("inv"))]
BIG = "1" * 5000  # over Python's 4300-digit int() limit
PW = "correct-horse-battery"
NO_PORT = "9"  # discard: nothing listens on this machine's loopback


@dataclass
class Case:
    name: str
    host: dict[str, str] = field(default_factory=dict)  # dotted key -> raw YAML text for hosts.h
    args: tuple[str, ...] = ("render", "-H", "h", "--out", "TMP/rendered")
    reject: bool = True  # bad input: must end in one line, exit 2
    text: str | None = None  # the whole hosts.yml instead (HOST marks where the host block goes)
    secrets: bytes | None = None
    env: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, bytes | None] = field(default_factory=dict)  # relative path -> content (None: a dir)
    expect: str = ""  # a text the one line must contain


def _nest(flat: dict[str, str]) -> dict:
    out: dict = {}
    for key, raw in flat.items():
        parts = key.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = raw
    return out


def _block(tree: dict, indent: int) -> str:
    lines = []
    for k, v in tree.items():
        if isinstance(v, dict):
            lines.append(" " * indent + f"{k}:")
            lines.append(_block(v, indent + 2))
        else:
            lines.append(" " * indent + f"{k}: {v}")
    return "\n".join(lines)


BASE = f"""\
defaults:
  ssh: {{port: {NO_PORT}, connect_timeout: 3}}
  receivers:
    email: {{to: [a@b.test], from: c@b.test, smarthost: "127.0.0.1:9"}}
hosts:
HOST
"""


def inventory_text(case: Case) -> str:
    host = {"address": "127.0.0.1", "secrets_file": "secrets.yml", **case.host}
    block = "  h:\n" + _block(_nest(host), 4)
    return (case.text or BASE).replace("HOST", block)


def run(case: Case, tmp: Path, repo: Path = REPO) -> tuple[str, str]:
    """(outcome, detail) of one case."""
    (tmp / "hosts.yml").write_text(inventory_text(case))
    if case.secrets is not None:
        (tmp / "secrets.yml").write_bytes(case.secrets)
    for rel, content in case.files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            p.mkdir(exist_ok=True)
        else:
            p.write_bytes(content)
    env = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    env.update({b"ROSEY_INVENTORY": str(tmp / "hosts.yml").encode(), b"ROSEY_WEB_PASSWORD": PW.encode(),
                b"HOME": str(tmp).encode(), b"PYTHONIOENCODING": b"utf-8"})
    env.update({k.encode(): v for k, v in case.env.items()})
    args = [a.replace("TMP", str(tmp)) for a in case.args]
    try:
        p = subprocess.run([*INV, *args], cwd=repo, env=env, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "traceback", "timed out after 120 s"
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if "Traceback" in out + err:
        return "traceback", (err or out).strip().splitlines()[-1][:160]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if p.returncode == 2 and not lines:  # the deploy runner's form: on stdout, then one line of its own
        lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("nothing was changed")]
    if not case.reject:
        return "clean", f"exit {p.returncode}"
    if p.returncode != 2:
        return "accepted-wrong", f"exit {p.returncode}: {(err or out).strip()[-160:]!r}"
    if len(lines) != 1 or not lines[0].startswith("error: ") or len(lines[0]) > 600:
        return "traceback", f"{len(lines)} lines: {err.strip()[:160]!r}"
    if case.expect and case.expect not in lines[0]:
        return "accepted-wrong", f"line lacks {case.expect!r}: {lines[0][:200]!r}"
    return "clean", lines[0][:200]


DRY = ("sortie6", "-H", "h", "--dry-run")


def cases() -> list[Case]:  # noqa: PLR0915 - a flat list reads best
    c: list[Case] = []
    add = c.append
    # -- numbers: huge, over their bound, non-ASCII, spelled, wrong type, in every numeric setting
    numeric = ["ssh.port", "ssh.connect_timeout", "bot_port", "prometheus.port", "alertmanager.port",
               "alertmanager.cluster_port"]
    for key in numeric:
        add(Case(f"{key}: 5000 digits", {key: BIG}, expect=key.split(".")[-1]))
    add(Case("connect_timeout over bound", {"ssh.connect_timeout": "99999999999"}, DRY))
    add(Case("connect_timeout 0", {"ssh.connect_timeout": "0"}))
    add(Case("connect_timeout -1", {"ssh.connect_timeout": "-1"}))
    add(Case("connect_timeout float", {"ssh.connect_timeout": "1.5"}))
    add(Case("connect_timeout 1e9", {"ssh.connect_timeout": "1e9"}))
    add(Case("bot_port 70000", {"bot_port": "70000"}))
    add(Case("bot_port fullwidth", {"bot_port": '"８００１"'}))
    add(Case("prometheus.port true", {"prometheus.port": "true"}))
    add(Case("ssh.port 1:22", {"ssh.port": "1:22"}))
    add(Case("ssh.port superscript", {"ssh.port": '"2²"'}))
    add(Case("open_ports 5000 digits", {"firewall.open_ports": f"[{BIG}]"}))
    add(Case("open_ports arabic digit", {"firewall.open_ports": '["٥"]'}))
    add(Case("close_ports 0", {"firewall.close_ports": "[0]"}))
    add(Case("retention_size huge", {"prometheus.retention_size": "99999999999999999999999EB"}))
    add(Case("retention_time huge", {"prometheus.retention_time": "99999999999999999999999d"}))
    add(Case("retention_time 5000 digits", {"prometheus.retention_time": BIG + "d"}))
    add(Case("scrape_interval 0s", {"prometheus.scrape_interval": "0s"}))
    add(Case("repeat_interval 5000 digits", {"alertmanager.repeat_interval": BIG + "h"}))
    add(Case("group_wait huge", {"alertmanager.group_wait": "99999999999y"}))
    add(Case("version 5000 digits", {"prometheus.version": f'"{BIG}.0.0"'}))
    add(Case("version fullwidth", {"prometheus.version": '"２.48.0"'}))
    add(Case("version float", {"prometheus.version": "2.48"}))
    add(Case("business start 25:00", {"business_hours.start": '"25:00"'}))
    add(Case("business start unquoted 09:00 (YAML: a string)", {"business_hours.start": "09:00"},
             reject=False))
    add(Case("business start unquoted 17:00 (base 60)", {"business_hours.start": "17:00"}))
    add(Case("smarthost port 5000 digits", {"receivers.email.smarthost": f'"h.test:{BIG}"'}))
    # -- text: YAML changes it, or it is not one safe line
    add(Case("username yes", {"web.username": "yes"}))
    add(Case("username 0x1F", {"web.username": "0x1F"}))
    add(Case("address 0x7f000001", {"address": "0x7f000001"}))
    add(Case("env 010", {"env": "010"}))
    add(Case("username newline", {"web.username": '"a\\nb"'}))
    add(Case("address with space", {"address": '"a b"'}))
    add(Case("env non-ascii", {"env": '"tëst"'}))
    add(Case("ssh.user injection", {"ssh.user": '"root;rm"'}))
    add(Case("ssh.key number", {"ssh.key": BIG}))
    add(Case("secrets_file number", {"secrets_file": "12"}))
    add(Case("archive_dir bool", {"prometheus.archive_dir": "true"}))
    add(Case("peer_address 5000 digits", {"peer_address": BIG}))
    add(Case("peer_address fullwidth", {"peer_address": '"１０.0.0.1"'}))
    add(Case("host_key short fingerprint", {"ssh.host_key": '"SHA256:abc"'}))
    add(Case("sha256 uppercase", {"prometheus.sha256": '"' + "A" * 64 + '"'}))
    add(Case("aliases ~", text=BASE.replace("HOST", "  ~: {address: 127.0.0.1}"), args=("render",)))
    add(Case("aliases 1 and '1'", text=BASE.replace("HOST", '  1: {address: 127.0.0.1}\n  "1": {address: '
                                                             '127.0.0.2}'), args=("render", "-H", "1")))
    add(Case("aliases h-1 h_1", text=BASE.replace("HOST", "  h-1: {address: 127.0.0.1}\n  h_1: {address: "
                                                           "127.0.0.2}"), args=("render", "-H", "h-1")))
    add(Case("alias 5000 digits", text=BASE.replace("HOST", f"  {BIG}: {{address: 127.0.0.1}}"),
             args=("render", "-H", "x")))
    # -- who may reach the UIs
    add(Case("allow_from 203.0.113.7/0 (host bits)", {"web.allow_from": "[203.0.113.7/0]"}, expect="/0"))
    for nets in ("[0.0.0.0/0]", '["::/0"]', "[0.0.0.0/1, 128.0.0.0/1]",
                 '["::/1", "8000::/1"]'):
        add(Case(f"allow_from {nets} without auth", {"web.allow_from": nets, "web.basic_auth": "false"},
                 expect="basic_auth"))
    add(Case("allow_from any and a CIDR", {"web.allow_from": "[any, 10.0.0.0/8]"}))
    add(Case("allow_from /33", {"web.allow_from": "[10.0.0.0/33]"}))
    add(Case("allow_from fullwidth prefix", {"web.allow_from": '["10.0.0.0/８"]'}))
    add(Case("allow_from 5000 digit prefix", {"web.allow_from": f'["10.0.0.0/{BIG}"]'}))
    add(Case("allow_from empty", {"web.allow_from": "[]"}))
    # -- where things go, what is fetched
    add(Case("base_dir /home/rosey", {"base_dir": "/home/rosey"}))
    add(Case("base_dir /opt", {"base_dir": "/opt"}))
    add(Case("base_dir /opt/../etc", {"base_dir": "/opt/../etc"}))
    add(Case("base_dir /var/lib", {"base_dir": "/var/lib"}))
    add(Case("release_url format spec", {"prometheus.release_url": '"https://x.test/{version:x}"'}))
    add(Case("release_url http no sha", {"prometheus.release_url": '"http://x.test/{version}"'}))
    add(Case("release_url ftp", {"prometheus.release_url": '"ftp://x.test/{version}"'}))
    add(Case("release_url newline", {"prometheus.release_url": '"https://x.test/\\n{version}"'}))
    add(Case("source upload archive_dir missing", reject=False,
             host={"prometheus.source": "upload", "prometheus.archive_dir": "/nonexistent/dir"}))
    add(Case("email null", {"receivers.email": "null"}))
    add(Case("email to empty", {"receivers.email.to": "[]"}))
    add(Case("slack channel number", {"receivers.slack": "{channel: 5}"}))
    # -- whole-file shapes
    add(Case("inventory a list", text="- a\n- b\n"))
    add(Case("inventory not UTF-8", files={"hosts.yml": b"hosts:\n  h: {address: caf\xe9}\n"}))
    bomb = "[&a [x,x,x,x,x,x,x,x,x], " + ", ".join(
        f"&{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdef", "bcdefg", strict=True)) + "]"
    add(Case("inventory alias bomb", {"env": bomb}))
    add(Case("inventory alias bomb in firewall", {"firewall.open_ports": bomb}))
    add(Case("merge keys", text="common: &common {address: 127.0.0.1}\n" + BASE.replace(
        "HOST", "  h: {<<: *common, secrets_file: secrets.yml}"), reject=False))
    add(Case("default_hosts unknown", text="default_hosts: [nope]\n" + BASE, args=("render",)))
    add(Case("inventory int 5000 digits top", text=f"x: {BIG}\n" + BASE))
    # -- secrets
    add(Case("env password not UTF-8", env={"ROSEY_WEB_PASSWORD": b"pass\xffword-long"}))
    add(Case("env alias password not UTF-8", env={"ROSEY_H_WEB_PASSWORD": b"\xe9" * 8}))
    add(Case("env password short", env={"ROSEY_WEB_PASSWORD": b"ab"}))
    add(Case("env password U+2028", env={"ROSEY_WEB_PASSWORD": "abcd\u2028efghij".encode()}))
    add(Case("env password 100 bytes", env={"ROSEY_WEB_PASSWORD": b"x" * 100}))
    add(Case("env password not UTF-8, dry run", args=DRY, env={"ROSEY_WEB_PASSWORD": b"\xff" * 10}))
    nopw = {"ROSEY_WEB_PASSWORD": b""}
    add(Case("secrets int", env=nopw, secrets=b"web_password: 12345678901\n"))
    add(Case("secrets 5000 digits", env=nopw, secrets=f"web_password: {BIG}\n".encode()))
    add(Case("secrets not UTF-8", env=nopw, secrets=b"web_password: caf\xe9-caf\xe9\n"))
    add(Case("secrets alias bomb", env=nopw, secrets=f"web_password: {bomb}\n".encode()))
    add(Case("secrets hosts list", env=nopw, secrets=b"hosts: {h: [x]}\n"))
    add(Case("secrets list value", env=nopw, secrets=b"web_password: [a, b]\n"))
    add(Case("secrets null", env=nopw, secrets=b"web_password: null\n"))
    add(Case("secrets unknown key", env=nopw, secrets=b"web_pasword: abcdefghij\n"))
    add(Case("secrets binary", env=nopw, secrets=bytes(range(256))))
    add(Case("secrets a directory", env=nopw, files={"secrets.yml": None}))
    # -- command lines
    for value in ("abc", "-1", BIG, "1.5"):
        add(Case(f"--parallel {value[:8]}", args=(*DRY, "--parallel", value), expect="--parallel"))
    add(Case("--parallel 0", args=(*DRY, "--parallel", "0"), reject=False))
    add(Case("--out a file", args=("render", "-H", "h", "--out", "TMP/f"), files={"f": b"x"}))
    add(Case("--out under a file", args=("render", "-H", "h", "--out", "TMP/f/sub"), files={"f": b"x"}))
    add(Case("--out /proc", args=("render", "-H", "h", "--out", "/proc/rosey-out")))
    add(Case("--out /dev/null", args=("render", "-H", "h", "--out", "/dev/null")))
    add(Case("--out file is a dir", args=("render", "-H", "h", "--out", "TMP/o"),
             files={"o/prometheus.yml": None}))
    add(Case("--out read-only fs", args=("render", "-H", "h", "--out", "/sys/rosey-out")))
    add(Case("-H unknown", args=("render", "-H", "nope")))
    add(Case("-H 5000 chars", args=("render", "-H", "x" * 5000)))
    add(Case("-H empty, no default", args=("render", "-H", ",")))
    for value in ("-5", "abc", BIG, "1e400"):
        add(Case(f"status --watch {value[:8]}", args=("status", "-H", "h", "--watch", value),
                 expect="--watch"))
    for value in ("70000", "abc", "-1", BIG):
        add(Case(f"ui --prometheus-port {value[:8]}", args=("ui", "-H", "h", "--prometheus-port", value),
                 expect="--prometheus-port"))
    add(Case("ui unreachable", args=("ui", "-H", "h"), reject=False))
    for value in ("1e400", "nan", BIG):
        add(Case(f"test-alert --timeout {value[:8]}", args=("test-alert", "-H", "h", "--timeout", value)))
    for value in ("99999999999999999d", "abc", BIG + "s", "0s"):
        add(Case(f"silence --duration {value[:8]}",
                 args=("silence", "-H", "h", "--duration", value, "alertname=BotDown")))
    # -- more members of the classes (the review is run again with new cases)
    add(Case("error with non-ASCII on an ASCII stdout", {"env": '"tëst"'},
             env={"PYTHONIOENCODING": b"ascii"}))
    add(Case("dry run on an ASCII stdout", args=DRY, reject=False, env={"PYTHONIOENCODING": b"ascii"}))
    add(Case("env password NEL", env={"ROSEY_WEB_PASSWORD": "abcd\x85efghij".encode()}))
    add(Case("secrets U+2029", env=nopw, secrets="web_password: 'abcd\u2029efghij'\n".encode()))
    add(Case("username non-ASCII", {"web.username": '"ädmin"'}))
    add(Case("web.tls quoted yes", {"web.tls": '"yes"'}))
    add(Case("host_key with newline", {"ssh.host_key": '"ssh-ed25519 AAAA\\nx"'}))
    add(Case("lab_vm forwards 5000 digits", {"lab_vm.forwards": f"{{22: {BIG}}}"}))
    add(Case("lab_vm memory 0", {"lab_vm.memory_mb": "0"}))
    add(Case("clusters unknown member", text=BASE + "clusters:\n  c1: [h, nope]\n"))
    add(Case("clusters a string", text=BASE + "clusters: yes\n"))
    add(Case("defaults a list", text="defaults: [1]\nhosts:\nHOST\n"))
    add(Case("hosts empty", text="hosts: {}\n"))
    add(Case("inventory empty", files={"hosts.yml": b""}))
    add(Case("-H with a newline", args=("render", "-H", "h\nx")))
    add(Case("silence matcher newline", args=("silence", "-H", "h", "--comment", "x", "alertname=Bot\nDown")))
    add(Case("silence without comment", args=("silence", "-H", "h", "alertname=BotDown")))
    add(Case("unsilence path id", args=("unsilence", "-H", "h", "--id", "../../api/v2/status")))
    add(Case("unsilence both", args=("unsilence", "-H", "h", "--id", "x", "--all-mine")))
    add(Case("test-alert unknown scenario", args=("test-alert", "-H", "h", "--scenario", "nope")))
    add(Case("host-key unreachable", args=("host-key", "-H", "h"), reject=False))
    add(Case("status unreachable", args=("status", "-H", "h"), reject=False))
    add(Case("ROSEY_RULES_FILE missing", env={"ROSEY_RULES_FILE": b"/nonexistent/rules.yml"}))
    add(Case("ROSEY_RULES_FILE a directory", env={"ROSEY_RULES_FILE": b"/tmp"}))
    add(Case("receivers null", {"receivers": "null"}))
    add(Case("email empty mapping (defaults fill it)", {"receivers.email": "{}"}, reject=False))
    add(Case("host null", text=BASE.replace("HOST", "  h: ~")))
    add(Case("aliases h.1 h_1", text=BASE.replace("HOST", "  h.1: {address: 127.0.0.1}\n  h_1: {address: "
                                                           "127.0.0.2}"), args=("render", "-H", "h.1")))
    add(Case("base_dir /srv", {"base_dir": "/srv"}))
    add(Case("base_dir trailing slash", {"base_dir": "/var/lib/rosey/"}))
    add(Case("base_dir /opt/x/../../etc", {"base_dir": "/opt/x/../../etc"}))
    add(Case("base_dir /var/lib/../../etc/ssh", {"base_dir": "/var/lib/../../etc/ssh"}))
    add(Case("release_url userinfo", {"prometheus.release_url": '"https://u:p@x.test/{version}"'}))
    add(Case("release_url {version!s}", {"prometheus.release_url": '"https://x.test/{version!s}"'}))
    add(Case("release_url {0}", {"prometheus.release_url": '"https://x.test/{0}"'}))
    add(Case("secret 7 characters", env={"ROSEY_WEB_PASSWORD": b"abcdefg"}))
    add(Case("secret NUL via file", env=nopw, secrets=b"web_password: \"abcd\\0efghij\"\n"))
    add(Case("allow_from ::ffff:0:0/96 + ::/1 + 8000::/1", {"web.allow_from": '["::/1", "8000::/1", '
                                                           '"::ffff:0:0/96"]', "web.basic_auth": "false"}))
    add(Case("allow_from 0.0.0.0/0 as a string", {"web.allow_from": "0.0.0.0/0", "web.basic_auth": "false"}))
    add(Case("ssh.key missing, dry run", {"ssh.key": "/nonexistent/key"}, DRY))
    add(Case("ssh.key a directory, dry run", {"ssh.key": "/tmp"}, DRY))
    add(Case("ssh.key missing, status", {"ssh.key": "/nonexistent/key"}, ("status", "-H", "h")))
    slack = {"receivers.slack": '{channel: "#x"}'}
    add(Case("slack URL not a URL", slack, env={"ROSEY_SLACK_WEBHOOK_URL": b"not-a-url-at-all"}))
    add(Case("slack URL plain http", slack, env={"ROSEY_SLACK_WEBHOOK_URL": b"http://hooks.slack.test/x/y/z"}))
    add(Case("slack URL with a quote", slack, env={"ROSEY_SLACK_WEBHOOK_URL": b"https://h.test/a'b\"c"}))
    add(Case("slack channel newline", {"receivers.slack": '{channel: "#x\\ny"}'},
             env={"ROSEY_SLACK_WEBHOOK_URL": b"https://hooks.slack.test/x/y/z"}))
    add(Case("pagerduty key short", {"receivers.pagerduty": "{}"},
             env={"ROSEY_PAGERDUTY_ROUTING_KEY": b"abc"}))
    beat = {"ROSEY_HEARTBEAT_URL": b"https://hc.test/ping/x1234"}
    add(Case("heartbeat URL ftp", {"receivers.heartbeat": "{}"}, env={"ROSEY_HEARTBEAT_URL": b"ftp://hc.test/x1"}))
    add(Case("heartbeat repeat 5000 digits", {"receivers.heartbeat.repeat_interval": BIG + "s"}, env=beat))
    add(Case("heartbeat repeat 0s", {"receivers.heartbeat.repeat_interval": "0s"}, env=beat))
    add(Case("heartbeat URL http private (lab sink)", {"receivers.heartbeat": "{}"}, reject=False,
             env={"ROSEY_HEARTBEAT_URL": b"http://10.0.2.2:8080/ping/abc"}))
    deep = "[" * 3000 + "]" * 3000
    add(Case("inventory nested 3000 deep", {"env": deep}))
    add(Case("secrets nested 3000 deep", env=nopw, secrets=f"web_password: {deep}\n".encode()))
    add(Case("--out empty", args=("render", "-H", "h", "--out", "")))
    add(Case("--out with a newline", args=("render", "-H", "h", "--out", "TMP/a\nb"), reject=False))
    add(Case("default_hosts 5000 digits", text=f"default_hosts: {BIG}\n" + BASE, args=("render",)))
    add(Case("setting named by a 5000-digit key", {BIG: "1"}))
    add(Case("gossip_tls maybe", text=BASE + "clusters:\n  c1: {members: [h], gossip_tls: maybe}\n"))
    add(Case("a tab in the inventory", text=BASE.replace("defaults:\n  ssh", "defaults:\n\tssh")))
    add(Case("-H 10000 aliases", args=("render", "-H", ",".join(["h"] * 10000), "--out", "TMP/o"),
             reject=False))
    add(Case("open_ports holds the Prometheus port", {"firewall.open_ports": "[9090]",
                                                      "web.allow_from": "[10.0.0.0/8]"}))
    add(Case("open_ports holds the Alertmanager port", {"firewall.open_ports": "[9093]",
                                                        "web.basic_auth": "false",
                                                        "web.allow_from": "[10.0.0.0/8]"}))
    add(Case("close_ports holds the SSH port", {"firewall.close_ports": "[9]"}))
    add(Case("a port both opened and closed", {"firewall.open_ports": "[443]",
                                               "firewall.close_ports": "[443]"}))
    c.extend(merged_main_cases())
    add(Case("ROSEY_INVENTORY missing", env={"ROSEY_INVENTORY": b"/nonexistent/hosts.yml"}))
    add(Case("ROSEY_INVENTORY not UTF-8", env={"ROSEY_INVENTORY": b"/tmp/\xff/hosts.yml"}))
    return c


def merged_main_cases() -> list[Case]:
    """What main added beside #30: status --parallel, remote_write, agent mode, PagerDuty's url, groups,
    the synthetic drill's --alert/--severity: the same rules (bounds, the https rule, text is text)."""
    c: list[Case] = []
    add = c.append
    status = ("status", "-H", "h")
    for value in ("abc", "-1", BIG, "1.5", "101"):
        add(Case(f"status --parallel {value[:8]}", args=(*status, "--parallel", value), expect="--parallel"))
    rw = "remote_write"
    one = "{name: a, url: 'https://s.test/push'"
    for key, value in (("capacity", BIG), ("capacity", "99999999999"), ("max_shards", "0"),
                       ("min_shards", "-1"), ("max_samples_per_send", '"abc"'),
                       ("batch_send_deadline", BIG + "s"), ("min_backoff", "300000y"),
                       ("sample_age_limit", "-1s")):
        add(Case(f"remote_write queue.{key} {value[:8]}", {rw: f"[{one}, queue: {{{key}: {value}}}}}]"},
                 expect=f"queue.{key}"))
    for url, why in (("http://s.test/push", "plain http://"), ("https://u:pw@s.test/p", "user name"),
                     ("https://s.test:99999/p", "port"), ("ftp://s.test/p", "https://"),
                     ("https://" + "s" * 5000, "url")):
        add(Case(f"remote_write url {url[:24]}", {rw: f"[{{name: a, url: '{url}'}}]"}, expect=why))
    add(Case("remote_write username a number", {rw: f"[{one}, auth: basic, username: 12345}}]"},
             expect="username"))
    add(Case("remote_write header value a list", {rw: f"[{one}, headers: {{X-Scope-OrgID: [a]}}}}]"},
             expect="headers"))
    add(Case("remote_write name 5000 digits", {rw: f"[{{name: {BIG}, url: 'https://s.test/p'}}]"}))
    add(Case("remote_write a mapping", {rw: "{name: a}"}))
    add(Case("remote_write timeout 0s", {rw: f"[{one}, remote_timeout: 0s}}]"}, expect="remote_timeout"))
    add(Case("agent mode without remote_write", {"prometheus.mode": "agent"}, expect="prometheus.mode"))
    add(Case("prometheus.mode a number", {"prometheus.mode": "1"}, expect="prometheus.mode"))
    pd = {"ROSEY_PAGERDUTY_ROUTING_KEY": b"r" * 32}
    for url in ("http://events.pagerduty.test/v2/enqueue", "https://e.test:70000/x", "https://u:p@e.test/x",
                "https://e.test/" + "x" * 5000):
        add(Case(f"pagerduty url {url[:24]}", {"receivers.pagerduty": f"{{url: '{url}'}}"}, env=pd,
                 expect="receivers.pagerduty.url"))
    add(Case("pagerduty url a number", {"receivers.pagerduty": "{url: 5}"}, env=pd))
    add(Case("groups a list", text="groups: [h]\n" + BASE, args=("render", "-H", "h")))
    add(Case("group member 5000 digits", text=f"groups: {{g: [{BIG}]}}\n" + BASE, args=("render", "-H", "g")))
    add(Case("group named by 5000 digits", text=f"groups:\n  ? {BIG}\n  : [h]\n" + BASE,
             args=("render", "-H", "h")))
    add(Case("group name 5000 letters (a name like any)", text=f"groups:\n  ? {'g' * 5000}\n  : [h]\n" + BASE,
             args=("render", "-H", "h", "--out", "TMP/o"), reject=False))
    add(Case("group name 5000 letters and a !", text=f"groups:\n  ? {'g' * 5000}!\n  : [h]\n" + BASE,
             args=("render", "-H", "h")))
    add(Case("group name with a newline", text='groups: {"a\\nb": [h]}\n' + BASE, args=("render", "-H", "h")))
    add(Case("host alias with a newline", text=BASE.replace("HOST", '  "a\\nb": {address: 127.0.0.1}\nHOST'),
             args=("render", "-H", "h")))
    add(Case("group nested 3000 deep", text="groups: {g: " + "[" * 3000 + "]" * 3000 + "}\n" + BASE,
             args=("render", "-H", "h")))
    add(Case("-H group:nope", args=("render", "-H", "group:nope")))
    add(Case("-H pattern of 5000 stars (matches h)", args=("render", "-H", "*" * 5000, "--out", "TMP/o"),
             reject=False))
    drill = ("test-alert", "-H", "h", "--synthetic")
    add(Case("test-alert --alert unknown", args=(*drill, "--alert", "NoSuchAlert")))
    add(Case("test-alert --alert 5000 chars", args=(*drill, "--alert", "A" * 5000)))
    add(Case("test-alert --severity bogus", args=(*drill, "--severity", "bogus")))
    add(Case("test-alert --severity newline", args=(*drill, "--severity", "critical\nx")))
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", action="store_true", help="print every case")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("-j", type=int, default=2, help="cases at once")
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose tasks.py runs")
    a = ap.parse_args()
    todo = [x for x in cases() if a.k in x.name]

    def one(case: Case) -> tuple[Case, str, str]:
        with tempfile.TemporaryDirectory(prefix="rosey-adv-") as d:
            return (case, *run(case, Path(d), a.repo))

    counts = {"clean": 0, "traceback": 0, "accepted-wrong": 0}
    with concurrent.futures.ThreadPoolExecutor(a.j) as pool:
        for case, outcome, detail in pool.map(one, todo):
            counts[outcome] += 1
            if a.v or outcome != "clean":
                print(f"{outcome:15} {case.name}: {detail}", flush=True)
    print(f"tried {len(todo)}: clean {counts['clean']}, traceback {counts['traceback']}, "
          f"accepted-wrong {counts['accepted-wrong']}")
    return 0 if counts["clean"] == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())
