"""The code's shape, read from the source with `ast` (nothing is imported or run), so it stays true: which
package may import which, no import cycle, small modules and classes, and a module map that matches.

The pipeline runs one way: config is pure and never reaches up into the packages that talk to servers or
drive the lab; the lab is a plug-in nobody imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

from scripts import module_map
from tests.helpers import module_imports as imported_modules

FABFILE = Path(__file__).resolve().parents[2] / "fabfile"
MAX_MODULE_LINES, MAX_CLASS_LINES = 500, 300
# the packages that talk to servers or drive the lab: config and facts (pure) import none of them
AFTER_CONFIG = tuple(f"fabfile.{p}" for p in ("ssh", "deploy", "drill", "status", "alerting", "lab"))


def offenders(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    return sorted(f"{f.relative_to(FABFILE.parent)} imports {m}" for f in files for m in imported_modules(f)
                  if any(m == b or m.startswith(b + ".") for b in banned))


def test_config_imports_none_of_the_packages_after_it_in_the_pipeline():
    assert offenders(sorted((FABFILE / "config").rglob("*.py")), AFTER_CONFIG) == []


def test_facts_read_only_the_config():
    """fabfile/facts parses what the server said without a server (the steps, verify and status use it)."""
    assert offenders(sorted((FABFILE / "facts").rglob("*.py")), AFTER_CONFIG) == []


def test_the_checker_sees_lazy_and_from_package_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from fabfile import lab\n    import fabfile.ssh.host_keys\n")
    assert imported_modules(f) >= {"fabfile.lab", "fabfile.ssh.host_keys"}


def test_no_package_but_the_lab_imports_the_lab():
    """The lab is a plug-in: it registers what it adds (fabfile/lab/__init__.py); only tasks.py, the tests
    and the benches import it."""
    files = sorted(f for f in FABFILE.rglob("*.py") if FABFILE / "lab" not in f.parents)
    assert offenders(files, ("fabfile.lab",)) == []


def _modules() -> dict[str, Path]:
    """Every module of the fabfile package by dotted name, but the guest's (they run inside the lab VM)."""
    found = {}
    for path in sorted(FABFILE.rglob("*.py")):
        rel = path.relative_to(FABFILE.parent).with_suffix("")
        if "guest" not in rel.parts:
            found[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = path
    return found


def _runtime_imports(path: Path) -> set[str]:
    """`module_imports` less what only a type checker reads (`if TYPE_CHECKING:`): those never run, so they
    make no cycle."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the fabfile modules it imports when it runs (`from package import name`: the package)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target in _runtime_imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle between modules, or []; a package and its own submodules are not one."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if node.startswith(dep + ".") or dep.startswith(node + "."):
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "p": {"p.x"}, "p.x": {"p"}}) == []


def test_no_module_over_500_lines_and_no_class_over_300():
    too_big = []
    for name, path in _modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno > MAX_CLASS_LINES:
                too_big.append(f"{name}.{node.name}: {node.end_lineno - node.lineno} lines")
    assert not too_big, "split these: " + "; ".join(too_big)


def test_the_module_map_in_the_docs_is_the_code():
    assert module_map.current() == module_map.module_map(), "run python scripts/module_map.py"
