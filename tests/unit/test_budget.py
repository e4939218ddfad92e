"""The context budget: what tools/list costs per toolset, in total, read-only and in compact mode.

Budgets are the README's figures plus about 10% headroom; a change that grows the surface past them must either
shrink something else or raise the budget here and in the README, visibly, in review.
"""

from __future__ import annotations

import pytest

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.server.budget import cost_of
from itwin_insights_mcp.server.compact import compact_tools
from itwin_insights_mcp.server.selection import ToolSelection
from itwin_insights_mcp.server.tools import ToolSurface

CATALOG = load_catalog()

# cl100k tokens of the tools/list payload.
BUDGETS = {
    "all": 20_500,
    "read-only": 10_000,
    "compact": 400,
    "context": 2_450,
    "mappings": 3_300,
    "properties": 5_600,
    "extraction": 1_200,
    "reports": 2_700,
    "aggregations": 4_800,
    "odata": 650,
}


def surface(name: str) -> ToolSurface:
    if name == "all" or name == "compact":
        return ToolSurface(CATALOG)
    if name == "read-only":
        return ToolSurface(CATALOG, ToolSelection.build(read_only=True))
    return ToolSurface(CATALOG, ToolSelection.build(toolsets=name))


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_tools_list_stays_within_budget(name: str) -> None:
    chosen = surface(name)
    tools = compact_tools(chosen) if name == "compact" else chosen.tools
    cost = cost_of(tools)
    assert cost.tokens <= BUDGETS[name], f"{name}: {cost.tokens} tokens ({cost.bytes} bytes) > {BUDGETS[name]}"
    assert cost.bytes < cost.tokens * 6  # sanity: the encoder really ran


def test_every_toolset_has_a_budget() -> None:
    assert set(CATALOG.toolsets) <= set(BUDGETS)


def test_descriptions_are_short_and_exact() -> None:
    for op in CATALOG:
        assert len(op.description) <= 120, op.tool
        for name, prop in op.input_schema["properties"].items():
            assert len(prop.get("description", "")) <= 200, f"{op.tool}.{name}"
