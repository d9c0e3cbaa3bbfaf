"""Where the lab keeps its state: one cache dir outside the repo, so clones share the image."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GUEST_DIR = PACKAGE_DIR / "guest"


def cache_dir() -> Path:
    """`~/.cache/rosey-lab` (the inventory's lab key path assumes this default)."""
    base = os.environ.get("ROSEY_LAB_CACHE")
    path = Path(base) if base else Path.home() / ".cache" / "rosey-lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_dir() -> Path:
    return _sub("image")


def golden_dir() -> Path:
    return _sub("golden")


def run_dir(name: str) -> Path:
    return _sub("run", name)


def releases_dir() -> Path:
    return _sub("releases")


def debs_dir() -> Path:
    return _sub("debs")


def _sub(*parts: str) -> Path:
    path = cache_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
