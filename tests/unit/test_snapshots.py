"""Every tool's name, description, schemas and annotations, snapshotted so a surface change shows in review.

Run with UPDATE_TOOLSNAPS=1 to accept a change; a missing or different snapshot fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mcp.types as types
import pytest

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.server.compact import compact_tools
from itwin_insights_mcp.server.selection import ToolSelection
from itwin_insights_mcp.server.tools import ToolSurface

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "tools"
UPDATE = os.environ.get("UPDATE_TOOLSNAPS") == "1"

FULL = ToolSurface(load_catalog(), ToolSelection.build(include_deprecated=True)).tools
COMPACT = compact_tools(ToolSurface(load_catalog()))
READ_ONLY_COMPACT = compact_tools(ToolSurface(load_catalog(), ToolSelection.build(read_only=True)))
CASES = (
    [(t.name, t) for t in FULL]
    + [(f"compact.{t.name}", t) for t in COMPACT]
    + [(f"compact-read-only.{t.name}", t) for t in READ_ONLY_COMPACT]
)


def render(tool: types.Tool) -> str:
    return json.dumps(tool.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize(("name", "tool"), CASES, ids=[name for name, _ in CASES])
def test_tool_matches_snapshot(name: str, tool: types.Tool) -> None:
    path = SNAPSHOTS / f"{name}.json"
    rendered = render(tool)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot for {name}: run UPDATE_TOOLSNAPS=1 pytest {__file__}"
    assert path.read_text(encoding="utf-8") == rendered, f"{name} changed: review, then UPDATE_TOOLSNAPS=1"


def test_no_stale_snapshots() -> None:
    expected = {f"{name}.json" for name, _ in CASES}
    present = {p.name for p in SNAPSHOTS.glob("*.json")}
    assert present - expected == set(), "snapshots of tools that no longer exist"
