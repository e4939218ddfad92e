"""The package's import rules, read from the source's AST (no import-linter needed): which room may import which.

- `server/` (the tool layer) and `sandbox/` (the emulator) never import each other;
- `sandbox/domain/` has no Starlette and nothing of HTTP (`wire`, `app`, `api/`);
- `sandbox/engine/` and `sandbox/imodels/` sit below the domain and the adapters;
- the API adapters (one per family) never import each other;
- no module imports another module's `_private` names;
- no import cycles anywhere in the package (lazy imports inside functions count too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "itwin_insights_mcp"
ROOT = Path(__file__).resolve().parents[2] / "src" / PACKAGE
FAMILY_ADAPTERS = ("reporting_v1", "grouping_mapping", "reporting_v2", "context", "odata")
SHARED_API_MODULES = ("reports", "families")  # what several adapters share; not adapters themselves


@dataclass(frozen=True)
class Import:
    """One imported module (absolute name) and the names taken from it, at a line of a module."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
# Every module of sandbox/api/ is an adapter (one per family), except the shared ones.
ADAPTERS = {
    m for m in MODULES if m.startswith(f"{PACKAGE}.sandbox.api.") and m.rsplit(".", 1)[1] not in SHARED_API_MODULES
}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, level: int, name: str | None) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if level == 0:
        return name or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node.level, node.module)
            plain: list[str] = []
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:  # `from . import formulas`: the submodule itself
                    yield Import(module, submodule, (), node.lineno)
                else:
                    plain.append(alias.name)
            if plain:
                yield Import(module, target, tuple(plain), node.lineno)


IMPORTS: list[Import] = [imp for module, path in MODULES.items() for imp in _imports(module, path)]
INTERNAL: list[Import] = [imp for imp in IMPORTS if imp.target.startswith(PACKAGE)]


def _in(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def _where(imp: Import) -> str:
    return f"{imp.source}:{imp.line} imports {imp.target} {list(imp.names) or ''}".rstrip()


def test_the_scan_sees_the_rooms() -> None:
    """Guard against a vacuous pass: the walker finds the rooms and their imports."""
    for room in ("server", "sandbox.domain", "sandbox.api", "sandbox.engine", "sandbox.imodels", "api"):
        assert any(_in(m, f"{PACKAGE}.{room}") for m in MODULES), room
    assert {f"{PACKAGE}.sandbox.api.{name}" for name in FAMILY_ADAPTERS} <= ADAPTERS
    assert any(imp.source in ADAPTERS and _in(imp.target, f"{PACKAGE}.sandbox.domain") for imp in INTERNAL)
    assert len(INTERNAL) > 200


@pytest.mark.parametrize(("room", "other"), [("server", "sandbox"), ("sandbox", "server")])
def test_server_and_sandbox_never_import_each_other(room: str, other: str) -> None:
    bad = [
        _where(imp)
        for imp in INTERNAL
        if _in(imp.source, f"{PACKAGE}.{room}") and _in(imp.target, f"{PACKAGE}.{other}")
    ]
    assert not bad, bad


UPPER_SANDBOX = tuple(f"{PACKAGE}.sandbox.{room}" for room in ("app", "runtime", "wire", "api", "domain"))
FORBIDDEN_BELOW = {
    # room: rooms (or third-party packages) it must not import
    "sandbox.domain": ("starlette", f"{PACKAGE}.sandbox.wire", f"{PACKAGE}.sandbox.app", f"{PACKAGE}.sandbox.api"),
    "sandbox.engine": (
        "starlette",
        f"{PACKAGE}.sandbox.wire",
        f"{PACKAGE}.sandbox.app",
        f"{PACKAGE}.sandbox.api",
        f"{PACKAGE}.sandbox.domain",
    ),
    "sandbox.imodels": (
        "starlette",
        f"{PACKAGE}.sandbox.wire",
        f"{PACKAGE}.sandbox.app",
        f"{PACKAGE}.sandbox.api",
        f"{PACKAGE}.sandbox.domain",
        f"{PACKAGE}.sandbox.engine",
    ),
    "sandbox.store": ("starlette", *UPPER_SANDBOX, f"{PACKAGE}.sandbox.imodels", f"{PACKAGE}.sandbox.engine"),
    "sandbox.errors": ("starlette", f"{PACKAGE}.sandbox"),
    "api": (f"{PACKAGE}.server", f"{PACKAGE}.sandbox"),  # the centre: both sides import it, it imports neither
}


@pytest.mark.parametrize("room", sorted(FORBIDDEN_BELOW))
def test_lower_rooms_do_not_import_upper_ones(room: str) -> None:
    bad = [
        _where(imp)
        for imp in IMPORTS
        if _in(imp.source, f"{PACKAGE}.{room}") and any(_in(imp.target, f) for f in FORBIDDEN_BELOW[room])
    ]
    assert not bad, bad


def test_api_adapters_do_not_import_each_other() -> None:
    bad = [_where(imp) for imp in INTERNAL if imp.source in ADAPTERS and imp.target in ADAPTERS - {imp.source}]
    assert not bad, bad


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_names_imported_across_modules() -> None:
    bad = [
        _where(imp)
        for imp in INTERNAL
        if any(_private(n) for n in imp.names) or any(_private(part) for part in imp.target.split("."))
    ]
    assert not bad, bad


def test_no_private_attributes_of_imported_modules() -> None:
    """`module._name` through an imported module is the same leak as importing `_name`."""
    bad: list[str] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if f"{_resolve(module, node.level, node.module)}.{alias.name}" in MODULES
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                bad.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, bad


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import): Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in INTERNAL:
        if imp.target in MODULES and imp.target != imp.source:
            edges[imp.source].add(imp.target)
    assert _cycles(edges) == []
