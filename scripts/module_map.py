"""Write the module map of docs/architecture.md from the code: every module under fabfile/ with the first
line of its docstring, one table per package. `--check` only compares (the test suite runs it)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
START, END = "<!-- module-map:start -->", "<!-- module-map:end -->"


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    line = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return line.replace("|", "\\|") or "(no docstring)"


def _package(path: Path) -> Path:
    """The table a module goes in: its package folder, except the guest's files (one table for the guest)."""
    rel = path.relative_to(ROOT)
    return Path(*rel.parts[: rel.parts.index("guest") + 1]) if "guest" in rel.parts else rel.parent


def module_map() -> str:
    tables: dict[Path, list[Path]] = {}
    for path in sorted((ROOT / "fabfile").rglob("*.py")):
        tables.setdefault(_package(path), []).append(path)
    out = [START, ""]
    for package in sorted(tables, key=lambda p: p.parts):
        out += [f"#### `{package.as_posix()}/`", "", "| module | what |", "|---|---|"]
        for path in tables[package]:
            name = path.relative_to(ROOT / package).as_posix()
            out.append(f"| `{name}` | {_first_line(path)} |")
        out.append("")
    return "\n".join([*out, END])


def current() -> str:
    text = DOC.read_text()
    return text[text.index(START): text.index(END) + len(END)]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if current() != module_map():
            print(f"{DOC.relative_to(ROOT)}: the module map is stale; run python scripts/module_map.py")
            return 1
        return 0
    DOC.write_text(DOC.read_text().replace(current(), module_map()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
