"""The top-level `clusters:` of hosts.yml: which hosts gossip together, checked and joined into each member's
settings (its `cluster`, the others as peers)."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
from typing import Any

from fabfile.config import validators
from fabfile.config.durations import parse_duration
from fabfile.config.inventory_error import fail
from fabfile.config.settings import Cluster, HostSettings, Peer
from fabfile.config.versions import supports

# Alertmanager's --cluster.peer-timeout (its default; the units do not change it): member k of a cluster waits
# k times this before it sends what the members before it have not.
CLUSTER_PEER_TIMEOUT = 15.0


def _peer(h: HostSettings) -> Peer:
    return Peer(name=h.name, address=h.reached_by_peers, env=h.env, prometheus_port=h.prometheus.port,
                alertmanager_port=h.alertmanager.port, cluster_port=h.alertmanager.cluster_port,
                web_username=h.web.username if h.web.basic_auth else None, web_tls=h.web.tls)


def _cluster_address(h: HostSettings, where: str, name: str) -> str:
    """A clustered host's peer address: an IP (Alertmanager binds the gossip to it), not loopback."""
    field_name = "peer_address" if h.peer_address else "address"
    value = h.reached_by_peers
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        fail(where, f"hosts.{h.name}.{field_name}",
             f"host is in cluster {name!r}, so its peers need an IP address to reach it (gossip binds "
             f"to it), got {value!r}; set peer_address to its private IP")
    if ip.is_loopback or ip.is_unspecified:
        fail(where, f"hosts.{h.name}.{field_name}",
             f"host is in cluster {name!r} but {value} cannot be reached by its peers; "
             f"set peer_address to the address they reach it on (a private one where there is one)")
    return value


def join_clusters(doc: Any, hosts: dict[str, HostSettings], where: str) -> dict[str, HostSettings]:
    """`clusters: {NAME: [alias, alias, ...]}` -> each member's `cluster` (the others as peers)."""
    if doc is None:
        return hosts
    if not isinstance(doc, dict):
        fail(where, "clusters", "expected a mapping of cluster names to lists of host aliases")
    member_of: dict[str, str] = {}
    out = dict(hosts)
    for name, entry in doc.items():
        if not isinstance(name, str) or validators.name(name):
            fail(where, f"clusters.{name}", "cluster name must be a plain name (letters, digits, _ . -)")
        members, tls_setting = _cluster_entry(entry, where, name)
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            fail(where, f"clusters.{name}", "expected a list of host aliases, e.g. [test, prod]")
        if len(set(members)) != len(members):
            fail(where, f"clusters.{name}", "a host is listed twice; name each host once")
        if len(members) < 2:
            fail(where, f"clusters.{name}",
                 "a cluster needs at least two hosts; remove it for a single host")
        addresses: dict[str, str] = {}
        for m in members:
            if m not in hosts:
                near = difflib.get_close_matches(m, hosts, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f"; known hosts: {', '.join(hosts)}"
                fail(where, f"clusters.{name}", f"unknown host {m!r}{hint}")
            if m in member_of:
                fail(where, f"clusters.{name}",
                     f"host {m!r} is already in cluster {member_of[m]!r}; a host belongs to one cluster")
            member_of[m] = name
            addr = _cluster_address(hosts[m], where, name)
            if addr in addresses:
                fail(where, f"hosts.{m}.peer_address",
                     f"{addr} is also {addresses[addr]}'s; each member needs its own peer address")
            addresses[addr] = m
        tls = _gossip_tls(tls_setting, [hosts[m] for m in members], where, name)
        for m in members:
            _check_cluster_timing(hosts[m], len(members), where, name)
            peers = tuple(_peer(hosts[o]) for o in members if o != m)
            out[m] = dataclasses.replace(hosts[m], cluster=Cluster(name=name, peers=peers, gossip_tls=tls))
    return out


def _cluster_entry(entry: Any, where: str, name: str) -> tuple[Any, Any]:
    """`NAME: [a, b]` or `NAME: {members: [a, b], gossip_tls: auto|true|false}` -> (members, gossip_tls)."""
    if not isinstance(entry, dict):
        return entry, "auto"
    unknown = sorted(set(map(str, entry)) - {"members", "gossip_tls"})
    if unknown:
        fail(where, f"clusters.{name}.{unknown[0]}", "unknown key; a cluster has 'members' and 'gossip_tls'")
    if "members" not in entry:
        fail(where, f"clusters.{name}.members", "missing: the list of host aliases, e.g. [test, prod]")
    return entry["members"], entry.get("gossip_tls", "auto")


def _gossip_tls(setting: Any, members: list[HostSettings], where: str, name: str) -> bool:
    """auto: on when every member's Alertmanager can (0.24+); true: required, refused where it cannot."""
    if setting not in ("auto", True, False):
        fail(where, f"clusters.{name}.gossip_tls", f"expected auto, true or false, got {setting!r}")
    old = [h for h in members if not supports("alertmanager --cluster.tls-config", h.alertmanager.version)]
    if setting is True and old:
        fail(where, f"hosts.{old[0].name}.alertmanager.version",
             f"{old[0].alertmanager.version} has no gossip TLS (0.24.0 or newer), which cluster {name!r} "
             f"asks for with gossip_tls: true; upgrade it or set gossip_tls: auto")
    return setting is True or (setting == "auto" and not old)


def _check_cluster_timing(h: HostSettings, members: int, where: str, name: str) -> None:
    """A group_interval shorter than the members' turns makes a cluster re-send a resolved alert as firing:
    the last member decides on what it saw at its flush, after the first one already sent the resolve
    (alertmanager#4008). Longer than every turn plus one for the send, the resolve is never overtaken."""
    need = members * CLUSTER_PEER_TIMEOUT
    value = h.alertmanager.group_interval
    if parse_duration(value) < need:
        fail(where, f"hosts.{h.name}.alertmanager.group_interval",
             f"{value} is too short for cluster {name!r} of {members}: its last member sends "
             f"{(members - 1) * CLUSTER_PEER_TIMEOUT:g}s (--cluster.peer-timeout) after the first and would "
             f"re-send a resolved alert as firing; set at least {need:g}s for the cluster's hosts")


def alone_warning(host: HostSettings) -> str | None:
    """A host with no cluster peer and no heartbeat: its own Prometheus and Alertmanager die with it, so
    nothing reports that it died. Said on every deploy, since that silence looks like health."""
    if host.cluster is not None or host.receivers.heartbeat is not None:
        return None
    return (f"{host.name} is alone: when this server dies, nobody is told (no cluster peer, no heartbeat); "
            f"put it in a cluster with another host (`clusters:` in hosts.yml) or set receivers.heartbeat "
            f"(README \"When the server itself dies\")")
