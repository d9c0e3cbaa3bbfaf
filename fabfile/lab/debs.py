"""Debian packages fetched with `apt-get download` and unpacked with `dpkg -x` (never installed here)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fabfile.lab import paths
from fabfile.lab.aptsrc import PrivateApt

# Which Debian suites feed the lab. bookworm matches the guest; trixie and forky carry newer upstream releases
# of the same binaries (checked to run on bookworm's glibc: they need glibc >= 2.34 only), which gives the
# deploy tests real upgrades: 2.42.0/0.25.0 (bookworm), 2.53.3/0.28.1 (trixie), 3.5.3 LTS/0.33.1 (forky).
SUITES: dict[str, list[str]] = {
    "bookworm": ["bookworm", "bookworm-updates", "bookworm-security"],
    "trixie": ["trixie"],
    "forky": ["forky"],
}
# Packages per family: the binary package, then the tools package where the suite has one (promtool is its own
# package from trixie on; bookworm's `prometheus` carries it).
FAMILIES: dict[str, list[str]] = {
    "prometheus": ["prometheus", "promtool"],
    "alertmanager": ["prometheus-alertmanager"],
}


@dataclass(frozen=True)
class Unpacked:
    suite: str
    package: str
    debian_version: str
    root: Path  # dpkg -x tree

    @property
    def upstream_version(self) -> str:
        """`2.42.0+ds-5+deb12u1` -> `2.42.0`: the real upstream release the binary was built from."""
        version = self.debian_version.split(":", 1)[-1]
        return version.split("+", 1)[0].split("-", 1)[0].split("~", 1)[0]


@contextmanager
def locked(name: str):
    """A cross-process lock in the cache dir, so two `lab.up` runs don't build the same thing at once."""
    lock_path = paths.cache_dir() / f".{name}.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpack(suite: str, package: str) -> Unpacked | None:
    """The suite's candidate of `package`, downloaded and unpacked once; None if the suite lacks it."""
    base = paths.debs_dir() / suite
    apt = PrivateApt(base / "apt", SUITES[suite])
    with locked(f"debs-{suite}"):
        if not any((base / "apt" / "lists").glob("*Packages*")):
            apt.update()
        try:
            version = apt.candidate(package)
        except RuntimeError:
            return None
        root = base / "x" / f"{package}_{version}"
        if not (root / ".done").exists():
            try:
                deb = apt.download(package, version, base / "debs")
            except subprocess.CalledProcessError:
                apt.update()  # an old index can name a .deb the mirror no longer has: re-read and retry once
                version = apt.candidate(package)
                root = base / "x" / f"{package}_{version}"
                deb = apt.download(package, version, base / "debs")
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            (root / ".done").write_text(version + "\n")
    return Unpacked(suite, package, version, root)


def refresh_indexes() -> None:
    """Re-read the suites' indexes (e.g. after a Debian point release)."""
    for suite, suites in SUITES.items():
        with locked(f"debs-{suite}"):
            PrivateApt(paths.debs_dir() / suite / "apt", suites).update()
