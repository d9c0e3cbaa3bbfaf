"""The inventory's one error type, shared by the loader, the cluster joiner and every later check."""

from __future__ import annotations

import typing

from fabfile.errors import UserError


class InventoryError(UserError):
    """A problem with hosts.yml (or settings its releases cannot run); one line that says what to do.

    The one place every such line is built: one longer than any written here quotes too much of the
    user's input, so its middle is cut (the start names the field, the end says what to do)."""

    def __init__(self, line: str) -> None:
        if len(line) > _MAX_LINE:
            line = f"{line[:300]} ...({len(line) - 420} characters cut)... {line[-120:]}"
        super().__init__(line)


_MAX_LINE = 480


def shown(value: object, limit: int = 200) -> str:
    """`repr(value)` cut to `limit` characters: an error line quotes the user's input, never megabytes of it
    (a small YAML alias bomb expands to a 5.8 MB list)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def fail(where: str, path: str, msg: str) -> typing.NoReturn:
    """Raise the one line: `hosts.yml: hosts.prod.ssh.port: expected ...`."""
    raise InventoryError(f"{where}: {path}: {msg}")
