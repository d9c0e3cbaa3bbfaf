"""The top-level `groups:` of hosts.yml: names for sets of hosts, so a fleet is addressed as `-H fleet`.

Why a top-level mapping (`groups: {prod: [bot-a, bot-b]}`) rather than a `group:` field on each host: it sits
beside `clusters:` in the same shape, one line shows a group's members, and a host can be in several groups
(`prod` and `eu`) without a list field merged from `defaults`. Checked when the inventory loads, so a typo
stops every command with one line before anything connects.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fabfile.config import validators, yaml_file
from fabfile.config.inventory_error import fail, shown


def plain_name_key(key: Any, where: str, section: str, noun: str) -> None:
    """A key of `hosts:` or `groups:` is a plain name: text (YAML reads `1`, `yes` as others), no newline,
    no spaces; said at the section, since the key itself is not yet fit to print as a path."""
    if not isinstance(key, str):
        fail(where, section, f"{noun} {shown(key)} is not text: write it in quotes (YAML read "
             f"{yaml_file.as_read(key)})")
    if validators.name(key):
        fail(where, section, f"{noun} {shown(key, 60)} must be a plain name (letters, digits, _ . -)")


def parse_groups(doc: Any, hosts: Mapping[str, object], where: str) -> dict[str, tuple[str, ...]]:
    """`groups: {NAME: [alias, ...]}` -> {NAME: aliases in the order written}; every problem is one line."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        fail(where, "groups", "expected a mapping of group names to lists of host aliases, "
             "e.g. {prod: [bot-a, bot-b]}")
    out: dict[str, tuple[str, ...]] = {}
    for name, members in doc.items():
        plain_name_key(name, where, "groups", "group name")
        if name in hosts:
            fail(where, f"groups.{name}", f"{name!r} is also a host alias, so -H {name} would be ambiguous; "
                 "rename the group")
        out[name] = _members(members, hosts, set(doc), where, name)
    return out


def _members(value: Any, hosts: Mapping[str, object], groups: set[Any], where: str,
             name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        fail(where, f"groups.{name}", f"expected a list of host aliases like [bot-a, bot-b], got "
             f"{shown(value)}")
    if not value:
        fail(where, f"groups.{name}", "empty group; list at least one host or remove the group")
    for i, m in enumerate(value):
        if not isinstance(m, str):
            fail(where, f"groups.{name}[{i}]", f"host alias {shown(m)} is not text: write it in quotes (YAML "
                 f"read {yaml_file.as_read(m)})")
        if m in groups:
            fail(where, f"groups.{name}[{i}]", f"{m!r} is a group; list its hosts (a group holds hosts only)")
        if m not in hosts:
            near = difflib.get_close_matches(m, list(hosts), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known hosts: {', '.join(hosts)}"
            fail(where, f"groups.{name}[{i}]", f"unknown host {m!r}; {hint}")
    if len(set(value)) != len(value):
        twice = next(m for m in value if value.count(m) > 1)
        fail(where, f"groups.{name}", f"host {twice!r} is listed twice; name each host once")
    return tuple(value)
