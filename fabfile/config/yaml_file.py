"""Reading hosts.yml and secrets.yml the same strict way: UTF-8 text, a file (not a directory), no key twice.

PyYAML lets the last of two equal keys win silently; for an inventory that hides a typo (two `prod:` entries,
the first one ignored), so a repeated key is an error naming its line. Merge keys (`<<: *common`) work as
YAML defines them: the mapping's own keys override the merged ones.

YAML 1.1 also reads `010` as 8, `0x1F` as 31 and `1:22` as 82: such integers (anything but plain decimal
digits) come back as `SpelledInt`, which remembers how it was written, so the inventory can refuse them
where a number is wanted and show the text to quote where text is wanted. An integer longer than any
setting takes (Python's int() even refuses one over 4300 digits) comes back as `LongNumber`, never an int.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, mark: yaml.Mark) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.problem = f"key {key!r} appears twice (the first would be ignored); keep one"
        self.problem_mark = mark


class TooDeep(yaml.YAMLError):
    """Lists or mappings nested deeper than the parser can follow (PyYAML recurses: a RecursionError)."""

    problem = ("lists or mappings are nested too deeply to read (hundreds of levels); no setting is nested "
               "like that, so look for runaway [ or {")
    problem_mark = None


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")


class SpelledInt(int):
    """An integer YAML 1.1 read from something other than decimal digits (`010`, `0x1F`, `1:22`, `1_000`)."""

    text: str

    def __new__(cls, value: int, text: str) -> SpelledInt:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


MAX_INT_DIGITS = 30  # no setting or secret is a number this long; past it, a number is kept as its text


class LongNumber:
    """An unquoted integer of more than MAX_INT_DIGITS digits, kept as its text: no int() is ever tried on it
    (past 4300 digits Python raises), and no setting takes it (the loader says which field and why)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"a {len(self.text)}-digit number"


class SpelledFloat(float):
    """A float as YAML read it (`2.48`, `1e3`, `.inf`), remembering the text for the quoting hint."""

    text: str

    def __new__(cls, value: float, text: str) -> SpelledFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_yaml_int(self, node: yaml.ScalarNode) -> int | LongNumber:  # type: ignore[override]
        if sum(ch.isdigit() for ch in node.value) > MAX_INT_DIGITS:
            return LongNumber(node.value)
        value = super().construct_yaml_int(node)
        return value if _PLAIN_INT.fullmatch(node.value) else SpelledInt(value, node.value)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        return SpelledFloat(super().construct_yaml_float(node), node.value)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *common`: its keys may be overridden here, on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                break
            if dup:
                raise DuplicateKey(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _UniqueKeyLoader.construct_yaml_float)


def kind(value: Any) -> str:
    """The type of a YAML value as an error names it: `list`, `int`, `a 5000-digit number` (never the name
    of a class of ours such as SpelledInt)."""
    if isinstance(value, LongNumber):
        return repr(value)
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t.__name__
    return type(value).__name__


def as_read(value: Any) -> str:
    """How an unquoted value the user meant as text came out of YAML, for a one-line 'quote it' hint."""
    if value is None:
        return "an unquoted ~, null or empty value as null"
    if isinstance(value, bool):
        return f"an unquoted yes/no/on/off/true/false as {str(value).lower()}"
    if isinstance(value, LongNumber):
        return f"an unquoted {len(value.text)}-digit number as a number"
    if isinstance(value, SpelledInt):
        return f"an unquoted {value.text} as the number {int(value)}"
    if isinstance(value, (int, float)):
        return f"an unquoted {getattr(value, 'text', value)} as a number"
    return f"it as a {type(value).__name__}"


def read_text(path: Path) -> str:
    """The file as text; OSError (missing, a directory) and UnicodeDecodeError are for the caller."""
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    return path.read_bytes().decode("utf-8")


def parse(text: str) -> Any:
    """YAML -> Python, refusing a repeated key (yaml.YAMLError with a mark, like any syntax error)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise TooDeep() from None


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
