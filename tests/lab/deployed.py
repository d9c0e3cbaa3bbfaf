"""A lab host with the whole stack deployed (`deployed_lab`), shared by the modules that use it, and CLI
helpers.

Import the fixture into a test module (`from tests.lab.deployed import deployed_lab_fixture # noqa: F401`).
The first such module restores a clean guest and deploys with sortie6 (1-2 minutes under emulation); each
later one takes the same host back to the deployed state first: the bot and the mail catcher running with
the bot's default state, and sortie6 again, which converges whatever the previous module changed (an edited
unit, a narrowed firewall, a test rule) and is a quick no-op when it changed nothing. A module that needs a
clean guest uses `lab_host` instead (that restores the golden snapshot, and the next shared module deploys
afresh).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
import requests

from fabfile.config.secrets import load_secrets
from tests import helpers
from tests.lab_fixtures import lab_inventory, lane_host, shared_lab_host


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
def deployed_lab_fixture(request: pytest.FixtureRequest) -> Deployed:
    inv = lab_inventory()
    lab, fresh = shared_lab_host(lane_host(request.node.path.name))
    d = Deployed(lab, load_secrets(inv, inv.host(lab.name)))
    if not fresh:
        lab.run("sudo systemctl start rosey-bot smtp-catcher", check=True)
        lab.reset_bot_state()
    p = d.inv("sortie6", "-H", lab.name)
    assert p.returncode == 0, f"sortie6 on the {'fresh' if fresh else 'shared'} lab host failed:\n{p.stdout}"
    d.assert_no_secret(p.stdout)
    return d
