"""Small HTTP clients for Prometheus (HTTP API v1) and Alertmanager (API v2), reached through SSH tunnels.

Why tunnels: the control machine talks to 127.0.0.1:<port> on the server over the SSH connection, so the
clients work whatever the firewall allows. Why plain `requests` with short timeouts: every call is one
line to reason about, and every failure becomes one `ApiError` line with secrets masked.
"""

from __future__ import annotations

import contextlib
import re
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from fabric import Connection

from fabfile.config.needed_secrets import WEB_CA
from fabfile.config.settings import HostSettings
from fabfile.masking import Masker
from fabfile.ssh.forward import LocalForward, bind_local

DEFAULT_TIMEOUT = 5.0


class ApiError(RuntimeError):
    """One line: which service, which call, what went wrong (secrets already masked)."""


class ApiTimeout(ApiError):
    """The service took longer than the client's timeout: slow (a busy server), not known to be down."""


def iso(ts: float | None = None) -> str:
    """RFC 3339 in UTC, as both APIs expect."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """RFC 3339 (with or without fractional seconds / nanoseconds) -> epoch seconds."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text, re.ASCII)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    base = datetime.fromisoformat(m.group(1) + tz).timestamp()
    return base + (float("0" + m.group(2)) if m.group(2) else 0.0)


def local_now() -> float:
    """This machine's clock (one seam, so tests can pretend it disagrees with the server's)."""
    return time.time()


class ServerClock:
    """The server's clock, learnt from the HTTP `Date` headers of its answers.

    Why: times we send (an alert's `endsAt`, a silence's `startsAt`) are judged by the SERVER's clock, and a
    laptop's clock is routinely seconds off a VPS's. `Date` has a 1 s resolution, so each answer bounds the
    offset (server - local): `Date - t_received <= offset < Date + 1 - t_sent`. Intersecting the recent
    answers' bounds narrows it to well under a second after a few polls; a window (not all history) lets a
    stepped or drifting server clock move the estimate.
    """

    def __init__(self, window: int = 30) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)

    def observe(self, date_header: str | None, t_sent: float, t_received: float) -> None:
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        self._samples.append((server - t_received, server + 1.0 - t_sent))

    @property
    def known(self) -> bool:
        return bool(self._samples)

    def bounds(self) -> tuple[float, float]:
        """(low, high) of offset = server - local, in seconds; (0, 0) before any answer."""
        if not self._samples:
            return 0.0, 0.0
        lo = max(s[0] for s in self._samples)
        hi = min(s[1] for s in self._samples)
        if lo > hi:  # the server's clock moved within the window: trust the newest answer alone
            lo, hi = self._samples[-1]
        return lo, hi

    @property
    def offset(self) -> float:
        lo, hi = self.bounds()
        return (lo + hi) / 2

    def now(self) -> float:
        """Best estimate of the server's time now (epoch seconds)."""
        return local_now() + self.offset

    def past(self, margin: float = 1.0) -> float:
        """A time certainly already past on the server: the lower bound minus `margin`."""
        return local_now() + self.bounds()[0] - margin

    def describe(self) -> str:
        lo, hi = self.bounds()
        return f"server clock {self.offset:+.1f}s vs this machine (between {lo:+.2f}s and {hi:+.2f}s)"


