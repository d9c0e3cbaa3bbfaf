"""Without -H a command runs on the inventory's default_hosts and says so first; the drill never takes a
production host from the default (issue 12 §0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config.inventory import DEFAULT_INVENTORY, load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.selection import refuse_unnamed_production, select

# nothing listens on 127.0.0.1:1, so a command that gets as far as connecting fails at once, locally
HOSTS = """\
{default}
defaults:
  ssh: {{port: 1, key: /nonexistent}}
  receivers:
    email: {{to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}}
hosts:
  test: {{address: 127.0.0.1, env: test}}
  prod: {{address: 127.0.0.1, env: production, bot_port: 8000}}
"""


def inventory(tmp_path: Path, default: str = "default_hosts: test") -> Path:
    p = tmp_path / "hosts.yml"
    p.write_text(HOSTS.format(default=default))
    return p


def test_shipped_inventory_defaults_to_test() -> None:
    inv = load_inventory(DEFAULT_INVENTORY)
    assert inv.default_hosts == ("test",)
    assert inv.host("test").env != "production"


def test_no_h_takes_the_default_and_names_it(tmp_path: Path) -> None:
    sel = select(load_inventory(inventory(tmp_path)), "")
    assert [h.name for h in sel.hosts] == ["test"] and sel.defaulted
    assert sel.notice() == "hosts: test (default_hosts in hosts.yml; -H NAME to choose others)"


def test_h_wins_over_the_default_and_prints_no_notice(tmp_path: Path) -> None:
    sel = select(load_inventory(inventory(tmp_path)), "prod")
    assert [h.name for h in sel.hosts] == ["prod"] and not sel.defaulted
    assert sel.notice() is None


def test_without_default_no_h_is_still_an_error(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, default=""))
    with pytest.raises(InventoryError, match=r"no host given; use -H with one of: test, prod .*default_h"):
        select(inv, None)


@pytest.mark.parametrize(("default", "error"), [
    ("default_hosts: ghost", r"default_hosts\[0\]: unknown host 'ghost'; known hosts: test, prod"),
    ("default_hosts: []", r"hosts\.yml: default_hosts: empty list; name a host or remove the key"),
    ("default_hosts: {a: 1}", r"hosts\.yml: default_hosts: expected a list, got dict"),
])
def test_bad_default_hosts_is_one_line(tmp_path: Path, default: str, error: str) -> None:
    with pytest.raises(InventoryError, match=error):
        load_inventory(inventory(tmp_path, default=default))


def test_drill_refuses_a_default_production_host(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, default="default_hosts: [test, prod]"))
    with pytest.raises(InventoryError) as e:
        refuse_unnamed_production(select(inv, ""), "the drill")
    assert str(e.value) == ("hosts.yml: default_hosts selects prod (env production); the drill never runs "
                            "on production by default — name it with -H prod if you mean it; "
                            "nothing was changed")


def test_drill_takes_production_when_h_names_it(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, default="default_hosts: prod"))
    refuse_unnamed_production(select(inv, "prod"), "the drill")  # no error
    refuse_unnamed_production(select(inv, "test"), "the drill")
