"""The one base exception for bad input from the user (inventory, secrets, rules file, silence matchers).

Anything raising a `UserError` means "the user can fix this": the CLI prints its one-line message and exits 2,
the runner reports it before touching a server. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message is one line that names the file/field/host and what to do."""
