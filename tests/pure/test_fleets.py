"""Fleets (issue 33 §4): `groups:` in hosts.yml, and `-H` as hosts, groups, `group:NAME` and patterns,
resolved by one function for every task; the drill's production rule over all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.selection import refuse_unnamed_production, select
from tests.fakes import Overlap

HOSTS = """\
{top}
defaults:
  ssh: {{port: 1, key: /nonexistent}}
  receivers:
    email: {{to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}}
hosts:
  bot-a: {{address: 127.0.0.1}}
  bot-b: {{address: 127.0.0.1, env: production}}
  db-1: {{address: 127.0.0.1}}
  bot-c: {{address: 127.0.0.1}}
"""
GROUPS = "groups:\n  fleet: [bot-c, bot-a]\n  prod: [bot-b]"


def inv_file(tmp_path: Path, top: str = GROUPS) -> Path:
    p = tmp_path / "hosts.yml"
    p.write_text(HOSTS.format(top=top))
    return p


def names(tmp_path: Path, spec: str, top: str = GROUPS) -> list[str]:
    return [h.name for h in select(load_inventory(inv_file(tmp_path, top)), spec).hosts]


def test_groups_load_in_the_order_written(tmp_path: Path) -> None:
    inv = load_inventory(inv_file(tmp_path))
    assert inv.groups == {"fleet": ("bot-c", "bot-a"), "prod": ("bot-b",)}


def test_no_groups_is_no_groups(tmp_path: Path) -> None:
    assert load_inventory(inv_file(tmp_path, "")).groups == {}


@pytest.mark.parametrize(("top", "error"), [
    ("groups: [bot-a]", r"^hosts\.yml: groups: expected a mapping of group names"),
    ("groups: {fleet: [bot-a, ghost]}", r"^hosts\.yml: groups\.fleet\[1\]: unknown host 'ghost'; known "),
    ("groups: {fleet: [bot-a, db-2]}", r"groups\.fleet\[1\]: unknown host 'db-2'; did you mean 'db-1'\?$"),
    ("groups: {bot-a: [bot-b]}", r"^hosts\.yml: groups\.bot-a: 'bot-a' is also a host alias, so -H bot-a "
                                 r"would "
                                 r"be ambiguous; rename the group$"),
    ("groups: {fleet: []}", r"^hosts\.yml: groups\.fleet: empty group; list at least one host or remove"),
    ("groups: {fleet: }", r"^hosts\.yml: groups\.fleet: expected a list of host aliases .* got None$"),
    ("groups: {fleet: bot-a}", r"^hosts\.yml: groups\.fleet: expected a list of host aliases"),
    ("groups: {fleet: [bot-a, 1]}", r"^hosts\.yml: groups\.fleet\[1\]: host alias 1 is not text: write"),
    ("groups: {1: [bot-a]}", r"^hosts\.yml: groups: group name 1 is not text: write it in quotes"),
    ("groups: {yes: [bot-a]}", r"^hosts\.yml: groups: group name True is not text: .*yes/no"),
    ("groups: {'a b': [bot-a]}", r"^hosts\.yml: groups: group name 'a b' must be a plain name"),
    ("groups: {'p*': [bot-a]}", r"^hosts\.yml: groups: group name 'p\*' must be a plain name"),
    ("groups: {fleet: [bot-a, bot-a]}", r"^hosts\.yml: groups\.fleet: host 'bot-a' is listed twice"),
    ("groups: {a: [bot-a], b: [a]}", r"^hosts\.yml: groups\.b\[0\]: 'a' is a group; list its hosts"),
])
def test_a_bad_group_is_one_line_naming_the_field(tmp_path: Path, top: str, error: str) -> None:
    with pytest.raises(InventoryError, match=error) as e:
        load_inventory(inv_file(tmp_path, top))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("spec", "expected"), [
    ("bot-a", ["bot-a"]),
    ("fleet", ["bot-a", "bot-c"]),  # a group: inventory order, not the group's
    ("group:fleet", ["bot-a", "bot-c"]),
    ("bot-*", ["bot-a", "bot-b", "bot-c"]),
    ("bot-[ab]", ["bot-a", "bot-b"]),
    ("db-?", ["db-1"]),
    ("bot-c,db-1,bot-a", ["bot-a", "db-1", "bot-c"]),  # inventory order, whatever -H's order
    ("group:fleet,bot-*,bot-a", ["bot-a", "bot-b", "bot-c"]),  # each host once
    (" fleet , prod ,", ["bot-a", "bot-b", "bot-c"]),
])
def test_h_resolves_hosts_groups_and_patterns(tmp_path: Path, spec: str, expected: list[str]) -> None:
    assert names(tmp_path, spec) == expected


@pytest.mark.parametrize(("spec", "error"), [
    ("ghost", r"^hosts\.yml: unknown host 'ghost'; known hosts: bot-a, bot-b, db-1, bot-c; "
              r"groups: fleet, prod$"),
    ("flet", r"^hosts\.yml: unknown host 'flet' \(did you mean 'fleet'\?\); known hosts: "),
    ("group:nope", r"^hosts\.yml: -H group:nope: no group 'nope'; groups: fleet, prod$"),
    ("group:bot-a", r"^hosts\.yml: -H group:bot-a: no group 'bot-a'"),  # a host is not a group
    ("web-*", r"^hosts\.yml: -H web-\*: the pattern matches no host alias; hosts: bot-a, bot-b, "
              r"db-1, bot-c$"),
    ("bot-a,web-*", r"-H web-\*: the pattern matches no host alias"),  # one empty item spoils the list
    (",", r"^no host given; use -H with one of: bot-a, bot-b, db-1, bot-c \(comma-separate several, groups: "
          r"fleet, prod; or group:NAME, a pattern like 'bot-\*'\), or set default_hosts in hosts\.yml$"),
])
def test_bad_h_is_one_line(tmp_path: Path, spec: str, error: str) -> None:
    with pytest.raises(InventoryError, match=error):
        select(load_inventory(inv_file(tmp_path)), spec)


def test_group_prefix_without_groups_says_there_are_none(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"no group 'x'; groups: none \(add a top-level groups:\)$"):
        select(load_inventory(inv_file(tmp_path, "")), "group:x")


def test_the_first_line_names_what_a_group_or_pattern_picked(tmp_path: Path) -> None:
    inv = load_inventory(inv_file(tmp_path))
    assert select(inv, "fleet,db-*").notice() == \
        "hosts: bot-a,db-1,bot-c (group fleet, pattern 'db-*' in hosts.yml)"
    assert select(inv, "bot-a,db-1").notice() is None  # named one by one: nothing to tell


def test_default_hosts_may_be_a_group_or_a_pattern(tmp_path: Path) -> None:
    inv = load_inventory(inv_file(tmp_path, GROUPS + "\ndefault_hosts: [fleet, 'db-*']"))
    assert inv.default_hosts == ("bot-a", "db-1", "bot-c")
    sel = select(inv, "")
    assert sel.notice() == "hosts: bot-a,db-1,bot-c (default_hosts in hosts.yml; -H NAME to choose others)"


def test_default_hosts_pattern_matching_nothing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"^hosts\.yml: default_hosts\[1\]: web-\*: the pattern matches"):
        load_inventory(inv_file(tmp_path, GROUPS + "\ndefault_hosts: [fleet, 'web-*']"))


@pytest.mark.parametrize("spec", ["prod", "group:prod", "bot-*", "fleet,bot-*"])
def test_the_drill_refuses_production_a_group_or_pattern_swept_in(tmp_path: Path, spec: str) -> None:
    sel = select(load_inventory(inv_file(tmp_path)), spec)
    with pytest.raises(InventoryError) as e:
        refuse_unnamed_production(sel, "the drill")
    assert str(e.value).startswith("hosts.yml: ")
    assert "selects bot-b (env production); the drill never runs on a production host a group or pattern " \
           "swept in — add -H ...,bot-b if you mean it" in str(e.value)


@pytest.mark.parametrize("spec", ["bot-b", "bot-*,bot-b", "group:prod,bot-b", "fleet", "bot-[ac]"])
def test_the_drill_takes_production_only_named(tmp_path: Path, spec: str) -> None:
    refuse_unnamed_production(select(load_inventory(inv_file(tmp_path)), spec), "the drill")  # no raise


def test_the_drill_refuses_production_from_a_default_group(tmp_path: Path) -> None:
    sel = select(load_inventory(inv_file(tmp_path, GROUPS + "\ndefault_hosts: prod")), None)
    with pytest.raises(InventoryError, match=r"default_hosts selects bot-b \(env production\); the drill"):
        refuse_unnamed_production(sel, "the drill")


@pytest.mark.parametrize(("parallel", "peak"), [(1, 1), (2, 2), (10, 4)])
def test_status_reads_at_most_parallel_hosts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], parallel: int,
                                                     peak: int) -> None:
    from fabfile.ssh import session
    from fabfile.status import cli

    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-12345")
    monkeypatch.setenv("ROSEY_SMTP_PASSWORD", "pw-12345")
    overlap = Overlap()

    def slow_unreachable(host: object) -> None:
        with overlap.busy(0.1):
            raise OSError("no route")

    monkeypatch.setattr(session, "connect", slow_unreachable)
    inv = load_inventory(inv_file(tmp_path))
    assert cli.cli_status(inv, list(inv.hosts.values()), parallel=parallel) == 1
    assert overlap.peak == peak
    assert capsys.readouterr().out.count("no route") == 4
