"""Reading hosts.yml and secrets.yml the same strict way: UTF-8 text, a file (not a directory), no key twice.

PyYAML lets the last of two equal keys win silently; for an inventory that hides a typo (two `prod:` entries,
the first one ignored), so a repeated key is an error naming its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, mark: yaml.Mark) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.problem = f"key {key!r} appears twice (the first would be ignored); keep one"
        self.problem_mark = mark


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                break
            if dup:
                raise DuplicateKey(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path) -> str:
    """The file as text; OSError (missing, a directory) and UnicodeDecodeError are for the caller."""
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    return path.read_bytes().decode("utf-8")


def parse(text: str) -> Any:
    """YAML -> Python, refusing a repeated key (yaml.YAMLError with a mark, like any syntax error)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def where(e: yaml.YAMLError) -> str:
    """' at line L, column C' of a YAML error, or ''."""
    mark = getattr(e, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def unreadable(path: Path, e: Exception) -> str:
    """One line for why `path` could not be read as text (the file's content is never shown)."""
    if isinstance(e, UnicodeDecodeError):
        line = e.object[:e.start].count(b"\n") + 1
        return f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {line}); save it as UTF-8"
    if isinstance(e, IsADirectoryError):
        return f"{path}: is a directory, expected a YAML file"
    if isinstance(e, PermissionError):
        return f"{path}: permission denied; make it readable for this user"
    return f"{path}: cannot read it ({getattr(e, 'strerror', None) or type(e).__name__})"
