"""Comparison 5: the server process's RSS at idle (after the first `tools/list`) and after 10,000 calls, over stdio.

Ours and FastMCP's call `get_report` on the HTTP sandbox; the SDK floor calls its one `echo` tool. The server is the
stdio client's child process, found with psutil; RSS is read from it directly.
"""

from __future__ import annotations

from typing import Any

import anyio
import psutil
from mcp import Client, StdioServerParameters

from .common import Sandbox, ServerCmd, fastmcp, log, ours, sdk_floor


async def _measure(server: ServerCmd, tool: str, arguments: dict[str, Any], calls: int) -> dict[str, float]:
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    params = StdioServerParameters(command=server.command, args=list(server.args), env=server.env)
    async with Client(params) as client:
        await client.list_tools()
        child = next(p for p in me.children() if p.pid not in before)
        idle = child.memory_info().rss
        for _ in range(calls):
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                raise RuntimeError(f"{tool} failed: {result.content}")
        after = child.memory_info().rss
    return {"idle_mb": round(idle / 2**20, 1), "after_calls_mb": round(after / 2**20, 1),
            "growth_mb": round((after - idle) / 2**20, 1)}


def run(sb: Sandbox, calls: int, preview_httpx2: bool = False) -> dict[str, Any]:
    report = {"reportId": sb.report_id}
    cases: list[tuple[ServerCmd, str, dict[str, Any]]] = [
        (sdk_floor(), "echo", {"text": "x"}),
        (ours(sb, name="ours_full"), "get_report", report),
        (ours(sb, "--mode", "compact", name="ours_compact"), "call_operation",
         {"name": "get_report", "arguments": report}),
        (fastmcp(sb), "get_report", report),
    ]
    if preview_httpx2:
        cases.append((ours(sb, name="ours_full_httpx2_preview", httpx2=True), "get_report", report))
    result: dict[str, Any] = {"calls": calls}
    for server, tool, arguments in cases:
        result[server.name] = anyio.run(_measure, server, tool, arguments, calls)
        log(f"memory {server.name}: {result[server.name]}")
    return result
