"""verify: the runbook's validation checklist as one pass/fail line per check, from ONE SSH command.

Everything is asked on the server itself (curl to 127.0.0.1, systemctl, ufw), so the answer does not
depend on what the firewall lets through to us; the JSON is judged here in Python. The basic-auth
password reaches curl through a 0600 temp file filled from stdin, never through a command line.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yaml

from fabfile.alerting.api import parse_time
from fabfile.config import alert_scopes, layout, render
from fabfile.config.certs import is_pending
from fabfile.config.durations import parse_duration
from fabfile.config.labels import BOT_JOB, PEER_ALERTMANAGER_JOB, PEER_PROMETHEUS_JOB
from fabfile.config.needed_secrets import WEB_CA, WEB_CERT
from fabfile.config.pki import fingerprint
from fabfile.config.settings import HostSettings
from fabfile.config.validators import ascii_digits
from fabfile.config.versions import parse_version, reported_version
from fabfile.deploy import ufw_plan as ufw
from fabfile.deploy.steps.base import StepContext, StepResult
from fabfile.facts import deliveries, remote_write
from fabfile.facts import firewall as fw
from fabfile.facts import units as unit_state
from fabfile.output import duration
from fabfile.ssh.probe import PROBE_STDIN, Read, probe_read, version_snippet
from fabfile.ssh.session import HostSession
from fabfile.ssh.webauth import curl_config

STEP = "verify"
BOT_METRIC = "bot_connected"
BOT_LABELS = ("env", "instance", "job")
ALERTS_CHECK = "monitoring alerts"  # the one alert check that can fail (bot alerts are warnings)

@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    warning: bool = False  # about the bot, not the stack: passes unless --strict (config/alert_scopes.py)

    def line(self) -> str:
        word = "WARN" if self.warning else "PASS" if self.passed else "FAIL"
        return f"{word}  {self.name}: {self.detail}"

    def fails(self, strict: bool = False) -> bool:
        return not self.passed or (strict and self.warning)


# Every HTTP answer verify needs comes from ONE curl run (a process start costs a good fraction of a second on
# a small or emulated server; eleven of them were the bulk of every read): each transfer is followed by its
# status and a separator line, curl's own errors go to the same stream in order (`--stderr -`), and a failed
# transfer does not stop the next. `http_answers` splits the output back into one `<body>\n<status>` per key.
_HTTP_SEP = "@@rosey-http-answer@@"
_METRICS_KEEP = {"metrics_prometheus": ("prometheus_config_last_reload", remote_write.PREFIX),
                 "metrics_alertmanager": ("alertmanager_config_last_reload",)}


def _bases(host: HostSettings, scheme: str) -> tuple[str, str]:
    return tuple(f"{scheme}://127.0.0.1:{port}" for port in (host.prometheus.port, host.alertmanager.port))


def http_requests(host: HostSettings) -> dict[str, str]:
    """key -> URL on the server, in the order curl fetches them, with the credentials."""
    p, a = _bases(host, host.web.scheme)
    return {
        "healthy_prometheus": f"{p}/-/healthy",
        "healthy_alertmanager": f"{a}/-/healthy",
        "targets": f"{p}/api/v1/targets?state=active",
        "query": f"{p}/api/v1/query?query={BOT_METRIC}",
        "alertmanagers": f"{p}/api/v1/alertmanagers",
        "am_status": f"{a}/api/v2/status",
        "am_receivers": f"{a}/api/v2/receivers",
        "alerts": f"{p}/api/v1/alerts",
        "metrics_prometheus": f"{p}/metrics",
        "metrics_alertmanager": f"{a}/metrics",
        **{f"deliveries_{k}": f"{p}/api/v1/query?query={quote(q)}" for k, q in deliveries.QUERIES.items()},
    }


def open_requests(host: HostSettings) -> dict[str, str]:
    """key -> URL asked WITHOUT credentials: with basic auth on, both UIs must answer 401 (a unit that lost
    its web config would answer anyone); with TLS on, both must refuse plain HTTP (400)."""
    out = {}
    if host.web.basic_auth:
        p, a = _bases(host, host.web.scheme)
        out |= {"noauth_prometheus": f"{p}/-/healthy", "noauth_alertmanager": f"{a}/-/healthy"}
    if host.web.tls:
        p, a = _bases(host, "http")
        out |= {"plain_prometheus": f"{p}/-/healthy", "plain_alertmanager": f"{a}/-/healthy"}
    return out


# what a Prometheus answers in its first seconds after a (re)start: a target not scraped yet; no target or
# Alertmanager found yet (discovered sets are applied 5-10 s after the start)
_NOT_YET = ('"health":"unknown"', '"activeTargets":[]', '"activeAlertmanagers":[]')


def first_scrape_wait(host: HostSettings) -> int:
    """Seconds verify waits for targets not found or not scraped yet: Prometheus applies discovered targets
    5-10 s after the start (discovery and scrape manager each on a 5 s tick) and scrapes each at its own fixed
    offset within the interval, so a fresh start sees every target scraped within one interval plus 10 s;
    twice the interval plus 5 s leaves room on a slow server."""
    return int(2 * parse_duration(host.prometheus.scrape_interval)) + 5


def http_snippet(host: HostSettings) -> str:
    """One curl run: the authenticated requests, then (after --next, which drops the credentials) the
    open ones. With TLS, curl trusts only the project's web CA.

    Right after a (re)start Prometheus has found no target and no Alertmanager yet, then a target's health is
    "unknown" until its first scrape (up to one interval): while the answer says either, only the targets
    and the Alertmanagers are asked again, four times a second (one small curl; `read -t` as the sleep, no
    process), at most `first_scrape_wait` seconds after the first run, and once they are there the whole
    run is repeated. So install-services waits only for /-/healthy, and verify still judges a real scrape,
    a quarter second after it came rather than up to a second. On a running stack: one run (a stack that
    never finds its targets fails here after the wait)."""
    ca = f"--cacert {shlex.quote(layout.secret_path(host, WEB_CA))} " if host.web.tls else ""
    each = f"-sS --max-time 5 {ca}-w '\\n%{{http_code}}\\n{_HTTP_SEP}\\n' "
    reqs = http_requests(host)
    cmd = f'curl --stderr - {each}-K "${PROBE_STDIN}" '
    cmd += " ".join(map(shlex.quote, reqs.values()))
    opened = list(open_requests(host).values())
    if opened:
        cmd += f" --next {each}" + " ".join(map(shlex.quote, opened))
    found = (f'curl --stderr - -sS --max-time 5 {ca}-K "${PROBE_STDIN}" '
             f"{shlex.quote(reqs['targets'])} {shlex.quote(reqs['alertmanagers'])}")
    not_yet = "|".join(f"*{shlex.quote(m)}*" for m in _NOT_YET)
    left = f"((SECONDS - t0 < {first_scrape_wait(host)}))"
    return ("exec {tick}<> <(:); t0=$SECONDS; while :; do a=$(" + cmd + "); "
            f"case $a in {not_yet}) "
            f'while {left}; do read -r -t 0.25 _ <&"$tick"; b=$({found}); '
            f"case $b in {not_yet}) ;; *) break;; esac; done; {left} || break;; "
            "*) break;; esac; done; printf '%s\\n' \"$a\"")


def http_answers(host: HostSettings, text: str) -> dict[str, str]:
    """The one curl run's output -> `<body>\n<status>` per key (status 000: no answer, curl's error as body);
    /metrics bodies keep only the lines verify reads."""
    keys = [*http_requests(host), *open_requests(host)]
    parts = text.split(f"\n{_HTTP_SEP}")
    out: dict[str, str] = {}
    for key, part in zip(keys, parts, strict=False):
        part = part.removeprefix("\n")
        body, _, code = part.rpartition("\n")
        if key in _METRICS_KEEP and code == "200":
            part = "\n".join([*(ln for ln in body.splitlines() if ln.startswith(_METRICS_KEEP[key])), code])
        out[key] = part
    for key in keys[len(out):]:
        out[key] = "\n000"  # curl never got there (e.g. the read was cut short)
    return out


def _snippets(host: HostSettings) -> dict[str, str]:
    out = {f"version_{b}": version_snippet(layout.binary_path(b))
           for svc in layout.SERVICES for b in layout.BINARIES[svc]}
    out.update({
        "units": unit_state.snippet(host),  # the same text as deploy-configs' and install-services' reads
        "http": http_snippet(host),
        "now": "echo ${EPOCHREALTIME%[.,]*}",  # the server's clock, for the alerts' age (no process)
    })
    out.update({f"fw_{k}": v for k, v in fw.SNIPPETS.items()})
    return out


# ---------------------------------------------------------------- judging the answers (pure)


def _http(out: str) -> tuple[int, str]:
    """Body and status of a `_curl` snippet (the status is the last line)."""
    body, _, code = out.rpartition("\n")
    return (int(code) if ascii_digits(code.strip()) else 0), body


def _json(out: str) -> tuple[Any, str]:
    """(parsed JSON, "") or (None, why not)."""
    code, body = _http(out)
    if code != 200:
        return None, f"HTTP {code or 'no answer'}" + (f": {body.strip()[:120]}" if body.strip() else "")
    try:
        return json.loads(body), ""
    except ValueError:
        return None, "not JSON"


def check_versions(host: HostSettings, outs: dict[str, str]) -> list[Check]:
    res = []
    for svc in layout.SERVICES:
        want = getattr(host, svc).version
        for b in layout.BINARIES[svc]:
            text = outs.get(f"version_{b}", "")
            got = reported_version(text)
            ok = got is not None and parse_version(got) == parse_version(want)
            res.append(Check(f"{b} version", ok, f"{got} (want {want})" if got else
                             f"{layout.binary_path(b)} missing or not runnable"))
    return res


def check_services(host: HostSettings, outs: dict[str, str]) -> list[Check]:
    units = unit_state.parse(host, outs.get("units", ""))
    states = {svc: (units[svc].active, units[svc].enabled or "unknown") for svc in layout.SERVICES}
    return [Check(f"{svc} service", a == "active" and e == "enabled", f"{a}, {e} at boot")
            for svc, (a, e) in states.items()]


def check_healthy(outs: dict[str, str]) -> list[Check]:
    res = []
    for svc in layout.SERVICES:
        code, body = _http(outs.get(f"healthy_{svc}", ""))
        res.append(Check(f"{svc} /-/healthy", code == 200,
                         f"HTTP {code or 'no answer'}" + (f" {body.strip()[:60]}" if body.strip() else "")))
    return res


def check_target(outs: dict[str, str]) -> Check:
    doc, err = _json(outs.get("targets", ""))
    if doc is None:
        return Check(f"target {BOT_JOB}", False, err)
    active = doc.get("data", {}).get("activeTargets", [])
    ts = [t for t in active if t.get("labels", {}).get("job") == BOT_JOB]
    up = [t for t in ts if t.get("health") == "up"]
    detail = f"{len(up)}/{len(ts)} up"
    errors = sorted({t.get("lastError", "") for t in ts if t.get("health") != "up" and t.get("lastError")})
    if errors:
        detail += f" ({errors[0][:100]})"
    return Check(f"target {BOT_JOB}", bool(ts) and len(up) == len(ts), detail)


def check_query(outs: dict[str, str]) -> Check:
    doc, err = _json(outs.get("query", ""))
    if doc is None:
        return Check(f"query {BOT_METRIC}", False, err)
    result = doc.get("data", {}).get("result", [])
    good = [r for r in result if all(k in r.get("metric", {}) for k in BOT_LABELS)]
    if not good:
        return Check(f"query {BOT_METRIC}", False, "no sample" if not result else
                     f"sample lacks labels {', '.join(BOT_LABELS)}: {result[0].get('metric')}")
    r = good[0]
    labels = ",".join(f'{k}="{r["metric"][k]}"' for k in BOT_LABELS)
    return Check(f"query {BOT_METRIC}", True, f"{BOT_METRIC}{{{labels}}} {r.get('value', [None, '?'])[1]}")


def _wanted_alertmanagers(host: HostSettings) -> list[str]:
    """host:port of every Alertmanager this Prometheus must send to: its own, then each cluster peer's."""
    peers = host.cluster.peers if host.cluster else ()
    return [f"localhost:{host.alertmanager.port}", *(f"{p.address}:{p.alertmanager_port}" for p in peers)]


