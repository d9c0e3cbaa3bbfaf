"""Every alert rule caused for real on the lab pair, clustered, every channel on (issue 28 §3).

The pair as a user's two servers: one cluster (Prometheus 3.5.3, Alertmanager 0.33.1, group_interval 30s),
`lab` with env `test` and `lab2` with env `staging` (BotDown on one does not inhibit the other's bot alerts),
email to the shared SMTP catcher and Slack, Discord, webhook, Teams, PagerDuty and the heartbeat to the shared
HTTP catcher, info alerts at any hour, and two remote-write targets on `lab`: two real long-term stores
(Debian's VictoriaMetrics on this machine, basic auth, fabfile/lab/store.py). The real rules
file and intervals: no shortened copy. Then every cause at once (the proofs side by side, so the module takes
the longest `for:` window, not their sum), each undone as soon as its alerts' firing messages arrived on every
channel of their route, then the resolved ones awaited:

- lab2's bot stopped: BotDown; started again once that was delivered: BotRestarting;
- lab2's Alertmanager stopped: MonitoringPeerDown (from lab), MonitoringTargetDown and
  PrometheusAlertmanagerUnreachable (lab2's own Prometheus, delivered by lab's Alertmanager);
- lab's bot erring 5 times a second: CriticalErrorRate and HighErrorRate; its channel empty: ChannelEmpty;
- a broken prometheus.yml and alertmanager.yml put in place by hand on lab and reloaded: the two
  ...ConfigReloadFailed;
- the `archive` store's password changed (a rotated credential the host still has the old one of: 401):
  RemoteWriteFailing, and `inv verify` fails naming that target in one line; the `store` down from the
  deploy on (it never took a sample): RemoteWriteBehind and RemoteWriteWALNearDataLoss; started again, it
  gets the backlog from the WAL: no hole in its `up` history for the outage;
- the heartbeat service answering 500 (both hosts' URLs): AlertmanagerNotificationsFailing for the webhook
  integration (the heartbeat is one), while the other channels keep delivering; Watchdog's pings arrive at
  the heartbeat service again once it is back.

Each firing and each resolved message is counted per channel: exactly one of each, in a shape its service
takes, naming the alert, the host and env, the summary and the runbook. Each message is told apart by the
Alertmanager that sent it (its own URLs, PagerDuty key and SMTP login). One kind of copy is Alertmanager's
documented at-least-once delivery and allowed (README "When the server itself dies"): lab2's Alertmanager,
started again while an alert was alive, had not learnt everything lab's sent and sends its own firing
and/or resolve; allowed only from that member, only after its start, at most one of each per member and
the last word a resolve. A copy from one Alertmanager, or from lab's, fails. What was seen, and the time
from cause to first message, goes to the rule coverage record (tests/rule_coverage.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from types import SimpleNamespace

import pytest
import yaml

from fabfile.config.inventory import load_inventory
from fabfile.config.layout import remote_path
from fabfile.config.secrets import env_var, load_secrets
from fabfile.lab import hooks, keys, store
from fabfile.lab.cluster_inventory import cluster_document
from tests import helpers, lab_slots
from tests.lab_fixtures import lab_inventory
from tests.rule_coverage import read_rules, record_seen

ENVS = ("test", "staging")
CHAT = ("slack", "discord", "webhook", "teams-workflows", "pagerduty")
ROUTES = {"critical": ("email", *CHAT), "warning": ("email",), "info": ("email",)}
# every rule of the rules file but the Watchdog (its route is the heartbeat, checked apart), by severity:
# a rule added there without a cause here fails the test
SEVERITY = {r.name: r.severity for r in read_rules() if r.name != "Watchdog"}
# how each rule is caused here, in the words of the README's coverage table (tests/rule_coverage.py)
RULE_CAUSES = {
    "BotDown": "lab2's bot stopped",
    "BotRestarting": "lab2's bot started again after BotDown",
    "HighErrorRate": "lab's bot erring 5 times a second",
    "CriticalErrorRate": "lab's bot erring 5 times a second",
    "ChannelEmpty": "lab's bot reporting 0 users",
    "AlertmanagerNotificationsFailing": "the heartbeat service answering 500 to both hosts",
    "PrometheusConfigReloadFailed": "a broken prometheus.yml put in place by hand on lab and reloaded",
    "AlertmanagerConfigReloadFailed": "a broken alertmanager.yml put in place by hand on lab and reloaded",
    "PrometheusAlertmanagerUnreachable": "lab2's Alertmanager stopped (lab2's Prometheus reports)",
    "MonitoringTargetDown": "lab2's Alertmanager stopped (lab2's Prometheus reports)",
    "MonitoringPeerDown": "lab2's Alertmanager stopped (lab reports its peer)",
    "RemoteWriteFailing": "a VictoriaMetrics store whose password changed (401)",
    "RemoteWriteBehind": "a VictoriaMetrics store down since the deploy, then back (the WAL's backlog "
                         "arrives)",
    "RemoteWriteWALNearDataLoss": "a VictoriaMetrics store down since the deploy (it never took a sample)",
    "Watchdog": "the heartbeat service refusing, then back: the pings arrive again",
}
# the lab's two long-term stores (VictoriaMetrics on this machine; lab credentials, never real ones)
STORE_PORT, ARCHIVE_PORT = 28428, 28429
STORE_USER, STORE_PASSWORD, ROTATED_PASSWORD = "rosey-lab", "lab-store-Pass-1", "lab-store-Rotated-2"
WINDOW = 25 * 60  # seconds: the longest cause (10m `for:` + lag + eval + group_wait) with room on a slow day
SETTLE = 75  # seconds after the last resolved message: a duplicate would come within a group_interval or two


@dataclass
class Message:
    channel: str
    alertname: str
    state: str  # firing | resolved
    host: str  # which lab host's Alertmanager sent it (its URL token, PagerDuty key or SMTP login)
    text: str
    accepted: bool = True
    at: float = 0.0  # when the catcher took it (epoch seconds)


def _mail_messages(mails: list, names: tuple[str, ...]) -> list[Message]:
    out = []
    for m in mails:
        name = next((n for n in names if m.subject.endswith(f" {n}") or m.subject.endswith(f": {n}")), None)
        if name is None:
            continue
        html = ""
        for part in m.message.walk():
            if part.get_content_type() in ("text/html", "text/plain"):
                html += part.get_content()
        text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))
        state = "firing" if "[FIRING:" in text else "resolved" if "[RESOLVED]" in text else "?"
        out.append(Message("email", name, state, m.login, f"{m.subject}\n{text}", at=m.arrived))
    return out


def _hook_messages(hooked: list[hooks.Hook], names: tuple[str, ...], tokens: dict[str, str],
                   keys_: dict[str, str]) -> list[Message]:
    out, triggered = [], {}
    for h in hooked:
        if h.channel == "pagerduty":
            host = keys_.get(h.json.get("routing_key", ""), "")
        else:
            host = tokens.get(h.token, "")
        if not host or h.channel not in CHAT:
            continue
        text = h.text
        first = text.split("\n", 1)[0]
        if h.channel == "webhook":
            doc = h.json
            name = (doc.get("commonLabels") or {}).get("alertname", "")
            state = doc.get("status", "?")
        elif h.channel == "pagerduty":
            doc = h.json
            action = doc.get("event_action")
            if action == "trigger":
                name = next((n for n in names if re.search(rf"\b{n}\b", first)), "")
                triggered[doc.get("dedup_key")] = name
            else:
                name = triggered.get(doc.get("dedup_key"), "")
            state = {"trigger": "firing", "resolve": "resolved"}.get(action, "?")
        else:
            name = next((n for n in names if re.search(rf"\b{n}\b", first)), "")
            state = "resolved" if "RESOLVED" in first else "firing"
        if name:
            arrived = int(h.name.split("-", 1)[0]) / 1e9
            out.append(Message(h.channel, name, state, host, text, h.accepted, arrived))
    return out


@dataclass
class Cause:
    """One real fault and its undoing: `rules` are the alerts it must raise (undone once their firing
    messages all arrived), `follows` the alerts its undoing raises; `before_deploy`: in force since the deploy
    began."""

    what: str
    rules: tuple[str, ...]
    cause: Callable[[], None]
    undo: Callable[[], None]
    follows: tuple[str, ...] = ()
    before_deploy: bool = False
    also_waits_for: tuple[str, ...] = ()
    before_undo: Callable[[], None] | None = None  # a look at the fault while it lasts
    restarts_alertmanager_of: str = ""  # the undoing starts this host's Alertmanager again
    caused_at: float = 0.0
    undone_at: float | None = None
    undone_wall: float = 0.0  # epoch seconds, to compare with the catchers' arrival times
    first_message: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pair(lab_host, lab_host2, tmp_path_factory):
    """The pair deployed as one cluster with every channel on (see the module docstring)."""
    a, b = lab_host, lab_host2
    inv = lab_inventory()
    doc = cluster_document(inv, [a.name, b.name], cluster="rosey")
    port = a.settings.lab.hooks_port
    for host, env in zip((a, b), ENVS, strict=True):
        entry = doc["hosts"][host.name]
        entry["env"] = env
        entry["receivers"].update(hooks.lab_channels(host.name, port)[0])
        entry["business_hours"] = {"weekdays": ["sunday:saturday"], "start": "00:00", "end": "24:00"}
        keys.ensure_secrets(host.name, port)  # the channels' URLs and PagerDuty key, per host
    doc["hosts"][a.name]["remote_write"] = [
        {"name": name, "url": store.write_url(p), "auth": "basic", "username": STORE_USER}
        for name, p in (("store", STORE_PORT), ("archive", ARCHIVE_PORT))]
    path = tmp_path_factory.mktemp("proofs") / "proofs.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proof_inv = load_inventory(path)  # validated like any inventory
    env = {"ROSEY_INVENTORY": str(path), env_var("remote_write_store_password"): STORE_PASSWORD,
           env_var("remote_write_archive_password"): STORE_PASSWORD}
    for host in (a, b):
        host.reset_bot_state()
    # the store stays down from the deploy on (it never takes a sample) and the channel is emptied before
    # it, so the two 10-minute rules start their clocks first; the archive store runs
    for p_ in (STORE_PORT, ARCHIVE_PORT):
        store.daemon(p_).stop()
        shutil.rmtree(store.data_dir(p_), ignore_errors=True)
    _start_store(ARCHIVE_PORT, STORE_PASSWORD)
    a.set_bot_state(users=0)
    a.clear_shared_mails()  # only the pair mails there; the catcher of HTTP requests is read from here on
    before = {h.name for h in a.shared_hooks()}
    started = time.monotonic()
    deploy = helpers.inv("sortie6", "-H", f"{a.name},{b.name}", env=env, timeout=1800)
    deployed_at = time.time()
    password = load_secrets(inv, inv.host(a.name))["web_password"]
    channel_secrets = [v for h in (a, b) for v in hooks.lab_channels(h.name, port)[1].values()]
    secrets = [password, STORE_PASSWORD, ROTATED_PASSWORD, *channel_secrets]
    p = SimpleNamespace(a=a, b=b, env=env, inv=proof_inv, deploy=deploy, port=port,
                        started=started, deployed_at=deployed_at, looks={}, before=before, secrets=secrets,
                        tokens={a.name: a.name, b.name: b.name},
                        keys={hooks.routing_key(h.name): h.name for h in (a, b)})
    yield p
    for p_ in (STORE_PORT, ARCHIVE_PORT):
        store.daemon(p_).stop()
        shutil.rmtree(store.data_dir(p_), ignore_errors=True)
    for host in (a, b):
        hooks.set_failing(port, "heartbeat", None, token=host.name)
    for host in (a, b):
        host.run("sudo systemctl start rosey-bot alertmanager prometheus", check=False)
        host.reset_bot_state()


def messages(p) -> list[Message]:
    names = tuple(SEVERITY)
    return (_mail_messages(p.a.shared_mails(), names)
            + _hook_messages(new_hooks(p), names, p.tokens, p.keys))


def new_hooks(p) -> list[hooks.Hook]:
    """The HTTP catcher's requests since the module began (the other lane's are told apart by token)."""
    return [h for h in p.a.shared_hooks() if h.name not in p.before]


def test_the_pair_deploys_with_every_channel_and_both_stores(pair) -> None:
    out = pair.deploy.stdout
    assert pair.deploy.returncode == 0, out
    for host in (pair.a.name, pair.b.name):
        assert re.search(rf"^\[{host}\] verify: ok", out, re.M), out
    assert re.search(r"remote_write store: \d+ samples sent, 0 refused, nothing sent yet", out), out
    assert re.search(r"remote_write archive: \d+ samples sent, 0 refused, lag", out), out


def _broken_config(host, settings, filename: str,
                   service: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """Put a config file that does not parse in place by hand and reload (the service keeps its old one)."""
    path = remote_path(settings, filename)

    def cause() -> None:
        host.run(f"sudo cp -p {path} {path}.proof && echo 'broken: [' | sudo tee -a {path} >/dev/null "
                 f"&& sudo systemctl reload {service}")

    def undo() -> None:
        host.run(f"sudo mv {path}.proof {path} && sudo systemctl reload {service}")
    return cause, undo


def _causes(p) -> list[Cause]:
    a, b, port = p.a, p.b, p.port
    sa = p.inv.host(a.name)
    prom_cause, prom_undo = _broken_config(a, sa, "prometheus.yml", "prometheus")
    am_cause, am_undo = _broken_config(a, sa, "alertmanager.yml", "alertmanager")
    heartbeat = [lambda status=status: [hooks.set_failing(port, "heartbeat", status, token=h.name)
                                        for h in (a, b)] for status in (500, None)]
    return [
        Cause("lab2's bot stopped", ("BotDown",),
              lambda: b.run("sudo systemctl stop rosey-bot"), lambda: b.run("sudo systemctl start rosey-bot"),
              follows=("BotRestarting",)),
        # kept down until the heartbeat's failures have lasted the rule's 5 minutes too: back up, lab2's
        # Alertmanager could get a heartbeat through before lab's and end lab's failures
        Cause("lab2's Alertmanager stopped",
              ("MonitoringPeerDown", "MonitoringTargetDown", "PrometheusAlertmanagerUnreachable"),
              lambda: b.run("sudo systemctl stop alertmanager"),
              lambda: b.run("sudo systemctl start alertmanager"),
              also_waits_for=("AlertmanagerNotificationsFailing",), restarts_alertmanager_of=b.name),
        Cause("lab's bot erring 5/s", ("CriticalErrorRate", "HighErrorRate"),
              lambda: a.set_bot_state(error_rate=5), lambda: a.set_bot_state(error_rate=0)),
        Cause("lab's channel empty", ("ChannelEmpty",),
              lambda: None, lambda: a.set_bot_state(users=5), before_deploy=True),
        Cause("a broken prometheus.yml reloaded on lab", ("PrometheusConfigReloadFailed",),
              prom_cause, prom_undo),
        Cause("a broken alertmanager.yml reloaded on lab", ("AlertmanagerConfigReloadFailed",),
              am_cause, am_undo),
        Cause("the archive store's password changed (401)", ("RemoteWriteFailing",),
              lambda: _start_store(ARCHIVE_PORT, ROTATED_PASSWORD),
              lambda: _start_store(ARCHIVE_PORT, STORE_PASSWORD),
              before_undo=lambda: p.looks.update(verify=helpers.inv("verify", "-H", a.name, env=p.env))),
        Cause("the store down since the deploy", ("RemoteWriteBehind", "RemoteWriteWALNearDataLoss"),
              lambda: None, lambda: _start_store(STORE_PORT, STORE_PASSWORD), before_deploy=True,
              before_undo=lambda: p.looks.update(store_back=time.time())),
        Cause("the heartbeat service answering 500", ("AlertmanagerNotificationsFailing",),
              heartbeat[0], heartbeat[1]),
    ]


def _start_store(port: int, password: str) -> None:
    """(Re)start a lab store with this password and wait until it answers."""
    store.daemon(port).stop()
    store.daemon(port, (STORE_USER, password)).ensure_running()
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with contextlib.suppress(OSError), urllib.request.urlopen(  # noqa: S310 (loopback)
                f"http://127.0.0.1:{port}/health", timeout=2):
            return
        time.sleep(0.3)
    raise AssertionError(f"the lab store on 127.0.0.1:{port} did not answer")


def _seen(msgs: list[Message], name: str, state: str) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in msgs:
        if m.alertname == name and m.state == state:
            out.setdefault(m.channel, []).append(m)
    return out


def _complete(msgs: list[Message], name: str, state: str) -> bool:
    return set(ROUTES[SEVERITY[name]]) <= set(_seen(msgs, name, state))


def _await(p, causes: list[Cause]) -> list[Message]:
    """Poll the catchers; undo each cause once its alerts' firing messages are all in; return when every
    rule fired and resolved on every channel of its route (or the window ran out)."""
    end = time.monotonic() + WINDOW
    msgs: list[Message] = []
    while time.monotonic() < end:
        msgs = messages(p)
        now = time.monotonic()
        for c in causes:
            for r in (*c.rules, *c.follows):
                since = c.undone_at if r in c.follows else c.caused_at
                if since is not None and r not in c.first_message and _seen(msgs, r, "firing"):
                    c.first_message[r] = now - since
            gate = (*c.rules, *c.also_waits_for)
            if c.undone_at is None and all(_complete(msgs, r, "firing") for r in gate):
                if c.before_undo:
                    c.before_undo()
                c.undone_wall = time.time()
                c.undo()
                c.undone_at = time.monotonic()
        if all(c.undone_at for c in causes) and all(_complete(msgs, r, s) for r in SEVERITY
                                                    for s in ("firing", "resolved")):
            return msgs
        time.sleep(5)
    return msgs


@pytest.mark.proves("BotDown", "BotRestarting", "HighErrorRate", "CriticalErrorRate", "ChannelEmpty",
                    "AlertmanagerNotificationsFailing", "PrometheusConfigReloadFailed",
                    "AlertmanagerConfigReloadFailed", "PrometheusAlertmanagerUnreachable",
                    "MonitoringTargetDown", "MonitoringPeerDown", "RemoteWriteFailing", "RemoteWriteBehind",
                    "RemoteWriteWALNearDataLoss", "Watchdog")
def test_every_rule_caused_for_real_is_heard_once_per_channel_and_resolves(pair) -> None:
    p = pair
    assert p.deploy.returncode == 0, "the pair did not deploy: see the first test"
    causes = _causes(p)
    assert sorted(r for c in causes for r in (*c.rules, *c.follows)) == sorted(SEVERITY), "one cause per rule"
    for c in causes:
        c.cause()
        c.caused_at = p.started if c.before_deploy else time.monotonic()
    # the two VMs idle through the `for:` windows: the other lane's VM may start beside them meanwhile
    with lab_slots.lending():
        msgs = _await(p, causes)
    time.sleep(SETTLE)
    msgs = messages(p)
    report = _report(causes, msgs)
    print(report)
    missing = [f"{r} {s} on {ch}" for r in SEVERITY for s in ("firing", "resolved")
               for ch in ROUTES[SEVERITY[r]] if ch not in _seen(msgs, r, s)]
    assert not missing, f"never arrived: {missing}\n{report}"
    back = {c.restarts_alertmanager_of: c.undone_wall for c in causes if c.restarts_alertmanager_of}
    twice, copies = _not_once(msgs, back, p.deployed_at)
    for line in copies:
        print(f"note: a restarted Alertmanager's own copy (at-least-once): {line}")
    assert not twice, f"not exactly once: {twice}\n{report}"
    refused = [f"{m.alertname} {m.state} on {m.channel}" for m in msgs if not m.accepted]
    assert not refused, f"refused by the catcher: {refused}"
    _read_as_a_person(p, msgs)
    _stores_tell_the_truth(p)
    for c in causes:
        for r in (*c.rules, *c.follows):
            for state in ("firing", "resolved"):
                for channel in _seen(msgs, r, state):
                    record_seen(r, channel, state, c.first_message.get(r) if state == "firing" else None)
    # the Watchdog: its pings were refused while the heartbeat service was down and arrive again after
    beats = [h for h in new_hooks(p) if h.channel == "heartbeat" and h.token in p.tokens]
    heal = next(c for c in causes if "AlertmanagerNotificationsFailing" in c.rules).undone_at
    assert any(not h.accepted for h in beats), "no refused heartbeat: the cause did not happen"
    assert beats and beats[-1].accepted and "alertname=Watchdog" in beats[-1].text, \
        [b.text for b in beats[-3:]]
    assert heal is not None


def _stores_tell_the_truth(p) -> None:
    """While the archive refused, verify failed naming it in one line; the store, back after its outage,
    holds the outage's samples too (sent from the WAL): no gap in the bot's `up` from the deploy on."""
    v = p.looks["verify"]
    assert v.returncode == 1, v.stdout
    line = re.search(r"^\[\S+\]\s+FAIL\s+remote_write archive: FAILING: .*$", v.stdout, re.M)
    assert line, v.stdout
    for secret in p.secrets:
        assert secret not in v.stdout
    start, back = p.deployed_at, p.looks["store_back"]
    got = _export(STORE_PORT, f'{{__name__="up", job="rosey-bot", writer="{p.a.name}"}}', start, back)
    assert got, "the store has none of the outage's samples"
    times = sorted(t / 1000 for series in got for t in series["timestamps"])
    gaps = [b - a for a, b in zip([start, *times], [*times, back], strict=True)]
    assert max(gaps) <= 60, f"a hole of {max(gaps):.0f}s in the store's copy ({len(times)} samples)"
    labels = got[0]["metric"]
    assert {labels.get("env"), labels.get("host"), labels.get("cluster")} == {"test", p.a.name, "rosey-bot"}


def _export(port: int, selector: str, start: float, end: float) -> list[dict]:
    """Raw samples of `selector` between two Unix times from a lab store (VictoriaMetrics' export API)."""
    query = urllib.parse.urlencode({"match[]": selector, "start": f"{start:.0f}", "end": f"{end:.0f}"})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/export?{query}")
    token = base64.b64encode(f"{STORE_USER}:{STORE_PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        return [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]


def _read_as_a_person(p, msgs: list[Message]) -> None:
    """Every firing message says the alert, host, env, summary and runbook; nothing says a secret."""
    summaries = _summaries()
    hosts = {"test": p.a.name, "staging": p.b.name}
    for m in msgs:
        for secret in p.secrets:
            assert secret not in m.text, f"a secret in {m.alertname} on {m.channel}"
        if m.state != "firing" or m.channel == "pagerduty":
            continue
        assert summaries[m.alertname].split("{{")[0].strip() in m.text, (m.channel, m.alertname, m.text)
        assert "runbook" in m.text.lower(), (m.channel, m.alertname, m.text)
        assert any(h in m.text for h in hosts.values()), (m.channel, m.alertname, m.text)


def _summaries() -> dict[str, str]:
    doc = yaml.safe_load((helpers.REPO / "monitoring" / "alert_rules.yml").read_text())
    return {r["alert"]: r["annotations"].get("summary", "") for g in doc["groups"] for r in g["rules"]
            if "alert" in r}


def _not_once(msgs: list[Message], back: dict[str, float],
              t0: float) -> tuple[list[str], list[str]]:
    """(rule/channel pairs not heard exactly once, those whose copies a restarted member explains), each
    with every message's state, sender and arrival (seconds after `t0`)."""
    bad, copies = [], []
    for r in SEVERITY:
        for ch in ROUTES[SEVERITY[r]]:
            ms = sorted((m for m in msgs if m.alertname == r and m.channel == ch), key=lambda m: m.at)
            states = [m.state for m in ms]
            if states.count("firing") <= 1 and states.count("resolved") <= 1:
                continue  # once each (one missing is failed apart)
            line = f"{r} on {ch}: " + ", ".join(f"{m.state} from {m.host or '?'} at +{m.at - t0:.0f}s"
                                                for m in ms)
            (copies if _restarted_members_copy(ms, back) else bad).append(line)
    return bad, copies


def _restarted_members_copy(ms: list[Message], back: dict[str, float]) -> bool:
    """Two senders, one of them a member whose Alertmanager was started again (`back`: when) and sent only
    after that; each sends at most one firing and one resolve, in that order; the last word is a resolve."""
    senders = {m.host for m in ms}
    restarted = [h for h in senders if h in back]
    if len(senders) != 2 or len(restarted) != 1 or "" in senders:
        return False
    if any(m.at < back[restarted[0]] for m in ms if m.host == restarted[0]):
        return False
    once_each = (["firing"], ["resolved"], ["firing", "resolved"])
    if any([m.state for m in ms if m.host == sender] not in once_each for sender in senders):
        return False
    return ms[-1].state == "resolved"


def _report(causes: list[Cause], msgs: list[Message]) -> str:
    lines = ["cause -> rule: seconds from cause to first message; channels firing / resolved"]
    for c in causes:
        for r in (*c.rules, *c.follows):
            t = c.first_message.get(r)
            firing = ",".join(sorted(f"{ch}x{len(v)}" for ch, v in _seen(msgs, r, "firing").items()))
            resolved = ",".join(sorted(f"{ch}x{len(v)}" for ch, v in _seen(msgs, r, "resolved").items()))
            when = f"{t:.0f}s" if t is not None else "never"
            lines.append(f"  {c.what} -> {r}: {when}; firing {firing or '-'}; resolved {resolved or '-'}")
    return "\n".join(lines)
