"""What the server says about the installed releases: which release a running binary came from, and the
version a release directory names. Pure; install-services' rollback decides from these.
"""

from __future__ import annotations

import posixpath
import re

from fabfile.config import layout


def previous_release(service: str, exe: str, binary: str) -> str | None:
    """The release dir the running process's binary lives in, when a restart switches away from it.

    `exe`: readlink /proc/<MainPID>/exe; `binary`: readlink -f /usr/local/bin/<service>. None when there
    is nothing to go back to: not running, same release, a deleted file, or not one of our release dirs.
    """
    if not exe or not binary or exe.endswith(" (deleted)"):
        return None
    prev = posixpath.dirname(exe)
    if (posixpath.basename(exe) != service or prev == posixpath.dirname(binary)
            or posixpath.dirname(prev) != layout.RELEASES_DIR):
        return None
    return prev


def release_version(service: str, release_dir: str) -> str:
    """/usr/local/lib/rosey-monitoring/prometheus-2.42.0.linux-amd64 -> '2.42.0' (else the dir's name)."""
    name = posixpath.basename(release_dir)
    m = re.fullmatch(rf"{re.escape(service)}-(.+)\.linux-[^.]+", name)
    return m.group(1) if m else name