def check_alertmanagers(host: HostSettings, outs: dict[str, str]) -> Check:
    doc, err = _json(outs.get("alertmanagers", ""))
    if doc is None:
        return Check("prometheus -> alertmanager", False, err)
    active = [a.get("url", "") for a in doc.get("data", {}).get("activeAlertmanagers", [])]
    if not host.cluster:
        ok = any(f":{host.alertmanager.port}/" in u for u in active)
        detail = ", ".join(active) if active else "no active alertmanager"
        return Check("prometheus -> alertmanager", ok, detail)
    # clustered: every Alertmanager of the cluster, each by the exact address the config names
    missing = [w for w in _wanted_alertmanagers(host) if not any(f"//{w}/" in u for u in active)]
    if missing:
        return Check("prometheus -> alertmanagers", False, f"not active: {', '.join(missing)} "
                     f"(active: {', '.join(active) or 'none'})")
    return Check("prometheus -> alertmanagers", True, f"all {len(active)} of the cluster active: "
                 f"{', '.join(active)}")


def check_cluster(host: HostSettings, outs: dict[str, str]) -> Check:
    """Alertmanager's gossip: ready, and every member seen (the peers list includes this Alertmanager)."""
    doc, err = _json(outs.get("am_status", ""))
    if doc is None:
        return Check("alertmanager cluster", False, err)
    assert host.cluster is not None
    c = doc.get("cluster") or {}
    status = c.get("status", "?")
    seen = sorted(p.get("address", "?") for p in c.get("peers") or [])
    want = 1 + len(host.cluster.peers)
    missing = [f"{p.name} ({p.address}:{p.cluster_port})" for p in host.cluster.peers
               if f"{p.address}:{p.cluster_port}" not in seen]
    detail = f"{host.cluster.name}: {status}, {len(seen)}/{want} peers ({', '.join(seen) or 'none'})"
    if host.cluster.gossip_tls:  # a member without a certificate of the cluster's CA could not be among them
        detail += ", gossip over TLS"
    if missing:
        detail += f"; not seen: {', '.join(missing)}"
        if host.cluster.gossip_tls:
            detail += " (with gossip TLS, also check both have their certificates: run deploy-configs)"
    return Check("alertmanager cluster", status == "ready" and len(seen) == want and not missing, detail)


