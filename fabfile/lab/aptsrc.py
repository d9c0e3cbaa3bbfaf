"""Debian package sources derived from this machine's own apt configuration (never a hard-coded mirror)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOURCES_DIR = Path("/etc/apt/sources.list.d")
SOURCES_LIST = Path("/etc/apt/sources.list")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class DebianSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str


def host_debian_sources() -> list[DebianSource]:
    """The enabled `deb` entries of this machine that are signed by Debian's archive key."""
    found: list[DebianSource] = []
    for path in sorted(SOURCES_DIR.glob("*.sources")):
        found.extend(_parse_deb822(path.read_text()))
    lists = [SOURCES_LIST, *sorted(SOURCES_DIR.glob("*.list"))]
    for path in lists:
        if path.exists():
            found.extend(_parse_one_line(path.read_text()))
    return [s for s in found if s.signed_by == DEBIAN_KEYRING or "debian" in s.uri]


def main_archive_uri() -> str:
    """The mirror URI that serves the main archive (the one carrying the `bookworm` suite)."""
    for source in host_debian_sources():
        if "bookworm" in source.suites:
            return source.uri
    raise RuntimeError(
        "no Debian 'bookworm' entry in /etc/apt/sources.list{,.d}: add the machine's Debian mirror there"
    )


def sources_lines(suites: list[str]) -> str:
    """One-line apt sources for `suites` on the host's main Debian mirror (security suites keep theirs)."""
    lines = []
    security = [s for s in host_debian_sources() if any(x.endswith("-security") for x in s.suites)]
    for suite in suites:
        uri = security[0].uri if suite.endswith("-security") and security else main_archive_uri()
        lines.append(f"deb [signed-by={DEBIAN_KEYRING}] {uri} {suite} main")
    return "\n".join(lines) + "\n"


def _parse_deb822(text: str) -> list[DebianSource]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            out.append(
                DebianSource(
                    uri=uri,
                    suites=tuple(fields.get("suites", "").split()),
                    components=tuple(fields.get("components", "").split()),
                    signed_by=fields.get("signed-by", ""),
                )
            )
    return out


def _parse_one_line(text: str) -> list[DebianSource]:
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        options = ""
        match = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
        rest = line[4:].strip()
        if match:
            options, rest = match.group(1), match.group(2)
        parts = rest.split()
        if len(parts) < 3:
            continue
        signed = re.search(r"signed-by=(\S+)", options)
        out.append(DebianSource(parts[0], (parts[1],), tuple(parts[2:]), signed.group(1) if signed else ""))
    return out


class PrivateApt:
    """An apt state dir of our own, so we can read another suite's index without touching the host's."""

    def __init__(self, root: Path, suites: list[str]) -> None:
        self.root = root
        self.suites = suites
        for sub in ("lists/partial", "cache/archives/partial", "etc"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "sources.list").write_text(sources_lines(suites))

    @property
    def options(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::SourceList={self.root}/etc/sources.list",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={self.root}/lists",
            "-o", f"Dir::Cache={self.root}/cache",
            "-o", "Dir::State::status=/dev/null",
            "-o", "APT::Sandbox::User=root",
        ]  # fmt: skip

    def update(self) -> None:
        subprocess.run(["apt-get", *self.options, "-q", "update"], check=True, stdout=subprocess.DEVNULL)

    def candidate(self, package: str) -> str:
        out = subprocess.run(
            ["apt-cache", *self.options, "policy", package], check=True, capture_output=True, text=True
        ).stdout
        match = re.search(r"Candidate:\s*(\S+)", out)
        if not match or match.group(1) == "(none)":
            raise RuntimeError(f"{package} not found in {', '.join(self.suites)}")
        return match.group(1)

    def download(self, package: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["apt-get", *self.options, "-q", "download", f"{package}={version}"],
            check=True, cwd=dest, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        matches = sorted(dest.glob(f"{package}_*.deb"))
        wanted = [m for m in matches if _deb_version(m) == version]
        if not wanted:
            raise RuntimeError(f"apt-get download {package}={version} left no .deb in {dest}")
        return wanted[0]


def _deb_version(path: Path) -> str:
    from urllib.parse import unquote

    return unquote(path.name.split("_")[1])
