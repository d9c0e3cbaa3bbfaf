"""Load `hosts.yml` into typed, immutable host settings (fabfile/config/settings.py).

This is the only module that reads the inventory: it merges `defaults:` under each host, converts and
validates every value, joins the `clusters:` and runs the checks across fields. Every problem becomes one
`InventoryError` line naming the file, the field and the fix, raised before anything touches a server.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
import typing
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fabfile.config import remote_write, validators, yaml_file
from fabfile.config.clusters import join_clusters
from fabfile.config.groups import parse_groups, plain_name_key
from fabfile.config.host_patterns import resolve
from fabfile.config.inventory_error import InventoryError, fail, shown
from fabfile.config.needed_secrets import env_alias
from fabfile.config.settings import YAML_KEYS, HostSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = PROJECT_ROOT / "hosts.yml"
MAX_DIGITS = 18  # a quoted "8001" is read as a number; one this long is no setting's (and int() has limits)


def _yaml_key(name: str) -> str:
    return YAML_KEYS.get(name, name)


def _convert(tp: Any, value: Any, where: str, path: str, noun: str = "it") -> Any:
    """Convert a YAML value to the annotated type, or fail naming the field. Nothing is converted behind
    the user's back: text must be text in the YAML, a number plain decimal digits."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, path, noun)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        return _build(tp, value, where, path)
    if origin is tuple:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            fail(where, path, f"expected a list, got {yaml_file.kind(value)}")
        item = typing.get_args(tp)[0]
        return tuple(_convert(item, v, where, f"{path}[{i}]", noun) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            fail(where, path, f"expected a mapping, got {yaml_file.kind(value)}")
        kt, vt = typing.get_args(tp)
        out: dict = {}
        for k, v in value.items():
            key = _convert(kt, k, where, f"{path}.{k}")
            if key in out:  # `"22"` and `22` are one key once converted: one would silently win
                fail(where, f"{path}.{k}", f"names {key} a second time; keep one")
            out[key] = _convert(vt, v, where, f"{path}.{k}")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            fail(where, path, f"expected true or false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, yaml_file.SpelledInt):
            fail(where, path, f"write the number in plain decimal digits (YAML 1.1 reads {value.text} as "
                 f"{int(value)})")
        if isinstance(value, yaml_file.LongNumber) or (
                isinstance(value, str) and validators.ascii_digits(value) and len(value) > MAX_DIGITS):
            fail(where, path, f"{len(getattr(value, 'text', value))} digits is more than any setting takes; "
                 "give the value its bound allows (README, the inventory table)")
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and validators.ascii_digits(value):
                return int(value)
            fail(where, path, f"expected a whole number, got {shown(value)}")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (list, dict)):
            fail(where, path, f"expected text, got {yaml_file.kind(value)}")
        text = _spelled(value)
        like = '"09:00"' if noun == "the time" else f'"{text}"' if text is not None else '"..."'
        fail(where, path, f"write {noun} in quotes, like {like} (YAML read {yaml_file.as_read(value)})")
    raise TypeError(f"unsupported type {tp!r}")  # a programming error, not user input


def _spelled(value: Any) -> str | None:
    """How an unquoted number was written in the YAML (`010`, `2.48`, `1:22`); None for anything else."""
    if isinstance(value, yaml_file.LongNumber):
        return value.text
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return getattr(value, "text", None) or str(value)


def _build(cls: type, data: Any, where: str, path: str) -> Any:
    if not isinstance(data, dict):
        fail(where, path or "top level", f"expected a mapping of settings, got {yaml_file.kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {_yaml_key(f.name): f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(fields))}"
            fail(where, f"{path}.{key}".lstrip("."), f"unknown setting; {hint}")
    kwargs = {}
    for key, f in fields.items():
        sub = f"{path}.{key}".lstrip(".")
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                fail(where, sub, "required setting is missing; add it to the host or to defaults")
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if data[key] is None and required and dataclasses.is_dataclass(hints[f.name]):  # `email: null`
            fail(where, sub, f.metadata.get("if_null", "required settings are empty (null); give them"))
        check = f.metadata.get("check")
        text = _spelled(data[key])
        if check and text is not None and hints[f.name] in (str, str | None) and check(text):
            fail(where, sub, check(text))  # wrong even as text (`version: 2.48`): say that, not "quote it"
        noun = "the time" if check is validators.hhmm else "it"
        value = _convert(hints[f.name], data[key], where, sub, noun)
        if check and value is not None:
            err = check(value)
            if err:
                fail(where, sub, err)
        kwargs[f.name] = value
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge mappings; lists and scalars in `over` replace those in `base`."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _loopback_url(url: str) -> bool:
    """A URL on the machine that fetches it: nothing on the network can change what it serves."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_firewall_lists(h: HostSettings, where: str) -> None:
    """firewall.open_ports opens a port to everyone: one of the ports this project governs there would bypass
    web.allow_from and the public-UI guard (or open gossip to the world); a port in both lists, or SSH in
    close_ports (SSH is always kept open), says two things at once."""
    fw = h.firewall
    governed = {h.prometheus.port: "prometheus.port (opened by web.allow_from)",
                h.alertmanager.port: "alertmanager.port (opened by web.allow_from)",
                h.alertmanager.cluster_port: "alertmanager.cluster_port (opened to the cluster's peers)"}
    for i, port in enumerate(fw.open_ports):
        if port in governed:
            fail(where, f"hosts.{h.name}.firewall.open_ports[{i}]", f"{port} is {governed[port]}; remove it "
                 "here (to open the UIs to everyone, use web.allow_from)")
    for i, port in enumerate(fw.close_ports):
        if port in fw.open_ports:
            fail(where, f"hosts.{h.name}.firewall.close_ports[{i}]",
                 f"{port} is also in open_ports; keep one")
        if port == h.ssh.port or port in governed:
            what = "ssh.port (always kept open)" if port == h.ssh.port else governed[port]
            fail(where, f"hosts.{h.name}.firewall.close_ports[{i}]", f"{port} is {what}; remove it here")


def _cross_checks(h: HostSettings, where: str) -> None:
    err = validators.base_dir_allowed(h.base_dir, h.base_dir_outside_allowlist)
    if err:
        fail(where, f"hosts.{h.name}.base_dir", err)
    bh = h.business_hours
    if bh.start >= bh.end:
        fail(where, f"hosts.{h.name}.business_hours",
             f"start {bh.start} must be before end {bh.end} (same day)")
    ports = {"prometheus.port": h.prometheus.port, "alertmanager.port": h.alertmanager.port,
             "bot_port": h.bot_port, "ssh.port": h.ssh.port}
    if h.cluster:
        ports["alertmanager.cluster_port"] = h.alertmanager.cluster_port
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            fail(where, f"hosts.{h.name}.{name}",
                 f"port {port} is already used by {seen[port]}; pick another")
        seen[port] = name
    _check_firewall_lists(h, where)
    for field_path, problem in remote_write.problems(h.remote_write, h.prometheus.agent):
        fail(where, f"hosts.{h.name}.{field_path}", problem)
    if h.prometheus.agent and h.cluster:
        fail(where, f"hosts.{h.name}.prometheus.mode", f"agent mode evaluates no rules, so it cannot "
             f"watch its peers in cluster {h.cluster.name!r} (MonitoringPeerDown); take it out of the "
             f"cluster or use mode: server")
    if not h.web.basic_auth and h.web.open_to_everyone and not h.web.public:
        fail(where, f"hosts.{h.name}.web.basic_auth",
             f"is false while web.allow_from includes {h.web.open_to_everyone}: anyone could reload, stop or "
             "silence this monitoring; narrow web.allow_from, turn basic_auth on, or set web.public: true if "
             "the UIs are meant to be public")
    for comp in ("prometheus", "alertmanager"):
        c = getattr(h, comp)
        if not c.release_url.startswith(("http://", "https://")):
            fail(where, f"hosts.{h.name}.{comp}.release_url", "expected an http(s):// URL")
        if c.release_url.startswith("http://") and not (h.is_lab or c.sha256 or _loopback_url(c.release_url)):
            fail(where, f"hosts.{h.name}.{comp}.release_url",
                 "plain http:// without a pinned sha256: the checksum file would come from the same "
                 f"unauthenticated source; use https:// or pin {comp}.sha256")


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: dict[str, HostSettings]
    default_hosts: tuple[str, ...] = ()  # used when -H is absent (fabfile/config/selection.py)
    groups: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # top-level `groups:`

    def host(self, alias: str) -> HostSettings:
        if alias not in self.hosts:
            raise InventoryError(
                f"{self.path.name}: unknown host {alias!r}; known hosts: {', '.join(self.hosts)}")
        return self.hosts[alias]

    def select(self, spec: str | None) -> list[HostSettings]:
        """`-H test,prod`, `-H fleet`, `-H 'bot-*'` -> settings, in inventory order, each once."""
        return [self.hosts[a] for a in resolve(spec or "", self.hosts, self.groups, self.path.name).names]

    def secrets_path(self, host: HostSettings) -> Path:
        p = Path(host.secrets_file or "secrets.yml").expanduser()
        return p if p.is_absolute() else self.path.parent / p


def load_inventory(path: str | Path | None = None) -> Inventory:
    path = Path(path) if path else DEFAULT_INVENTORY
    where = path.name
    try:
        text = yaml_file.read_text(path)
    except FileNotFoundError:
        raise InventoryError(f"{path}: inventory not found; create it (see README 'Inventory')") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(yaml_file.unreadable(path, e)) from None
    try:
        doc = yaml_file.parse(text)
    except yaml_file.DuplicateKey as e:
        raise InventoryError(f"{where}{yaml_file.where(e)}: {e.problem}") from None
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or "invalid YAML"
        at = yaml_file.where(e)
        raise InventoryError(f"{where}: not valid YAML{at}: {problem}; fix the syntax") from None
    if not isinstance(doc, dict):
        fail(where, "top level", "expected a mapping with 'defaults' and 'hosts'")
    for key in doc:
        if key not in ("defaults", "hosts", "default_hosts", "clusters", "groups"):
            fail(where, str(key), "unknown top-level key; only 'defaults', 'hosts', 'default_hosts', "
                 "'clusters' and 'groups' are allowed")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        fail(where, "defaults", "expected a mapping of settings")
    hosts_doc = doc.get("hosts")
    if not isinstance(hosts_doc, dict) or not hosts_doc:
        fail(where, "hosts", "expected a mapping of host aliases to settings (at least one host)")
    hosts: dict[str, HostSettings] = {}
    for alias, entry in hosts_doc.items():
        plain_name_key(alias, where, "hosts", "host alias")  # `1`, `~`, `yes`: YAML made it no text
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            fail(where, f"hosts.{alias}", f"expected a mapping of settings, got {yaml_file.kind(entry)}")
        if "name" in entry:
            fail(where, f"hosts.{alias}.name", "the alias is the name; remove this key")
        if "cluster" in entry or "cluster" in defaults:
            fail(where, f"hosts.{alias}.cluster", "name the host in the top-level 'clusters:' instead")
        merged = _merge(defaults, entry)
        merged["name"] = alias
        if isinstance(merged.get("ssh"), dict) and isinstance(merged["ssh"].get("key"), str):
            merged["ssh"] = dict(merged["ssh"], key=str(Path(merged["ssh"]["key"]).expanduser()))
        h = _build(HostSettings, merged, where, f"hosts.{alias}")
        hosts[alias] = h
    _env_names_differ(hosts, where)
    hosts = join_clusters(doc.get("clusters"), hosts, where)
    for h in hosts.values():
        _cross_checks(h, where)
    groups = parse_groups(doc.get("groups"), hosts, where)
    return Inventory(path=path, hosts=hosts, default_hosts=_default_hosts(doc, hosts, groups, where),
                     groups=groups)


def _env_names_differ(hosts: dict[str, HostSettings], where: str) -> None:
    """Two aliases reading their secrets from the same ROSEY_<ALIAS>_* variables would silently share them."""
    seen: dict[str, str] = {}
    for alias in hosts:
        other = seen.setdefault(env_alias(alias), alias)
        if other != alias:
            fail(where, f"hosts.{alias}", f"hosts {other!r} and {alias!r} would both read their secrets from "
                 f"ROSEY_{env_alias(alias)}_* environment variables; rename one")


def _default_hosts(doc: dict, hosts: dict[str, HostSettings], groups: dict[str, tuple[str, ...]],
                   where: str) -> tuple[str, ...]:
    """`default_hosts: test`, `[test, lab]`, a group or a pattern: resolved like -H, used without -H."""
    value = doc.get("default_hosts")
    if value is None:
        return ()
    names = _convert(tuple[str, ...], value, where, "default_hosts")
    if not names:
        fail(where, "default_hosts", "empty list; name a host or remove the key")
    for i, name in enumerate(names):
        try:
            resolve([name], hosts, groups, where, flag="")
        except InventoryError as e:
            fail(where, f"default_hosts[{i}]", str(e).removeprefix(f"{where}: "))
    return resolve(names, hosts, groups, where).names
