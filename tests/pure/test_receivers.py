"""The receiver table drives inventory parsing, secrets lookup and file placement; data flows one way."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config import layout
from fabfile.config.inventory import load_inventory
from fabfile.config.needed_secrets import SECRET_NAMES, required_secrets
from fabfile.config.receivers import RECEIVER_TYPES
from tests.helpers import module_imports

CONFIG = Path(__file__).resolve().parents[2] / "fabfile" / "config"
BASE = """\
defaults:
  web: {basic_auth: false, allow_from: [10.0.0.0/8]}
  receivers:
    email: {to: [ops@example.com], from: am@example.com, smarthost: "smtp.example.com:25"}
hosts:
  h: {address: h.invalid%s}
"""


def host(tmp_path: Path, items: str = ""):
    (tmp_path / "hosts.yml").write_text(BASE % items)
    return load_inventory(tmp_path / "hosts.yml").host("h")


@pytest.mark.parametrize("rtype", RECEIVER_TYPES, ids=lambda t: t.name)
def test_a_type_needs_exactly_its_secret_and_alertmanager_reads_it(tmp_path: Path, rtype) -> None:
    assert required_secrets(host(tmp_path)) == []
    on = host(tmp_path, f", receivers: {{{rtype.name}: {{}}}}")
    assert required_secrets(on) == [rtype.secret]
    assert rtype.secret in SECRET_NAMES
    assert layout.services_for(rtype.secret) == ("alertmanager",)
    assert layout.remote_path(on, rtype.secret) == f"/opt/rosey-bot/monitoring/secrets/{rtype.secret}"


def test_names_and_secrets_are_unique() -> None:
    names = [t.name for t in RECEIVER_TYPES] + ["email"]
    assert len(set(names)) == len(names)
    assert len(set(SECRET_NAMES)) == len(SECRET_NAMES)
    assert len({t.receiver for t in RECEIVER_TYPES}) == len(RECEIVER_TYPES)


def test_a_variant_setting_picks_the_integration(tmp_path: Path) -> None:
    teams = next(t for t in RECEIVER_TYPES if t.name == "teams")
    default = host(tmp_path, ", receivers: {teams: {}}").receivers.teams
    legacy = host(tmp_path, ", receivers: {teams: {kind: connector}}").receivers.teams
    assert teams.integration(default).config_key == "msteamsv2_configs"
    assert teams.integration(legacy).config_key == "msteams_configs"


def _imports(module: str) -> set[str]:
    return module_imports(CONFIG / f"{module}.py")


def test_data_flows_one_way_inventory_secrets_render() -> None:
    assert not any("render" in m for m in _imports("secrets")), "secrets must not ask render"
    assert not any(m.startswith("fabfile.config.secrets") for m in _imports("render")), \
        "render must not ask secrets: which secrets a host needs comes from config.needed_secrets"
    leaves = ("durations", "labels")  # pure name/duration modules the table may read
    assert {m.split(".")[2] for m in _imports("receivers") if m.startswith("fabfile")} <= set(leaves), \
        "the table is pure data"
    for leaf in leaves:
        assert not any(m.startswith("fabfile") for m in _imports(leaf)), f"{leaf} must stay a leaf"
