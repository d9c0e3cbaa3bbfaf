"""The one base exception for bad input from the user (inventory, secrets, rules file, silence matchers).

Anything raising a `UserError` means "the user can fix this": the CLI prints its one-line message and exits 2,
the runner reports it before touching a server. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message is one line that names the file/field/host and what to do."""


def quoted(text: object, limit: int = 40) -> str:
    """A user's value as an error line quotes it: repr, cut after `limit` characters (a 5000-digit number or
    a 5 MB argument is never repeated in full)."""
    t = str(text)
    return repr(t) if len(t) <= limit else f"{t[:limit]!r}... ({len(t)} characters)"
