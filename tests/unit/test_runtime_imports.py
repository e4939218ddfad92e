"""The runtime package never imports build-time or bench-only code, so the wheel runs with its own dependencies.

`itwin_insights_mcp_build` (server.json, the bundle manifest, the capability document, the token budget) is not in
the wheel, and `tiktoken` is only in the test and bench extras: a module-level import of either from
`itwin_insights_mcp` would break every installed server. The one allowed use is the CLI's `capability` command,
which imports the generator inside the command and says what to do when it is missing.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from itwin_insights_mcp.cli import main

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "itwin_insights_mcp"
BUILD_ONLY = ("itwin_insights_mcp_build", "tiktoken")


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in a module."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, top))
            visit(child, nested)

    visit(tree, True)
    return found


def test_no_runtime_module_imports_build_only_code() -> None:
    offenders: list[str] = []
    lazy: list[str] = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for module, top in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in BUILD_ONLY:
                where = f"{path.relative_to(ROOT)}: {module}"
                (offenders if top else lazy).append(where)
    assert offenders == []
    assert lazy == ["src/itwin_insights_mcp/cli.py: itwin_insights_mcp_build.capability"]


def test_the_wheel_ships_only_the_runtime_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/itwin_insights_mcp"]
    assert not list(RUNTIME.rglob("budget.py")) and not (RUNTIME / "distribution.py").exists()
    assert not (RUNTIME / "capability.py").exists()


def test_capability_command_without_the_generator_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "itwin_insights_mcp_build.capability", None)  # as in an installed wheel
    assert main(["capability"]) == 2
    assert "source checkout" in capsys.readouterr().err
