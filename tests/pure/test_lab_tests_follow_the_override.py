"""Lab tests follow `ROSEY_LAB_HOSTS` / `ROSEY_INVENTORY`: none names a lab host or the inventory itself.

With the override set (README: two test runs on one machine), a test that says `-H lab` or reads hosts.yml
deploys to the VM someone else is using. Hosts come from the fixtures (`lab_host.name`, `deployed_lab.host`),
the inventory from `tests.lab_fixtures.lab_inventory()` / `lab_inventory_path()`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from fabfile.config.inventory import DEFAULT_INVENTORY
from tests.helpers import REPO

LAB_TESTS = REPO / "tests" / "lab"
FIXTURE_DEFAULTS = {"lab", "lab2"}  # tests/lab_fixtures.py without ROSEY_LAB_HOSTS
NAME = re.compile(r"[\w.-]+")
HOSTS_ARG = re.compile(r"(?:^|\s)(?:-H|--hosts)[\s=]+([\w.,-]+)")
# read the default inventory instead of the one the fixtures use
INVENTORY_LOADERS = {"load_inventory", "lab_settings"}
INVENTORY_NAMES = {"DEFAULT_INVENTORY"}


def lab_host_names() -> set[str]:
    hosts = yaml.safe_load(Path(DEFAULT_INVENTORY).read_text())["hosts"]
    return FIXTURE_DEFAULTS | {name for name, h in hosts.items() if isinstance(h, dict) and "lab_vm" in h}


def _names_a_host(text: str, hosts: set[str]) -> bool:
    # a name or a list of names: "lab2", inv.host("lab"), doc["hosts"]["lab"], "lab,lab2", "lab2,ghost"
    parts = [p.strip() for p in text.split(",")]
    if all(NAME.fullmatch(p) for p in parts) and set(parts) & hosts:
        return True
    return any(set(m.split(",")) & hosts for m in HOSTS_ARG.findall(text))  # "inv verify -H lab"


def _called(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def literal_hosts(source: str, hosts: set[str]) -> list[str]:
    """Every place in `source` that names a lab host or the default inventory, as `line: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _names_a_host(node.value, hosts):
                found.append(f"{line}: lab host named in {node.value!r}")
            elif node.value == "hosts.yml":
                found.append(f"{line}: reads hosts.yml itself")
        elif (isinstance(node, ast.Call) and _called(node) in INVENTORY_LOADERS
              and not (_called(node) == "load_inventory" and node.args)):  # a file the test wrote: fine
            found.append(f"{line}: {_called(node)}() reads the default inventory")
        elif (isinstance(node, ast.Name) and node.id in INVENTORY_NAMES) or (
                isinstance(node, ast.Attribute) and node.attr in INVENTORY_NAMES):
            found.append(f"{line}: uses DEFAULT_INVENTORY instead of the fixtures' inventory")
    return found


@pytest.mark.parametrize("path", sorted(LAB_TESTS.glob("*.py")), ids=lambda p: p.name)
def test_lab_module_names_no_lab_host(path: Path) -> None:
    found = literal_hosts(path.read_text(), lab_host_names())
    assert not found, f"{path.relative_to(REPO)}: take the host from the fixture:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'd.inv("verify", "-H", "lab")',
    'HOST = "lab2"',
    'lab_settings("lab")',
    'inv.host("lab")',
    'doc["hosts"]["lab"]["web"] = {}',
    'run("inv sortie6 -H lab2 --dry-run")',
    'inv("sortie6", "-H", "lab2,ghost")',
    'f"inv verify --hosts=lab,{other}"',
    'NAMES = "lab,lab2"',
    "inv = load_inventory()",
    'doc = yaml.safe_load((REPO / "hosts.yml").read_text())',
    "path = os.environ.get('ROSEY_INVENTORY') or DEFAULT_INVENTORY",
])
def test_the_check_finds_a_named_host(source: str) -> None:
    assert literal_hosts(source, lab_host_names())


@pytest.mark.parametrize("source", [
    'd.inv("verify", "-H", d.host)',
    'inv("sortie6", "-H", f"{lab.name},ghost")',
    'lab_host.send_test_mail("[Rosey Bot] lab check")',
    'summary = "added by the lab test"',
    "proof_inv = load_inventory(path)",
    'to = "oncall@lab.test"',
    '"refused — check ssh.address/ssh.port in hosts.yml or that the server is up"',
    "inv = lab_inventory()",
])
def test_the_check_lets_fixture_hosts_pass(source: str) -> None:
    assert literal_hosts(source, lab_host_names()) == []
