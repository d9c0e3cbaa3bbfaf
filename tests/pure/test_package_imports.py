"""Which package may import which, read from the source with `ast` (nothing is imported or run).

The pipeline runs one way: config is pure and never reaches up into the packages that talk to servers or
drive the lab.
"""

from __future__ import annotations

import ast
from pathlib import Path

FABFILE = Path(__file__).resolve().parents[2] / "fabfile"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from fabfile import lab`
    return found


def offenders(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    return sorted(f"{f.relative_to(FABFILE.parent)} imports {m}" for f in files for m in imported_modules(f)
                  if any(m == b or m.startswith(b + ".") for b in banned))


def test_config_imports_none_of_the_packages_after_it_in_the_pipeline():
    banned = tuple(f"fabfile.{p}" for p in ("ssh", "deploy", "drill", "status", "alerting", "lab"))
    assert offenders(sorted((FABFILE / "config").rglob("*.py")), banned) == []


def test_the_checker_sees_lazy_and_from_package_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from fabfile import lab\n    import fabfile.ssh.host_keys\n")
    assert imported_modules(f) >= {"fabfile.lab", "fabfile.ssh.host_keys"}


# The drill's lab-only scenario still imports the VM driver lazily; its power switch is to be registered by
# the lab like the host-key pins (issue #31, the drill's part). Drop this line once that lands.


def test_no_package_but_the_lab_imports_the_lab():
    """The lab is a plug-in: it registers what it adds (fabfile/lab/__init__.py); only tasks.py, the tests
    and the benches import it."""
    files = sorted(f for f in FABFILE.rglob("*.py") if FABFILE / "lab" not in f.parents)
    assert offenders(files, ("fabfile.lab",)) == []
