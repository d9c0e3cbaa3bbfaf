"""Maintenance silences through Alertmanager API v2, and "would this silence swallow that alert?".

Silences are tagged with `createdBy = user@machine` of whoever ran the tool, so `unsilence --all-mine`
finds exactly the ones this person made from this machine and nobody else's.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from fabfile.alerting.api import AlertmanagerApi, parse_time
from fabfile.config import durations
from fabfile.config.inventory import Inventory
from fabfile.config.settings import HostSettings
from fabfile.errors import UserError, quoted
from fabfile.output import Output

_MATCHER_RE = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class SilenceError(UserError):
    """A user mistake (bad matcher, bad duration, unknown id); one line that says what to type instead."""


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def op(self) -> str:
        return {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (self.is_regex, self.is_equal)]

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    def api(self) -> dict:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    @classmethod
    def from_api(cls, d: dict) -> Matcher:
        return cls(d["name"], d["value"], bool(d.get("isRegex")), bool(d.get("isEqual", True)))

    def matches(self, labels: dict[str, str]) -> bool:
        """Alertmanager semantics: a missing label is the empty string; regexes are anchored."""
        v = labels.get(self.name, "")
        hit = re.fullmatch(self.value, v) is not None if self.is_regex else v == self.value
        return hit == self.is_equal


def parse_matcher(text: str) -> Matcher:
    m = _MATCHER_RE.match(text)
    if not m:
        raise SilenceError(
            f"bad matcher {text!r}: write name=value, name!=value, name=~regex or name!~regex "
            f"(e.g. alertname=BotDown env=test)")
    name, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if value[:1] in ("=", "~"):
        raise SilenceError(f"bad matcher {text!r}: operators are =, !=, =~ and !~ "
                           f"(the value starts with {value[0]!r})")
    is_regex = op in ("=~", "!~")
    if is_regex:
        try:
            re.compile(value)
        except re.error as e:
            raise SilenceError(f"bad matcher {text!r}: invalid regular expression ({e})") from None
    if value == "" and op == "=":
        raise SilenceError(f"bad matcher {text!r}: an empty value would match alerts WITHOUT that label; "
                           f"give a value")
    return Matcher(name, value, is_regex, op in ("=", "=~"))


def parse_duration(text: str) -> float:
    """`2h`, `90m`, `1h30m`, `1d` -> seconds; a SilenceError names what to type instead."""
    shown = quoted(text)
    try:
        seconds = durations.parse_duration(text)
    except ValueError:
        raise SilenceError(f"bad duration {shown}: use e.g. 30m, 2h, 1h30m or 1d") from None
    if seconds <= 0:
        raise SilenceError(f"bad duration {shown}: must be longer than 0")
    if seconds > MAX_SILENCE:  # a maintenance window, not a way to switch alerting off for good
        raise SilenceError(f"bad duration {shown}: at most 365d (for longer, change the routes in hosts.yml)")
    return float(seconds)


MAX_SILENCE = 365 * 86400
_SILENCE_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def me() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def silence_matches(silence: dict, labels: dict[str, str]) -> bool:
    return all(Matcher.from_api(m).matches(labels) for m in silence.get("matchers", []))


def describe(silence: dict, server_now: float | None = None) -> str:
    """One line; "min left" by the server's clock when known (`server_now`)."""
    ms = " ".join(str(Matcher.from_api(m)) for m in silence.get("matchers", []))
    ends = silence.get("endsAt", "")
    left = ""
    now = time.time() if server_now is None else server_now
    with contextlib.suppress(ValueError):
        left = f", {max(0, parse_time(ends) - now) / 60:.0f} min left"
    return (f"{silence.get('id')} [{ms}] by {silence.get('createdBy')} "
            f"({silence.get('comment', '')!s}{left})")


def swallowing(am: AlertmanagerApi, labels: dict[str, str]) -> list[dict]:
    """Active silences that would mute an alert with these labels."""
    return [s for s in am.silences("active") if silence_matches(s, labels)]