def check_peer_targets(host: HostSettings, outs: dict[str, str]) -> Check:
    """This Prometheus scrapes each peer's Prometheus and Alertmanager (what MonitoringPeerDown watches)."""
    assert host.cluster is not None
    doc, err = _json(outs.get("targets", ""))
    if doc is None:
        return Check("peer targets", False, err)
    active = doc.get("data", {}).get("activeTargets", [])
    jobs = (PEER_PROMETHEUS_JOB, PEER_ALERTMANAGER_JOB)
    want = [(p.name, j) for p in host.cluster.peers for j in jobs]
    health = {(t.get("labels", {}).get("peer"), t.get("labels", {}).get("job")): t for t in active}
    bad = []
    for peer, job in want:
        t = health.get((peer, job))
        if t is None:
            bad.append(f"{job}{{peer={peer}}} missing")
        elif t.get("health") != "up":
            bad.append(f"{job}{{peer={peer}}} {t.get('health')}: {(t.get('lastError') or '')[:80]}")
    if bad:
        return Check("peer targets", False, "; ".join(bad))
    peers = ", ".join(p.name for p in host.cluster.peers)
    return Check("peer targets", True, f"{len(want)}/{len(want)} up ({peers})")


def expected_receivers(alertmanager_yml: str) -> list[str]:
    doc = yaml.safe_load(alertmanager_yml) or {}
    return sorted(r["name"] for r in doc.get("receivers", []))


