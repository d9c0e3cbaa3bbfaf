"""Release-shaped archives built from Debian's binaries, laid out like the official GitHub releases.

`releases/<family>/v<version>/<family>-<version>.linux-amd64.tar.gz` + `sha256sums.txt`, so the deploy steps
exercise their real download + checksum (or upload) path against the lab.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fabfile.config.versions import PROMETHEUS_CONSOLES_UNTIL, at_least
from fabfile.lab import paths
from fabfile.lab.debs import FAMILIES, SUITES, Unpacked, locked, unpack

# Files of the official archives: binary name in the archive -> path inside the Debian package.
_LAYOUT: dict[str, dict[str, str]] = {
    "prometheus": {
        "prometheus": "usr/bin/prometheus",
        "promtool": "usr/bin/promtool",
        "prometheus.yml": "etc/prometheus/prometheus.yml",
        "LICENSE": "usr/share/doc/prometheus/copyright",
        "NOTICE": "usr/share/doc/prometheus/NOTICE",
        "consoles": "etc/prometheus/consoles",  # not in the official archives from 3.0 on (see _wanted)
        "console_libraries": "etc/prometheus/console_libraries",
    },
    "alertmanager": {
        "alertmanager": "usr/bin/prometheus-alertmanager",
        "amtool": "usr/bin/amtool",
        "alertmanager.yml": "etc/prometheus/alertmanager.yml",
        "LICENSE": "usr/share/doc/prometheus-alertmanager/copyright",
    },
}


@dataclass(frozen=True)
class Release:
    family: str
    version: str
    archive: Path
    sha256: str
    debian_version: str

    @property
    def directory(self) -> Path:
        return self.archive.parent


def release_dir(family: str, version: str) -> Path:
    return paths.releases_dir() / family / f"v{version}"


def archive_name(family: str, version: str) -> str:
    return f"{family}-{version}.linux-amd64.tar.gz"


def ensure_all() -> list[Release]:
    """Build (once) the archives of every family from every suite; returns what is available."""
    out = []
    for family in FAMILIES:
        for suite in SUITES:
            release = ensure(family, suite)
            if release:
                out.append(release)
    return out


def ensure(family: str, suite: str) -> Release | None:
    parts = [unpack(suite, pkg) for pkg in FAMILIES[family]]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    version = parts[0].upstream_version
    target = release_dir(family, version)
    archive = target / archive_name(family, version)
    sums = target / "sha256sums.txt"
    with locked(f"release-{family}-{version}"):
        if not (archive.exists() and sums.exists()):
            _build(family, version, parts, target)
    digest = sums.read_text().split()[0]
    return Release(family, version, archive, digest, parts[0].debian_version)


BROKEN_MARK = "broken-on-purpose.txt"  # in a release dir built to fail (fabfile/lab/broken_release.py)


def available() -> list[Release]:
    """Archives already built (no downloads); the deliberately broken test release is not one of them."""
    out = []
    for sums in sorted(paths.releases_dir().glob("*/v*/sha256sums.txt")):
        if (sums.parent / BROKEN_MARK).exists():
            continue
        family, version = sums.parent.parent.name, sums.parent.name[1:]
        archive = sums.parent / archive_name(family, version)
        meta = sums.parent / "debian-version.txt"
        if archive.exists():
            debv = meta.read_text().strip() if meta.exists() else "?"
            out.append(Release(family, version, archive, sums.read_text().split()[0], debv))
    return out


def _build(family: str, version: str, parts: list[Unpacked], target: Path) -> None:
    top = f"{family}-{version}.linux-amd64"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        staging = Path(tmp) / top
        staging.mkdir()
        for name, rel in _wanted(family, version).items():
            source = next((p.root / rel for p in parts if (p.root / rel).exists()), None)
            if source is None:
                if name in (family, "promtool", "amtool"):
                    raise RuntimeError(f"{rel} missing from the Debian packages of {family} {version}")
                continue
            if source.is_dir():
                shutil.copytree(source, staging / name, symlinks=True)
            else:
                shutil.copy2(source, staging / name)
        tmp_archive = Path(tmp) / archive_name(family, version)
        write_tar(staging, top, tmp_archive)
        digest = hashlib.sha256(tmp_archive.read_bytes()).hexdigest()
        tmp_archive.replace(target / archive_name(family, version))
    (target / "debian-version.txt").write_text(parts[0].debian_version + "\n")
    (target / "sha256sums.txt").write_text(f"{digest}  {archive_name(family, version)}\n")


def _wanted(family: str, version: str) -> dict[str, str]:
    """The official archive's files for this version: 3.x archives ship no consoles/console_libraries.

    Debian's 3.x package still carries them, but a lab archive must be as bare as the real one, so a unit that
    still pointed --web.console.* at the release dir would fail here as it would on a real server.
    """
    layout = dict(_LAYOUT[family])
    if family == "prometheus" and at_least(version, PROMETHEUS_CONSOLES_UNTIL):
        layout.pop("consoles")
        layout.pop("console_libraries")
    return layout


def write_tar(staging: Path, top: str, dest: Path) -> None:
    """Deterministic tar.gz (sorted, fixed owner and mtime), so a rebuild gives the same checksum."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 1001
        info.uname = info.gname = "prometheus"
        info.mtime = 1_700_000_000
        return info

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted([staging, *staging.rglob("*")]):
            arcname = top if path == staging else f"{top}/{path.relative_to(staging)}"
            tar.add(path, arcname=arcname, recursive=False, filter=clean)
    with open(dest, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