@dataclass
class Http:
    """One service endpoint: base URL, optional basic auth, masking of every error text."""

    name: str
    base_url: str
    auth: tuple[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT
    masker: Masker = field(default_factory=Masker)
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    clock: ServerClock = field(default_factory=ServerClock, repr=False)
    # https: the CA file to trust. Passed with every request: requests lets REQUESTS_CA_BUNDLE and
    # CURL_CA_BUNDLE from the environment override a session's own `verify`
    verify: str | bool = True

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = self.base_url.rstrip("/") + path
        try:
            t_sent = local_now()
            r = self.session.request(method, url, auth=self.auth, timeout=self.timeout, verify=self.verify,
                                     **kw)
            self.clock.observe(r.headers.get("Date"), t_sent, local_now())
        except requests.RequestException as e:
            reason, error = type(e).__name__, ApiError
            if isinstance(e, requests.exceptions.SSLError):  # (a ConnectionError too)
                reason = ("TLS check failed: the certificate is not one this host's web CA signed for "
                          "this address (web-pki/ca.crt beside the secrets file; inv deploy-configs "
                          "renews it)")
            elif isinstance(e, requests.ConnectionError):
                reason = "connection failed (service down or tunnel lost)"
            elif isinstance(e, requests.Timeout):
                reason, error = f"no answer within {self.timeout:g}s", ApiTimeout
            raise error(self.masker(f"{self.name}: {method} {path}: {reason}")) from None
        if r.status_code == 401:
            raise ApiError(f"{self.name}: {method} {path}: 401 unauthorized "
                           f"(check web.username / the web_password secret)")
        if r.status_code >= 400:
            body = " ".join(r.text.split())[:200]
            raise ApiError(self.masker(f"{self.name}: {method} {path}: HTTP {r.status_code}: {body}"))
        return r

    def json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.request(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            raise ApiError(f"{self.name}: {method} {path}: answer is not JSON") from None

    def _learn_clock(self) -> None:
        """A fresh client (first call, or after a reconnect) has not seen the server's clock: ask once."""
        if not self.clock.known:
            self.request("GET", "/-/healthy")

    def server_now(self) -> float:
        """The server's time now (best estimate)."""
        self._learn_clock()
        return self.clock.now()

    def server_past(self, margin: float = 1.0) -> float:
        """A time certainly already past on the server (see `ServerClock.past`)."""
        self._learn_clock()
        return self.clock.past(margin)

    def _answers(self, path: str, tries: int = 1) -> bool:
        for _ in range(tries):
            try:
                self.request("GET", path)
                return True
            except ApiTimeout:
                continue
            except ApiError:
                return False
        return False

    def healthy(self, tries: int = 1) -> bool:
        """`tries` > 1: ask again after a timeout (a refused connection or an error answer is final), so a
        check that decides whether to go on is not failed by one slow answer of a busy server."""
        return self._answers("/-/healthy", tries)

    def ready(self) -> bool:
        """Serving queries (Prometheus: WAL replayed; both answer /-/healthy before that)."""
        return self._answers("/-/ready")

    def metrics(self) -> list[Sample]:
        return parse_metrics(self.request("GET", "/metrics").text)


# ---------------------------------------------------------------- /metrics text format


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_metrics(text: str) -> list[Sample]:
    """Prometheus text exposition -> samples (comments and unparsable lines skipped)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL_RE.findall(m.group(3) or "")}
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append(Sample(m.group(1), labels, value))
    return out


@dataclass(frozen=True)
class NotifyCounts:
    """Alertmanager's notification counters for one integration (summed over other labels such as `code`).

    `notifications_total` is counted when an attempt *starts* and `notifications_failed_total` only when the
    whole retry loop gives up; the per-request pair tells the outcome of each try as soon as it is known.
    """

    total: float = 0.0
    failed: float = 0.0
    requests: float = 0.0
    requests_failed: float = 0.0

    @property
    def succeeded_requests(self) -> float:
        return self.requests - self.requests_failed


_COUNTERS = {
    "alertmanager_notifications_total": "total",
    "alertmanager_notifications_failed_total": "failed",
    "alertmanager_notification_requests_total": "requests",
    "alertmanager_notification_requests_failed_total": "requests_failed",
}


def notify_counts(samples: list[Sample]) -> dict[str, NotifyCounts]:
    acc: dict[str, dict[str, float]] = {}
    for s in samples:
        attr = _COUNTERS.get(s.name)
        if attr and "integration" in s.labels:
            d = acc.setdefault(s.labels["integration"], {})
            d[attr] = d.get(attr, 0.0) + s.value
    return {k: NotifyCounts(**v) for k, v in acc.items()}


# ---------------------------------------------------------------- Prometheus


class PrometheusApi(Http):
    def query(self, expr: str) -> list[dict]:
        doc = self.json("GET", "/api/v1/query", params={"query": expr})
        return doc.get("data", {}).get("result", [])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        doc = self.json("GET", "/api/v1/query_range",
                        params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                "step": f"{step:g}"})
        return doc.get("data", {}).get("result", [])

    def alerts(self, name: str | None = None) -> list[dict]:
        """Active (pending or firing) alerts; each has labels, state, activeAt."""
        alerts = self.json("GET", "/api/v1/alerts").get("data", {}).get("alerts", [])
        return [a for a in alerts if name is None or a.get("labels", {}).get("alertname") == name]

    def targets(self, job: str | None = None) -> list[dict]:
        active = self.json("GET", "/api/v1/targets", params={"state": "active"})["data"]["activeTargets"]
        return [t for t in active if job is None or t.get("labels", {}).get("job") == job]

    def alertmanagers(self) -> list[str]:
        data = self.json("GET", "/api/v1/alertmanagers").get("data", {})
        return [a.get("url", "") for a in data.get("activeAlertmanagers", [])]

    def external_labels(self) -> dict[str, str]:
        import yaml

        text = self.json("GET", "/api/v1/status/config").get("data", {}).get("yaml", "")
        return dict((yaml.safe_load(text) or {}).get("global", {}).get("external_labels") or {})


# ---------------------------------------------------------------- Alertmanager


def _filters(labels: dict[str, str] | None) -> list[tuple[str, str]]:
    return [("filter", f'{k}="{v}"') for k, v in (labels or {}).items()]


class AlertmanagerApi(Http):
    def status(self) -> dict:
        return self.json("GET", "/api/v2/status")

    def config(self) -> dict:
        """The loaded configuration as Alertmanager reports it (secrets already <secret> there)."""
        import yaml

        return yaml.safe_load(self.status().get("config", {}).get("original", "")) or {}

    def alerts(self, labels: dict[str, str] | None = None, *, silenced: bool = True,
               inhibited: bool = True) -> list[dict]:
        params = _filters(labels) + [("active", "true"), ("silenced", str(silenced).lower()),
                                     ("inhibited", str(inhibited).lower())]
        return self.json("GET", "/api/v2/alerts", params=params)

    def post_alerts(self, alerts: list[dict]) -> None:
        self.request("POST", "/api/v2/alerts", json=alerts)

    def silences(self, state: str | None = "active") -> list[dict]:
        out = self.json("GET", "/api/v2/silences")
        return [s for s in out if state is None or s.get("status", {}).get("state") == state]

    def create_silence(self, matchers: list[dict], starts: float, ends: float, created_by: str,
                       comment: str) -> str:
        body = {"matchers": matchers, "startsAt": iso(starts), "endsAt": iso(ends),
                "createdBy": created_by, "comment": comment}
        return self.json("POST", "/api/v2/silences", json=body)["silenceID"]

    def expire_silence(self, silence_id: str) -> None:
        self.request("DELETE", f"/api/v2/silence/{silence_id}")

    def notify_counts(self) -> dict[str, NotifyCounts]:
        return notify_counts(self.metrics())


@dataclass
class Apis:
    prometheus: PrometheusApi
    alertmanager: AlertmanagerApi


def web_auth(host: HostSettings, secrets: dict[str, str]) -> tuple[str, str] | None:
    if not host.web.basic_auth:
        return None
    return (host.web.username, secrets["web_password"])


def local_apis(prom_url: str, am_url: str, auth: tuple[str, str] | None = None,
               masker: Masker | None = None, timeout: float = DEFAULT_TIMEOUT,
               ca_file: str | None = None) -> Apis:
    """Clients for URLs reachable directly (tests, or tunnels opened elsewhere). `ca_file`: for https
    URLs, the CAs to trust (and no other)."""
    m = masker or Masker([auth[1]] if auth else [])
    apis = Apis(PrometheusApi("prometheus", prom_url, auth, timeout, m),
                AlertmanagerApi("alertmanager", am_url, auth, timeout, m))
    if ca_file:
        apis.prometheus.verify = apis.alertmanager.verify = ca_file
    return apis


@contextlib.contextmanager
def ca_bundle_file(host: HostSettings, secrets: dict[str, str]) -> Iterator[str | None]:
    """The host's web CA bundle as a file for the HTTPS clients here (None: its UIs speak plain HTTP)."""
    if not host.web.tls:
        yield None
        return
    if "BEGIN CERTIFICATE" not in secrets[WEB_CA]:  # only a placeholder: nothing was ever deployed from here
        raise ApiError(f"{host.name}: no web CA certificate on this machine to check its HTTPS with "
                       f"(a real `inv deploy-configs -H {host.name}` makes it)")
    with tempfile.NamedTemporaryFile("w", prefix="rosey-web-ca.", suffix=".crt") as f:
        f.write(secrets[WEB_CA])
        f.flush()
        yield f.name


# ---------------------------------------------------------------- SSH tunnels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tunnel(conn: Connection, remote_port: int, local_port: int = 0, flag: str = "") -> Iterator[int]:
    """127.0.0.1:<local_port or ephemeral> here -> 127.0.0.1:<remote_port> on the server; yields the local
    port. The local port is bound first, by us (`LocalPortInUse` naming `flag` when taken), then SSH."""
    listener = bind_local(local_port, flag)
    try:
        conn.open()
    except BaseException:
        listener.close()
        raise
    with LocalForward(conn.transport, remote_port, listener) as fwd:
        yield fwd.port


@contextlib.contextmanager
def open_apis(conn: Connection, host: HostSettings, secrets: dict[str, str],
              masker: Masker | None = None, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Apis]:
    """Both clients, each through its own tunnel over `conn`; tunnels close when the block ends."""
    auth = web_auth(host, secrets)
    m = masker or Masker(secrets.values())
    scheme = host.web.scheme
    with (tunnel(conn, host.prometheus.port) as pp, tunnel(conn, host.alertmanager.port) as ap,
          ca_bundle_file(host, secrets) as ca):
        apis = local_apis(f"{scheme}://127.0.0.1:{pp}", f"{scheme}://127.0.0.1:{ap}", auth, m, timeout, ca)
        try:
            yield apis
        finally:
            apis.prometheus.session.close()
            apis.alertmanager.session.close()