def check_am_config(outs: dict[str, str], expected: list[str]) -> Check:
    doc, err = _json(outs.get("am_status", ""))
    if doc is None:
        return Check("alertmanager config", False, err)
    if not (doc.get("config") or {}).get("original"):
        return Check("alertmanager config", False, "no config loaded")
    recv, err = _json(outs.get("am_receivers", ""))
    if recv is None:
        return Check("alertmanager config", False, f"receivers: {err}")
    names = sorted(r.get("name", "") for r in recv)
    missing = [n for n in expected if n not in names]
    if missing:
        return Check("alertmanager config", False, f"receivers missing: {', '.join(missing)} (has {names})")
    return Check("alertmanager config", True, f"loaded; receivers {', '.join(names)}")


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def check_web_guard(host: HostSettings, outs: dict[str, str], cert: str | None = None) -> list[Check]:
    """What the web config promises, seen from outside it: no answer without the password, no plain HTTP.
    `cert`: the host's web certificate (PEM), whose fingerprint is shown for checking a browser warning."""
    res = []
    for svc in layout.SERVICES:
        if host.web.basic_auth:
            code, _ = _http(outs.get(f"noauth_{svc}", ""))
            res.append(Check(f"{svc} login required", code == 401,
                             "HTTP 401 without credentials" if code == 401 else
                             f"HTTP {code or 'no answer'} without credentials: is the unit's "
                             f"--web.config.file in place? (inv install-services -H {host.name})"))
        if host.web.tls:
            code, _ = _http(outs.get(f"plain_{svc}", ""))
            seen = f"; certificate SHA-256 {fingerprint(cert)}" if cert and svc == layout.PROMETHEUS else ""
            res.append(Check(f"{svc} HTTPS only", code == 400,
                             f"plain HTTP refused (400){seen}" if code == 400 else
                             f"plain HTTP answered {code or 'nothing'}: still on HTTP? "
                             f"(inv install-services -H {host.name} restarts it onto HTTPS)"))
    return res


