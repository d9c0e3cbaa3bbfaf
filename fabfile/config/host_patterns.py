"""What `-H` means: the one resolver every task uses (and `default_hosts` too).

`-H` is a comma list of items, each one of:
- a host alias (`prod`) or a group name (`fleet`): hosts.yml refuses a group named like a host, so a plain
  name is never both;
- `group:NAME`: that group, said explicitly;
- a pattern with `*`, `?` or `[...]` (`'bot-*'`): the host aliases it matches (fnmatch, case-sensitive);
  one that matches nothing is an error, not an empty fleet.
The result is every host once, in inventory order, so a fleet always runs and reports in the same order.
Each host remembers whether it was *named* (its alias written out) or only expanded from a group or pattern:
the drill never stops a production bot that a wider selection merely swept in (fabfile/config/selection.py).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fabfile.config.inventory_error import InventoryError

GROUP_PREFIX = "group:"
_PATTERN_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Resolved:
    names: tuple[str, ...]  # host aliases, in inventory order, each once
    named: frozenset[str]  # the aliases written out in -H (not only reached through a group or pattern)
    expanded_by: tuple[str, ...]  # the groups and patterns used, as written ("group prod", "pattern 'bot-*'")


def is_pattern(item: str) -> bool:
    return bool(_PATTERN_CHARS & set(item))


def resolve(spec: str | Sequence[str], hosts: Mapping[str, object], groups: Mapping[str, Sequence[str]],
            where: str, flag: str = "-H") -> Resolved:
    """`spec` ("prod,bot-*" or a list of items) -> the hosts; every problem is one InventoryError line."""
    items = [i.strip() for i in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [i for i in items if i]
    if not items:
        raise InventoryError(f"no host given; use {flag} with one of: {', '.join(hosts)} (comma-separate "
                             f"several{_groups_hint(groups, ', ')}; or group:NAME, a pattern like 'bot-*'), "
                             f"or set default_hosts in {where}")
    chosen: set[str] = set()
    named: set[str] = set()
    expanded: list[str] = []
    for item in items:
        what = f"{flag} {item}".strip()
        if item.startswith(GROUP_PREFIX):
            group = item[len(GROUP_PREFIX):]
            if group not in groups:
                raise InventoryError(f"{where}: {what}: no group {group!r}{_near(group, groups)}; "
                                     f"groups: {', '.join(groups) or 'none (add a top-level groups:)'}")
            chosen.update(groups[group])
            expanded.append(f"group {group}")
        elif is_pattern(item):
            matched = fnmatch.filter(hosts, item)
            if not matched:
                raise InventoryError(f"{where}: {what}: the pattern matches no host alias; "
                                     f"hosts: {', '.join(hosts)}")
            chosen.update(matched)
            expanded.append(f"pattern {item!r}")
        elif item in hosts:
            chosen.add(item)
            named.add(item)
        elif item in groups:
            chosen.update(groups[item])
            expanded.append(f"group {item}")
        else:
            raise InventoryError(f"{where}: unknown host {item!r}{_near(item, [*hosts, *groups])}; known "
                                 f"hosts: {', '.join(hosts)}{_groups_hint(groups)}")
    return Resolved(tuple(h for h in hosts if h in chosen), frozenset(named), tuple(dict.fromkeys(expanded)))


def _near(word: str, choices: Sequence[str] | Mapping[str, object]) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _groups_hint(groups: Mapping[str, Sequence[str]], sep: str = "; ") -> str:
    return f"{sep}groups: {', '.join(groups)}" if groups else ""
