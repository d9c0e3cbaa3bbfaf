"""`inv render`: render hosts into a directory and check the files with the local promtool/amtool."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fabfile.config.checks import CheckFailed, validate_rendered
from fabfile.config.inventory import Inventory
from fabfile.config.render import current_web_hash, render_host
from fabfile.config.secrets import load_secrets
from fabfile.config.settings import HostSettings
from fabfile.errors import UserError
from fabfile.masking import BCRYPT_HASH, Masker
from fabfile.output import Output


class OutDirError(UserError):
    """`--out` names something that cannot be the output directory."""


def out_dir(text: str) -> Path:
    """`--out` as given: an empty one would be Path('.'), the files landing wherever inv was started."""
    if not text.strip():
        raise OutDirError("--out '': give the directory to write the files into, e.g. --out rendered")
    return Path(text)


def _check_out(out: Path) -> None:
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise OutDirError(f"--out {out}: {p} is an existing file, not a directory; "
                              "pick another with --out")


def _hash_in(dest: Path, username: str) -> str | None:
    """The hash of an earlier render into `dest`: kept while the password matches, so re-rendering into the
    same folder changes nothing (a new folder gets a new random salt, as a new server does)."""
    try:
        return current_web_hash((dest / "web.yml").read_text(), username)
    except (OSError, UnicodeDecodeError):
        return None


def _secret_bearing(name: str, text: str, secrets: dict[str, str]) -> bool:
    """web.yml (the bcrypt hash: a copy of the password to guess offline) and any file holding a secret."""
    return name == "web.yml" or BCRYPT_HASH.search(text) is not None or any(
        v and v in text for v in secrets.values())


def _write(path: Path, text: str, private: bool) -> None:
    """Write the file; a secret-bearing one is 0600 from its creation on (and made so if it was there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "wb") as f:
        if private:
            os.fchmod(f.fileno(), 0o600)
        f.write(text.encode())


def render_to_dir(inventory: Inventory, hosts: Sequence[HostSettings], out: Path,
                  output: Output | None = None) -> list[str]:
    """Write each host's files (one sub-directory per host when several) and check them.

    Every host is rendered before anything is written, so bad input or a missing secret stops the run
    with nothing on disk. Returns the first line of each failed check (already masked).
    """
    _check_out(out)
    jobs = []
    for host in hosts:
        secrets = load_secrets(inventory, host)
        dest = out / host.name if len(hosts) > 1 else out
        jobs.append((host, secrets, dest,
                     render_host(inventory, host, secrets, web_hash=_hash_in(dest, host.web.username))))
    output = output or Output()
    failures = []
    for host, secrets, dest, rendered in jobs:
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutDirError(f"--out {dest}: cannot create the directory ({e.strerror}); "
                              "pick another with --out") from None
        for name, text in rendered.files.items():
            try:
                _write(dest / name, text, private=_secret_bearing(name, text, secrets))
            except OSError as e:  # a directory, a read-only file system, a full disk: where and why
                raise OutDirError(f"--out {dest}: cannot write {name} ({e.strerror or type(e).__name__}); "
                                  "remove what is in the way or pick another with --out") from None
        names = ", ".join(rendered.files)
        output.line(f"{host.name}: wrote {len(rendered.files)} files to {dest}/ ({names})")
        try:
            validate_rendered(rendered, host, Masker(secrets.values()), shown_dir=dest)
        except CheckFailed as e:
            failures.append(str(e).splitlines()[0])
    return failures