def check_reloads(outs: dict[str, str]) -> list[Check]:
    res = []
    for svc in layout.SERVICES:
        code, body = _http(outs.get(f"metrics_{svc}", ""))
        v = _metric(body, f"{svc}_config_last_reload_successful")
        name = f"{svc}_config_last_reload_successful"
        detail = f"{name}={v:g}" if v is not None else f"HTTP {code or 'no answer'}"
        res.append(Check(f"{svc} last reload", v == 1, detail))
    return res


def check_firewall(host: HostSettings, outs: dict[str, str]) -> Check:
    if not outs.get("fw_have", "").strip():
        return Check("firewall", False, "ufw not installed")
    state, ports = fw.read_state({k.removeprefix("fw_"): v for k, v in outs.items() if k.startswith("fw_")})
    try:
        plan = ufw.plan(host, state, ports)
    except ValueError as e:
        return Check("firewall", False, str(e))
    if plan.ipv6_open:
        return Check("firewall", False, plan.refusal(host) or "")
    if plan.empty:
        web = ", ".join(host.web.allow_from)
        return Check("firewall", True, f"ufw active; SSH {'/'.join(map(str, ports))}/tcp; "
                     f"{host.prometheus.port}/{host.alertmanager.port} from {web}")
    todo = "; ".join(plan.commands())
    return Check("firewall", False, f"differs from inventory: {todo} (run firewall)")


def _age(active_at: str, now: float | None) -> str:
    try:
        seconds = max(0.0, now - parse_time(active_at)) if now is not None else None
    except ValueError:
        seconds = None
    return "" if seconds is None else f" for {duration(seconds)}"


def _server_now(outs: dict[str, str]) -> float | None:
    try:
        return float(outs.get("now", "").strip())
    except ValueError:
        return None


def check_alerts(outs: dict[str, str]) -> list[Check]:
    """Firing alerts by scope (their `component` label): the monitoring's fail verify; the bot's are one
    warning line each with age and summary (they fail only with --strict); the Watchdog is neither."""
    doc, err = _json(outs.get("alerts", ""))
    if doc is None:
        return [Check(ALERTS_CHECK, False, err)]
    now = _server_now(outs)
    firing = [a for a in doc.get("data", {}).get("alerts", []) if a.get("state") == "firing"]
    scoped = [(alert_scopes.scope_of(a.get("labels") or {}), a) for a in firing]
    monitoring = [a for scope, a in scoped if scope == alert_scopes.MONITORING]
    names = sorted({f"{a['labels'].get('alertname')}({a['labels'].get('severity', '?')})"
                    for a in monitoring})
    checks = [Check(ALERTS_CHECK, not monitoring, ", ".join(names) if names else "none firing")]
    bot = sorted((a for scope, a in scoped if scope == alert_scopes.BOT), key=lambda a: a.get("activeAt", ""))
    for a in bot:
        labels, summary = a["labels"], (a.get("annotations") or {}).get("summary", "")
        detail = (f"{labels.get('alertname')} ({labels.get('severity', '?')}) "
                  f"firing{_age(a.get('activeAt', ''), now)}" + (f" — {summary}" if summary else ""))
        checks.append(Check("bot alert", True, detail, warning=True))
    return checks


