"""A lab host with the whole stack deployed once per test module (`deployed_lab`), and CLI helpers.

Import the fixture into a test module (`from tests.lab.deployed import deployed_lab_fixture  # noqa: F401`).
One deploy per module, not per test: a fresh sortie6 costs 1-2 minutes under emulation.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
import requests

from fabfile.config.secrets import load_secrets
from tests import helpers
from tests.lab_fixtures import lab_inventory


@dataclass
class Deployed:
    lab: object  # LabHost
    secrets: dict[str, str]

    @property
    def auth(self) -> tuple[str, str]:
        return (self.lab.settings.web.username, self.secrets["web_password"])

    @property
    def host(self) -> str:
        """The lab host's inventory name (`-H` for the CLI): never spell it out in a test."""
        return self.lab.name

    def inv(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """Run `inv <args>` like a user would; stdout+stderr together in .stdout."""
        return helpers.inv(*args, env=env, timeout=timeout)

    def get(self, guest_port: int, path: str, timeout: float = 10) -> requests.Response:
        """HTTP from this machine through the forwarded port (so the guest's firewall applies)."""
        return requests.get(self.lab.url(guest_port, path), auth=self.auth, timeout=timeout)

    def main_pids(self) -> dict[str, str]:
        return helpers.main_pids(self.lab)

    def assert_no_secret(self, text: str) -> None:
        for name, value in self.secrets.items():
            assert value not in text, f"secret {name} leaked into output"


@pytest.fixture(scope="module", name="deployed_lab")
def deployed_lab_fixture(lab_host) -> Deployed:
    inv = lab_inventory()
    d = Deployed(lab_host, load_secrets(inv, inv.host(lab_host.name)))
    p = d.inv("sortie6", "-H", lab_host.name)
    assert p.returncode == 0, "sortie6 on a fresh lab host failed"
    d.assert_no_secret(p.stdout)
    return d
