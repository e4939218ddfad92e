"""Comparison 1: cold start to the first `tools/list` answer over stdio.

Each start is a fresh child process spawned by the SDK's stdio client; the clock runs from before the spawn to the
`tools/list` result in hand (so it includes the handshake the client does). Variants are interleaved round-robin,
so background load hits them alike; the figure is the median of `repeats` starts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from .common import Sandbox, ServerCmd, fastmcp, log, median, ours, sdk_floor


async def cold_start(server: ServerCmd) -> tuple[float, int]:
    params = StdioServerParameters(command=server.command, args=list(server.args), env=server.env)
    started = time.perf_counter()
    async with Client(params) as client:
        tools = await client.list_tools()
        seconds = time.perf_counter() - started
    return seconds, len(tools.tools)


def interpreter_start(repeats: int) -> float:
    """`python -c pass`: what any Python server pays before its first import."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return median(times)


def servers(sb: Sandbox) -> list[ServerCmd]:
    return [
        sdk_floor(),
        ours(sb, name="ours_full"),
        ours(sb, "--mode", "compact", name="ours_compact"),
        ours(sb, backend="sandbox", name="ours_full_inprocess_sandbox"),
        fastmcp(sb),
    ]


def run(sb: Sandbox, repeats: int) -> dict[str, Any]:
    under_test = servers(sb)
    samples: dict[str, list[float]] = {s.name: [] for s in under_test}
    tools: dict[str, int] = {}
    for server in under_test:  # one unmeasured start each: page cache, .pyc files
        anyio.run(cold_start, server)
    for round_no in range(repeats):
        for server in under_test:
            seconds, count = anyio.run(cold_start, server)
            samples[server.name].append(seconds)
            tools[server.name] = count
        log(f"startup round {round_no + 1}/{repeats}")
    result: dict[str, Any] = {"repeats": repeats, "python_c_pass_s": round(interpreter_start(repeats), 3)}
    for name, values in samples.items():
        result[name] = {"median_s": round(median(values), 3), "min_s": round(min(values), 3),
                        "samples_s": [round(v, 3) for v in values], "tools": tools[name]}
    return result