def check_channels(host: HostSettings, outs: dict[str, str]) -> list[Check]:
    """Per configured channel: the last delivery and the failures of the last 24 h (facts/deliveries.py)."""
    results = {}
    for key in deliveries.QUERIES:
        doc, err = _json(outs.get(f"deliveries_{key}", ""))
        if doc is None:
            return [Check("channel deliveries", False, f"Prometheus' history of Alertmanager: {err}")]
        results[key] = doc.get("data", {}).get("result", [])
    found, now = deliveries.deliveries(host, results), _server_now(outs)
    return [Check(f"channel {d.name}", *deliveries.verdict(d, now)) for d in found]


def evaluate(host: HostSettings, outs: dict[str, str], receivers: list[str],
             cert: str | None = None) -> list[Check]:
    cluster = [check_cluster(host, outs), check_peer_targets(host, outs)] if host.cluster else []
    local = [] if host.prometheus.agent else [check_query(outs), check_alertmanagers(host, outs)]  # no API
    rules = [] if host.prometheus.agent else [*check_alerts(outs), *check_channels(host, outs)]
    return [*check_versions(host, outs), *check_services(host, outs), *check_healthy(outs),
            *check_web_guard(host, outs, cert), check_target(outs), *local, *cluster,
            check_am_config(outs, receivers), *check_reloads(outs), check_firewall(host, outs), *rules,
            *(Check(*c) for c in remote_write.checks(host, outs.get("metrics_prometheus", "")))]


# ---------------------------------------------------------------- the step


def reads(host: HostSettings, ctx: StepContext) -> Read:
    """All answers in one SSH command (sudo: ufw and /proc need root); basic auth reaches curl on stdin."""
    return Read(_snippets(host), stdin=curl_config(host, ctx.secrets), what="verify",
                follows_change=False)  # it may wait for the first scrape: that wait is verify's own time


def gather(conn: HostSession, host: HostSettings, ctx: StepContext) -> dict[str, str]:
    outs: dict[str, str] = dict(probe_read(conn, reads(host, ctx), masker=ctx.masker))
    outs.update(http_answers(host, outs.pop("http", "")))
    return outs


def verify(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    rendered = render.render_host(ctx.inventory, host, ctx.secrets, hash_password=False)  # receivers only
    receivers = expected_receivers(rendered.files["alertmanager.yml"])
    cert = ctx.secrets.get(WEB_CERT)  # a placeholder when this machine has none: no fingerprint then
    checks = evaluate(host, gather(conn, host, ctx), receivers, None if cert and is_pending(cert) else cert)
    return judge(checks, ctx.strict, ctx.masker)


def judge(checks: list[Check], strict: bool, masker: Callable[[str], str] = str) -> StepResult:
    """Stack checks decide; bot alerts are warnings that fail only with `strict` (--strict, e.g. in CI)."""
    lines = [masker(c.line()) for c in checks]
    stack = [c for c in checks if not c.warning]
    warnings = [c for c in checks if c.warning]
    failed = [c for c in checks if c.fails(strict)]
    bots = sum(c.name == "bot alert" for c in warnings)  # the others: channels that failed and recovered
    bot = (f"; {bots} bot alert(s) firing" if bots else "") + (
        f"; {len(warnings) - bots} channel(s) with failures in 24 h" if len(warnings) > bots else "")
    if failed:
        what = ", ".join(dict.fromkeys(c.name for c in failed))
        kind = "bot alerts" if bots == len(warnings) else "warnings"
        why = f" (--strict: {kind} fail too)" if strict and warnings else ""
        return StepResult(STEP, "failed", f"{len(failed)} of {len(checks)} checks failed: {what}{why}", lines)
    return StepResult(STEP, "ok", f"all {len(stack)} stack checks passed{bot}", lines)
