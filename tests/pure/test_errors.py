"""One base exception for bad user input: every kind is a UserError, the CLI turns it into one line and
exit 2, the runner reports it before connecting; a bad rules file is its own error, not the inventory's.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from fabfile.alerting.silences import SilenceError, parse_duration
from fabfile.cli import user_errors
from fabfile.config.inventory import load_inventory
from fabfile.config.inventory_error import InventoryError
from fabfile.config.rules_file import RULES_ENV, RulesFileError, read_rules
from fabfile.config.secrets import SecretsError, load_secrets
from fabfile.deploy import runner
from fabfile.errors import UserError

HOSTS = """\
defaults:
  receivers:
    email: {to: [a@b.test], from: c@b.test, smarthost: "localhost:25"}
hosts:
  h: {address: h.invalid, secrets_file: none.yml}
"""


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROSEY_WEB_PASSWORD", "pw-12345")
    (tmp_path / "hosts.yml").write_text(HOSTS)
    return load_inventory(tmp_path / "hosts.yml")


@pytest.mark.parametrize("kind", [InventoryError, SecretsError, SilenceError, RulesFileError])
def test_every_bad_input_error_is_a_user_error(kind: type) -> None:
    assert issubclass(kind, UserError)


def test_rules_file_error_is_not_an_inventory_error() -> None:
    assert not issubclass(RulesFileError, InventoryError)


def test_missing_rules_file_names_the_file_and_the_fix(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RULES_ENV, raising=False)
    with pytest.raises(RulesFileError) as e:
        read_rules(tmp_path / "gone.yml")
    fix = "restore monitoring/alert_rules.yml"
    assert str(e.value) == f"{tmp_path / 'gone.yml'}: alert rules not found; {fix}"
    monkeypatch.setenv(RULES_ENV, str(tmp_path / "gone.yml"))
    with pytest.raises(RulesFileError, match=f"not found; fix {RULES_ENV} or unset it"):
        read_rules()


def test_unreadable_rules_file_is_a_rules_file_error(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match=r"alert rules cannot be read \(Is a directory\)"):
        read_rules(tmp_path)


@pytest.mark.parametrize("make", [
    lambda inv: inv.host("nope"),
    lambda inv: parse_duration("soon"),
    lambda inv: read_rules(Path("/nonexistent/rules.yml")),
])
def test_user_errors_turns_any_user_error_into_one_line_and_exit_2(inventory, make) -> None:
    @user_errors
    def task() -> None:
        make(inventory)

    with pytest.raises(Exit) as e:
        task()
    assert e.value.code == 2
    assert str(e.value.message).startswith("error: ") and "\n" not in e.value.message


def test_user_errors_lets_programming_errors_through() -> None:
    @user_errors
    def task() -> None:
        raise ValueError("a bug, not the user's input")

    with pytest.raises(ValueError, match="a bug"):
        task()


def test_missing_secret_is_reported_as_such(inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSEY_WEB_PASSWORD")
    with pytest.raises(SecretsError, match="missing secret 'web_password' for host h"):
        load_secrets(inventory, inventory.host("h"))


def test_runner_reports_a_missing_rules_file_before_connecting(inventory, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RULES_ENV, str(tmp_path / "gone.yml"))
    out = io.StringIO()

    def connector(host):
        raise AssertionError("must not connect")

    code = runner.run(inventory, inventory.select("h"), [], stream=out, connector=connector)
    assert code == 2
    assert out.getvalue().splitlines() == [
        f"error: {tmp_path / 'gone.yml'}: alert rules not found; fix {RULES_ENV} or unset it",
        "nothing was changed: fix the above first"]
