"""The context budget: what tools/list costs per toolset, in total, read-only and in compact mode.

Budgets are the README's figures plus about 10% headroom; a change that grows the surface past them must either
shrink something else or raise the budget here and in the README, visibly, in review.
"""

from __future__ import annotations

import pytest

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.server.app import selection_for
from itwin_insights_mcp.server.compact import compact_tools
from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
from itwin_insights_mcp.server.tools import ToolSurface
from itwin_insights_mcp.settings import Settings
from itwin_insights_mcp_build.budget import cost_of

CATALOG = load_catalog()

# cl100k tokens of the tools/list payload.
BUDGETS = {
    "profile:reporting-v1": 21_500,
    "profile:current": 16_000,
    "profile:all": 33_200,
    "read-only": 10_500,
    "compact": 400,
    "context": 2_750,
    "mappings": 3_600,
    "properties": 5_900,
    "extraction": 1_700,
    "reports": 3_000,
    "aggregations": 5_100,
    "odata": 1_300,
    "gm_mappings": 5_850,
    "gm_extraction": 3_050,
    "reports_v2": 2_800,
    "api_keys": 1_550,
}


def surface(name: str) -> ToolSurface:
    """What `serve` would expose for a profile, a toolset, read-only or compact mode (local tools included)."""
    if name.startswith("profile:"):
        settings = Settings(profile=name.split(":")[1])  # type: ignore[arg-type]
    elif name == "read-only":
        settings = Settings(read_only=True)
    elif name == "compact":
        settings = Settings()
    else:
        settings = Settings(toolsets=(name,))
    return ToolSurface(CATALOG, selection_for(settings).validate(CATALOG, LOCAL_TOOLS), local_tools=LOCAL_TOOLS)


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
