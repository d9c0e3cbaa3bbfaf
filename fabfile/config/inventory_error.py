"""The inventory's one error type, shared by the loader, the cluster joiner and every later check."""

from __future__ import annotations

import typing

from fabfile.errors import UserError


class InventoryError(UserError):
    """A problem with hosts.yml (or settings its releases cannot run); one line that says what to do."""


def fail(where: str, path: str, msg: str) -> typing.NoReturn:
    """Raise the one line: `hosts.yml: hosts.prod.ssh.port: expected ...`."""
    raise InventoryError(f"{where}: {path}: {msg}")
