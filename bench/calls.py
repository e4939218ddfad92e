"""Comparison 2: the overhead of one `get_report` call, against the same request sent directly with httpx.

All paths end at the same HTTP sandbox on 127.0.0.1, so the sandbox's own time is in every figure and the
difference to `httpx_direct` is the MCP layer's cost. `httpx2_direct` is the same request through `httpx2`, the
client the SDK and FastMCP use. Calls are sequential (one in flight); every variant keeps one connection open, and
the variants take turns in blocks of `calls` so drift in background load hits them alike.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters

from .common import HEADERS, TOKEN, Sandbox, ServerCmd, fastmcp, log, median, ours, percentile, sdk_floor

Call = Callable[[], Awaitable[None]]


async def _timed(call: Call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


def _mcp_call(client: Client, name: str, arguments: dict[str, Any]) -> Call:
    async def call() -> None:
        result = await client.call_tool(name, arguments)
        if result.is_error:
            raise RuntimeError(f"{name} failed: {result.content}")

    return call


async def _stdio(stack: AsyncExitStack, server: ServerCmd) -> Client:
    params = StdioServerParameters(command=server.command, args=list(server.args), env=server.env)
    return await stack.enter_async_context(Client(params))


async def _measure(sb: Sandbox, calls: int, repeats: int, preview_httpx2: bool) -> dict[str, list[float]]:
    from itwin_insights_mcp.backend import open_client
    from itwin_insights_mcp.server.app import build_server
    from itwin_insights_mcp.settings import Settings

    args = {"reportId": sb.report_id}
    variants: dict[str, Call] = {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=sb.url, headers=HEADERS))

        async def direct() -> None:
            response = await http.get(f"/insights/reporting/reports/{sb.report_id}")
            response.raise_for_status()
            response.json()

        variants["httpx_direct"] = direct
        import httpx2

        http2 = await stack.enter_async_context(httpx2.AsyncClient(base_url=sb.url, headers=HEADERS))

        async def direct2() -> None:
            response = await http2.get(f"/insights/reporting/reports/{sb.report_id}")
            response.raise_for_status()
            response.json()

        variants["httpx2_direct"] = direct2
        settings = Settings(backend="bentley", api_base_url=sb.url, access_token=TOKEN, log_level="WARNING")
        api = await stack.enter_async_context(open_client(settings))
        inproc = await stack.enter_async_context(Client(build_server(settings, api)))
        variants["ours_inprocess"] = _mcp_call(inproc, "get_report", args)
        variants["ours_stdio"] = _mcp_call(await _stdio(stack, ours(sb)), "get_report", args)
        variants["fastmcp_stdio"] = _mcp_call(await _stdio(stack, fastmcp(sb)), "get_report", args)
        if preview_httpx2:
            preview = ours(sb, name="ours_httpx2_preview", httpx2=True)
            variants["ours_stdio_httpx2_preview"] = _mcp_call(await _stdio(stack, preview), "get_report", args)
        variants["sdk_floor_stdio_echo"] = _mcp_call(await _stdio(stack, sdk_floor()), "echo", {"text": "x"})
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for call in variants.values():
            await _timed(call, 20)  # warm-up
        for round_no in range(repeats):
            for name, call in variants.items():
                samples[name] += await _timed(call, calls)
            log(f"calls round {round_no + 1}/{repeats}")
    return samples


def fastmcp_inprocess(sb: Sandbox, calls: int, repeats: int) -> list[float]:
    """FastMCP's server called in memory by FastMCP's own client, in its own venv (it cannot load in ours)."""
    server = fastmcp(sb, "--bench-inprocess", str(calls * repeats), "--report-id", sb.report_id)
    out = subprocess.run(server.argv(), env=server.env, capture_output=True, text=True, check=True).stdout
    return [float(x) for x in json.loads(out)]


def run(sb: Sandbox, calls: int, repeats: int, preview_httpx2: bool = False) -> dict[str, Any]:
    samples = anyio.run(_measure, sb, calls, repeats, preview_httpx2)
    samples["fastmcp_inprocess"] = fastmcp_inprocess(sb, calls, repeats)
    base = median(samples["httpx_direct"])
    result: dict[str, Any] = {"calls_per_variant": calls * repeats}
    for name, values in samples.items():
        med = median(values)
        result[name] = {"median_ms": round(med * 1000, 3), "p99_ms": round(percentile(values, 99) * 1000, 3),
                        "overhead_over_httpx_ms": round((med - base) * 1000, 3)}
    return result
