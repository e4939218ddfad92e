"""FastMCP's server generated from an OpenAPI document (the peer). Runs in its own venv (bench/.venv-fastmcp).

    python bench/peers/fastmcp_openapi.py --spec DOC.json --base-url http://127.0.0.1:P/insights/reporting \
        [--transport stdio|http --port N] [--list-tools-json]

DOC.json is one OpenAPI document (bench.openapi_doc writes it from our specs). Every request carries
`Authorization: Bearer $BENCH_TOKEN` and the API version's Accept header, as our client sends them.
Only the standard library, `fastmcp` and its `httpx2` are imported here: this file runs in FastMCP's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any


def build(spec: dict[str, Any], base_url: str, accept: str) -> Any:
    import httpx2
    from fastmcp import FastMCP

    headers = {"Authorization": f"Bearer {os.environ.get('BENCH_TOKEN', 'bench')}", "Accept": accept}
    client = httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=30)
    names = {
        op["operationId"]: op["x-mcp"]["tool"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op and "x-mcp" in op
    }
    return FastMCP.from_openapi(spec, client=client, name="fastmcp-openapi", mcp_names=names)


async def list_tools_json(server: Any) -> None:
    """Print the tools/list result as it goes on the wire (for the context-size comparison)."""
    from fastmcp import Client

    async with Client(server) as client:
        result = await client.list_tools_mcp()
    json.dump(result.model_dump(by_alias=True, exclude_none=True, mode="json"), sys.stdout)


async def bench_inprocess(server: Any, calls: int, report_id: str) -> None:
    """Print the seconds each of `calls` sequential get_report calls took, through FastMCP's in-memory client."""
    import time

    from fastmcp import Client

    async with Client(server) as client:
        for _ in range(20):
            await client.call_tool("get_report", {"reportId": report_id})
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool("get_report", {"reportId": report_id})
            times.append(time.perf_counter() - started)
    json.dump(times, sys.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--accept", default="application/vnd.bentley.itwin-platform.v1+json")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--list-tools-json", action="store_true")
    parser.add_argument("--bench-inprocess", type=int, default=0, help="time N get_report calls in memory")
    parser.add_argument("--report-id")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    server = build(spec, args.base_url, args.accept)
    if args.bench_inprocess:
        asyncio.run(bench_inprocess(server, args.bench_inprocess, args.report_id))
    elif args.list_tools_json:
        asyncio.run(list_tools_json(server))
    elif args.transport == "stdio":
        server.run(transport="stdio", show_banner=False)
    else:
        server.run(transport="http", show_banner=False, host="127.0.0.1", port=args.port, path="/mcp",
                   stateless_http=True, log_level="warning")


if __name__ == "__main__":
    main()
