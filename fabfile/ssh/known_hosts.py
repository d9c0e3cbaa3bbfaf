"""Read known_hosts files line by line, as bytes, the way OpenSSH does: one bad line is skipped (and named),
never the whole file.

Paramiko's `HostKeys.load` decodes the whole file as UTF-8 (one Latin-1 comment hides every key in it, so a
changed key looked merely unknown and `--accept` trusted it) and lets a corrupt key escape as a ValueError
(one bad line for an unrelated host failed every deploy). Here each line stands alone.
"""

from __future__ import annotations

import binascii
import hmac
import re
from base64 import b64decode
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path

import paramiko

_FIELDS = re.compile(rb"[ \t]+")


@dataclass(frozen=True)
class Skipped:
    """A line that could not be read: where it is and why (never its text: it may be anything)."""

    path: Path
    lineno: int
    why: str
    names: tuple[str, ...] | None  # the host names it is for, None when even they are unreadable

    def __str__(self) -> str:
        return f"{self.path} line {self.lineno} ({self.why})"


@dataclass
class KnownHosts:
    """What the files hold for one host name: its keys, and every line that could not be read."""

    keys: list[paramiko.PKey] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    revoked: list[paramiko.PKey] = field(default_factory=list)

    def unreadable_for(self, name: str) -> list[Skipped]:
        """Skipped lines that are, or may be, about `name` (their names could not be read, or match)."""
        return [s for s in self.skipped if s.names is None or matches(s.names, name)]


def matches(names: tuple[str, ...], name: str) -> bool:
    """Whether a line's host field names `name`: plain (exact) or hashed (`|1|salt|hash`, HashKnownHosts)."""
    for entry in names:
        if entry == name:
            return True
        if entry.startswith("|1|"):
            try:
                _, _, salt, digest = entry.split("|")
                mac = hmac.new(b64decode(salt, validate=True), name.encode(), sha1).digest()
                if hmac.compare_digest(mac, b64decode(digest, validate=True)):
                    return True
            except (ValueError, binascii.Error):
                continue
    return False


def _parse(line: bytes) -> tuple[tuple[str, ...] | None, str | None, paramiko.PKey | None, str | None]:
    """(names, marker, key, why-unreadable) of one non-comment line; the comment after the key may be any
    bytes (it is never read)."""
    fields = _FIELDS.split(line)
    marker = None
    if fields[0].startswith(b"@"):
        marker, fields = fields[0].decode("ascii", "replace"), fields[1:]
    try:
        names = tuple(fields[0].decode("utf-8").split(",")) if fields else None
    except UnicodeDecodeError:
        return None, marker, None, "the host names are not UTF-8"
    if len(fields) < 3:
        return names, marker, None, "fewer than 3 fields"
    try:
        kind = fields[1].decode("ascii")
        blob = b64decode(fields[2], validate=True)
    except (UnicodeDecodeError, binascii.Error):
        return names, marker, None, "the key is not valid base64"
    try:
        return names, marker, paramiko.PKey.from_type_string(kind, blob), None
    except paramiko.UnknownKeyType:
        return names, marker, None, f"key type {kind!r} is not supported here"
    except Exception as e:  # noqa: BLE001 - any key library error: a corrupt key is one bad line, not a crash
        return names, marker, None, f"corrupt {kind} key: {e}" if str(e) else f"corrupt {kind} key"


def read(files: list[Path], name: str) -> KnownHosts:
    """Every key the files hold for `name` (as known_hosts spells it), and the lines that could not be read.

    A file that does not exist is no problem (OpenSSH skips it too); one that exists and cannot be opened
    is reported as a skipped line 0. `@cert-authority` lines are ignored (certificates are not used here);
    `@revoked` keys are collected so that a revoked key is refused even when another line lists it.
    """
    found = KnownHosts()
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as e:
            found.skipped.append(Skipped(path, 0, f"cannot read the file: {e.strerror or e}", None))
            continue
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            line = raw.strip(b" \t\r")
            if not line or line.startswith(b"#"):
                continue
            names, marker, key, why = _parse(line)
            if marker == "@cert-authority":
                continue
            if marker not in (None, "@revoked"):
                why = why or f"unknown marker {marker}"
            if why:
                if why.startswith("key type") and names is not None and not matches(names, name):
                    continue  # a key type we cannot load, for another host: readable, just not ours
                found.skipped.append(Skipped(path, lineno, why, names))
            elif marker == "@revoked":
                found.revoked.append(key)
            elif names is not None and matches(names, name):
                found.keys.append(key)
    return found