def check_request(matchers: list[Matcher], comment: str) -> None:
    """What a silence needs before any host is contacted."""
    if not matchers:
        raise SilenceError("give at least one matcher, e.g. alertname=BotDown (a silence without matchers "
                           "is refused by Alertmanager)")
    if not comment.strip():
        raise SilenceError('give --comment "why" (it is shown to everyone who sees the silence)')


def create(am: AlertmanagerApi, matchers: list[Matcher], duration: float, comment: str,
           created_by: str | None = None) -> str:
    check_request(matchers, comment)
    # The server's clock, not ours: with ours ahead, the silence would sit "pending" (not yet muting) and end
    # that much later. A start slightly past is clamped to "now" by Alertmanager.
    now = am.server_now() - 1.0
    return am.create_silence([m.api() for m in matchers], now, now + duration, created_by or me(), comment)


def remove(am: AlertmanagerApi, ids: list[str] = (), all_mine: bool = False,
           created_by: str | None = None) -> list[dict]:
    """Expire the given silences (or all active/pending ones created by this user); returns them."""
    live = am.silences(None)
    live = [s for s in live if s.get("status", {}).get("state") in ("active", "pending")]
    if all_mine:
        who = created_by or me()
        chosen = [s for s in live if s.get("createdBy") == who]
    else:
        by_id = {s["id"]: s for s in live}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise SilenceError(f"no active silence with id {', '.join(unknown)} "
                               f"(list them with `amtool silence query` or the Alertmanager UI)")
        chosen = [by_id[i] for i in ids]
    for s in chosen:
        am.expire_silence(s["id"])
    return chosen


# ---------------------------------------------------------------- CLI glue (tasks.py stays thin)


def _on_host(inventory: Inventory, host: HostSettings, fn: Callable[[AlertmanagerApi], int],
             out: Output) -> int:
    from fabfile.alerting.api import ApiError
    from fabfile.ssh.session import HostUnreachable, open_session

    try:
        with open_session(inventory, host, apis=True) as session:
            assert session.apis is not None
            try:
                return fn(session.apis.alertmanager)
            except ApiError as e:
                out.line(f"{host.name}: error: {session.masker(str(e))}")
            except Exception as e:  # SSH trouble: one line, masked
                out.line(f"{host.name}: error: {session.masker(f'{type(e).__name__}: {e}')}")
            return 1
    except HostUnreachable as e:
        out.line(f"{host.name}: error: {e}")
        return 1


def cli_silence(inventory: Inventory, hosts: list[HostSettings], matchers: str, duration: str,
                comment: str) -> int:
    ms = [parse_matcher(t) for t in re.split(r"[\s,]+", matchers.strip()) if t]
    seconds = parse_duration(duration)
    check_request(ms, comment)
    out, code = Output(), 0
    for host in hosts:
        def make(am: AlertmanagerApi, host: HostSettings = host) -> int:
            sid = create(am, ms, seconds, comment)
            out.line(f"{host.name}: silence {sid} for {duration} by {me()}: " + " ".join(map(str, ms)))
            return 0
        code = max(code, _on_host(inventory, host, make, out))
    return code


def cli_unsilence(inventory: Inventory, hosts: list[HostSettings], which: str) -> int:
    all_mine = which.strip().lower() in ("mine", "all-mine", "--all-mine")
    ids = [] if all_mine else [i for i in re.split(r"[\s,]+", which.strip()) if i]
    bad = next((i for i in ids if not _SILENCE_ID.fullmatch(i)), None)
    if bad is not None:  # said before any host is contacted
        raise SilenceError(f"--id {quoted(bad)}: not a silence ID (a UUID like "
                           "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b, as `inv silence` printed it)")
    out, code = Output(), 0
    for host in hosts:
        def drop(am: AlertmanagerApi, host: HostSettings = host) -> int:
            gone = remove(am, ids, all_mine=all_mine)
            if not gone:
                out.line(f"{host.name}: no active silence created by {me()}")
            for s in gone:
                out.line(f"{host.name}: expired {describe(s, am.clock.now())}")
            return 0
        code = max(code, _on_host(inventory, host, drop, out))
    return code
