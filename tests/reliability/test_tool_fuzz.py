"""Property-based fuzzing of every tool's arguments, from the tool's own input schema, through a real MCP client.

For each tool, on a fresh copy of the populated sandbox: valid and near-valid arguments (see strategies.py). Every
call must come back as a success whose structuredContent matches the tool's outputSchema, or as an `isError` result
with readable text: no exception, no protocol error, no 5xx, no internal error or traceback, no unbounded reply.
Afterwards the database must pass `PRAGMA integrity_check` and the orphan rules of integrity.py. All distinct
failures of a tool are collected and reported together (one example each) instead of stopping at the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.server.app import selection_for
from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
from itwin_insights_mcp.server.tools import ToolSurface

from .conftest import LONG, TALLY, World, fuzz_settings
from .harness import McpSession
from .integrity import integrity_problems
from .strategies import DOT_IDS, hostile_strings, tool_arguments
from .verdict import reply_problems

EXAMPLES = 150 if LONG else 10


def _every_tool() -> list[str]:
    """The tools of profile `all`, computed without a server (the test checks tools/list agrees)."""
    catalog = load_catalog()
    selection = selection_for(fuzz_settings(":memory:", Path("."))).validate(catalog, LOCAL_TOOLS)
    return sorted(t.name for t in ToolSurface(catalog, selection, local_tools=LOCAL_TOOLS).tools)


TOOLS = _every_tool()


def path_ids(tool: str) -> tuple[str, ...]:
    """The arguments of a catalog tool that become URL path segments (none for local tools)."""
    op = load_catalog().get(tool)
    return tuple(p.arg for p in op.parameters if p.location == "path") if op is not None else ()


def _shown(arguments: dict[str, Any]) -> str:
    """Arguments short enough for a report line."""
    parts = []
    for key, value in arguments.items():
        text = repr(value)
        parts.append(f"{key}={text[:80]}{'...(' + str(len(text)) + ' chars)' if len(text) > 80 else ''}")
    return "{" + ", ".join(parts) + "}"


def test_tools_list_is_what_is_fuzzed(world: World, tmp_path: Path) -> None:
    """Every listed tool is fuzzed: the parametrisation is not allowed to drift from tools/list."""
    with McpSession(fuzz_settings(world.copy_to(tmp_path), tmp_path / "exports")) as mcp:
        assert sorted(mcp.tools) == TOOLS
    assert len(TOOLS) > 100


@pytest.mark.parametrize("tool", TOOLS)
def test_every_reply_is_sound(tool: str, world: World, tmp_path: Path) -> None:
    db = world.copy_to(tmp_path)
    failures: dict[str, str] = {}
    strings = hostile_strings(long=LONG)
    with McpSession(fuzz_settings(db, tmp_path / "exports")) as mcp:
        definition = mcp.tools[tool]
        output_schema = definition.output_schema

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not LONG,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(tool_arguments(definition.input_schema, world.known, strings, path_ids(tool)))
        def one_call(case: tuple[dict[str, Any], list[str]]) -> None:
            arguments, injected = case
            TALLY["tool calls"] += 1
            dotted = {n: v for n in path_ids(tool) if isinstance(v := arguments.get(n), str) and v.strip() in DOT_IDS}
            outcome = mcp.call(tool, arguments)
            found = [outcome] if isinstance(outcome, str) else reply_problems(outcome, output_schema, injected, dotted)
            for problem in found:
                failures.setdefault(problem, _shown(arguments))

        one_call()
    for problem in integrity_problems(db):
        failures.setdefault(f"database after the run: {problem}", "")
    TALLY["tool failures"] += len(failures)
    assert not failures, f"{tool}: {len(failures)} distinct failure(s):\n" + "\n".join(
        f"- {p}\n    e.g. {tool}({a})" if a else f"- {p}" for p, a in failures.items()
    )
