"""A deliberately broken Prometheus release for the rollback test: checksum valid, binary exits at start.

Built from the lab's 2.42.0 archive into the same served layout under the version BROKEN_VERSION, which
hosts.yml accepts (a release number with a pre-release tag) and no real release uses. Everything the deploy
steps check passes: the archive matches its sha256sums.txt, `prometheus --version` and `promtool --version`
report BROKEN_VERSION, and promtool validates configs (it hands everything but --version to the real 2.42.0
promtool shipped next to it), so configs render exactly as for 2.42.0. Only starting the server fails.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from pathlib import Path

from fabfile.lab import releases
from fabfile.lab.debs import locked

BASE_VERSION = "2.42.0"
BROKEN_VERSION = "2.42.0-broken"
FAMILY = "prometheus"

_PROMETHEUS = f"""#!/bin/sh
# Lab-only: a Prometheus that reports a version and exits at start (rollback test).
case "${{1:-}}" in
  --version|-v) echo "prometheus, version {BROKEN_VERSION} (branch: rosey-lab, revision: broken-on-purpose)"
                exit 0 ;;
esac
echo "prometheus {BROKEN_VERSION}: this lab release exits at start on purpose (rollback test)" >&2
exit 3
"""

_PROMTOOL = f"""#!/bin/sh
# Lab-only: reports the broken release's version; everything else is the real {BASE_VERSION} promtool.
case "${{1:-}}" in
  --version) echo "promtool, version {BROKEN_VERSION} (branch: rosey-lab, revision: broken-on-purpose)"
             exit 0 ;;
esac
exec "$(dirname "$(readlink -f "$0")")/promtool.real" "$@"
"""


def ensure() -> releases.Release:
    """Build (once) prometheus-BROKEN_VERSION next to the real archives; the base archive must exist."""
    base_dir = releases.release_dir(FAMILY, BASE_VERSION)
    base = base_dir / releases.archive_name(FAMILY, BASE_VERSION)
    if not base.is_file():
        raise FileNotFoundError(f"{base} missing: run `inv lab.build` (or lab.up) first")
    target = releases.release_dir(FAMILY, BROKEN_VERSION)
    archive = target / releases.archive_name(FAMILY, BROKEN_VERSION)
    sums = target / "sha256sums.txt"
    with locked(f"release-{FAMILY}-{BROKEN_VERSION}"):
        if not (archive.is_file() and sums.is_file() and (target / releases.BROKEN_MARK).is_file()):
            _build(base, target)
    return releases.Release(FAMILY, BROKEN_VERSION, archive, sums.read_text().split()[0],
                            f"broken on purpose, from {BASE_VERSION}")


def _build(base: Path, target: Path) -> None:
    top = f"{FAMILY}-{BROKEN_VERSION}.linux-amd64"
    old_top = f"{FAMILY}-{BASE_VERSION}.linux-amd64"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        with tarfile.open(base) as tar:
            tar.extractall(tmp, filter="data")
        staging = Path(tmp) / top
        (Path(tmp) / old_top).rename(staging)
        (staging / "promtool").rename(staging / "promtool.real")
        for name, text in (("prometheus", _PROMETHEUS), ("promtool", _PROMTOOL)):
            (staging / name).write_text(text)
            (staging / name).chmod(0o755)
        tmp_archive = Path(tmp) / releases.archive_name(FAMILY, BROKEN_VERSION)
        releases.write_tar(staging, top, tmp_archive)
        digest = hashlib.sha256(tmp_archive.read_bytes()).hexdigest()
        shutil.move(tmp_archive, target / tmp_archive.name)
    (target / releases.BROKEN_MARK).write_text(f"from {BASE_VERSION}: its prometheus exits at start\n")
    (target / "sha256sums.txt").write_text(f"{digest}  {releases.archive_name(FAMILY, BROKEN_VERSION)}\n")
