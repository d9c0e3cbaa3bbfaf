"""What the server says about files: checksums (`sha256sum`), owner/group/mode (`stat`), and the release's
published checksum list, parsed the same way wherever they are read.

Pure: the snippets are text for fabfile/ssh/probe.py to run; the parsers take the answers.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from fabfile.config.validators import ascii_digits


def sha256_snippet(paths: Iterable[str]) -> str:
    """Snippet for `probe`: sha256 of each path; missing files are simply absent from the answer."""
    return "sha256sum -- " + " ".join(shlex.quote(p) for p in paths) + " 2>/dev/null; true"


def parse_sha256(out: str) -> dict[str, str]:
    """`sha256sum` output -> {path: hex}."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^\\?([0-9a-f]{64}) [ *](.+)$", line)
        if m:
            res[m.group(2)] = m.group(1)
    return res


def parse_stat(text: str) -> dict[str, tuple[str, str, int]]:
    """`stat -c '%U %G %a %n'` lines -> {path: (owner, group, mode)}."""
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and ascii_digits(parts[2]):
            out[parts[3]] = (parts[0], parts[1], int(parts[2], 8))
    return out


def parse_sums(text: str, archive: str) -> str | None:
    """A release's sha256sums.txt -> the checksum of `archive` (None: not listed)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == archive and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            return parts[0]
    return None
