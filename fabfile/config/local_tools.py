"""Which promtool/amtool checks a host's files on this machine, and where a release's own tools come from.

This machine's promtool/amtool (Debian 12: 2.42.0 / 0.25.0) may be older than the release a host will run;
an old tool rejects options its release lacks (amtool 0.25 and webhook `url_file`) and cannot speak for a
newer one. When the local tool is older than the host's version, the tool of exactly that release is taken
from a release archive already on this machine — the host's `archive_dir`, the `source: upload` cache, or
the lab's release archives — checksum-verified and unpacked once. Without one, the local tool is used and
the choice is said in one line. Nothing is downloaded here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fabfile.config.settings import HostSettings
from fabfile.config.versions import at_least, reported_version

UPLOAD_CACHE = Path("~/.cache/rosey-monitoring").expanduser()  # where `source: upload` keeps archives
TOOLS_CACHE = UPLOAD_CACHE / "tools"  # unpacked tools: <service>-<version>/<tool>
SUMS = "sha256sums.txt"
TOOL_OF = {"prometheus": "promtool", "alertmanager": "amtool"}


@dataclass(frozen=True)
class ToolChoice:
    service: str
    path: str  # argv[0]
    version: str  # "" when unknown (tool missing)
    note: str = ""  # one line when the tool is not simply the local one of a new enough release


def lab_releases_dir() -> Path:
    """The lab's release archives (fabfile/lab builds them there; read here by path, never imported)."""
    base = os.environ.get("ROSEY_LAB_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "rosey-lab") / "releases"


@cache
def tool_version(path: str) -> str:
    """`promtool --version` -> '2.42.0' (Debian suffixes dropped); '' if it does not run."""
    exe = shutil.which(path)
    if exe is None:
        return ""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return reported_version(out.stdout + out.stderr) or ""


def archive_dirs(host: HostSettings, service: str) -> list[Path]:
    comp = getattr(host, service)
    dirs = [Path(comp.archive_dir).expanduser()] if comp.archive_dir else []
    return [*dirs, UPLOAD_CACHE / service / f"v{comp.version}",
            lab_releases_dir() / service / f"v{comp.version}"]


def release_tool(host: HostSettings, service: str) -> Path | None:
    """The host's release's own promtool/amtool, unpacked from an archive on this machine; None if none."""
    comp = getattr(host, service)
    name = comp.archive_name(service) + ".tar.gz"
    for folder in archive_dirs(host, service):
        archive, sums = folder / name, folder / SUMS
        if archive.is_file() and sums.is_file() and _sum_ok(archive, sums):
            return _unpack_tool(archive, service, comp.version, comp.arch)
    return None


def choose(host: HostSettings, service: str, local: str | None = None) -> ToolChoice:
    """The tool that checks `host`'s files for `service` (see the module docstring)."""
    tool = local or TOOL_OF[service]
    target = getattr(host, service).version
    have = tool_version(tool)
    if have and at_least(have, target):
        return ToolChoice(service, tool, have)
    own = release_tool(host, service)
    found = f"{tool} {have}" if have else f"no {tool}"
    if own is not None:
        return ToolChoice(service, str(own), target,
                          f"{host.name}: {found} here, {service} {target} targeted: checking with {target}'s "
                          f"own {TOOL_OF[service]} from its release archive")
    if not have:
        return ToolChoice(service, tool, "")
    return ToolChoice(service, tool, have,
                      f"{host.name}: {tool} {have} here is older than {service} {target} and no {target} "
                      f"archive is on this machine: checked with {have} (set {service}.source: upload and "
                      f"run a deploy once, or put the archive in {service}.archive_dir, "
                      f"to check with {target})")


def fallback(host: HostSettings, service: str, used: ToolChoice) -> ToolChoice | None:
    """After `used` rejected the files: the release's own tool, when that is another one (else None)."""
    own = release_tool(host, service)
    if own is None or str(own) == used.path:
        return None
    target = getattr(host, service).version
    return ToolChoice(service, str(own), target,
                      f"{host.name}: {TOOL_OF[service]} {used.version or '?'} rejected the files; checking "
                      f"again with {service} {target}'s own {TOOL_OF[service]} from its release archive")


def _sum_ok(archive: Path, sums: Path) -> bool:
    want = {n.lstrip("*"): h for h, n in (line.split(None, 1) for line in sums.read_text().splitlines()
                                          if len(line.split(None, 1)) == 2)}
    expected = want.get(archive.name)
    return expected is not None and _sha256(archive) == expected


@cache
def _sha256(archive: Path) -> str:
    digest = hashlib.sha256()
    with archive.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack_tool(archive: Path, service: str, version: str, arch: str) -> Path:
    tool = TOOL_OF[service]
    dest_dir = TOOLS_CACHE / f"{service}-{version}.linux-{arch}-{_sha256(archive)[:12]}"
    dest = dest_dir / tool
    if dest.is_file():
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        member = next((m for m in tar.getmembers() if m.isfile() and m.name.split("/")[-1] == tool), None)
        if member is None:
            raise FileNotFoundError(f"{archive}: no {tool} inside")
        member.name = tool
        tar.extract(member, tmp, filter="data")
        os.chmod(Path(tmp) / tool, 0o755)
        (Path(tmp) / tool).replace(dest)
    return dest
