"""Load (issue 13): N concurrent HTTP MCP clients for D seconds against `serve --transport http` on 127.0.0.1.

    python -m bench.load                          # 50 clients, 60 s
    python -m bench.load --clients 10 --duration 10 --json /tmp/load.json

The server is a child process (uvicorn, stateless streamable HTTP, in-process sandbox on a fresh database). Each
client is an SDK `Client` in its own asyncio task of this process, calling a mix of reads (list_itwins,
list_imodels, list_mappings, get_mapping, list_groups) and, one call in ten, a write pair (create_mapping, then
delete_mapping of that mapping). Counted: calls, errors (isError or an exception), latency p50/p99/max, and the
server's RSS at start, at peak (sampled every 50 ms) and at the end. Exit status 1 when any call failed. The load
generator shares the machine's cores with the server, so the figures are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import Client

from .common import OUR_CLI, free_port, log, percentile, stop, wait_port
from .throughput import RssSampler

ITWIN = "5dd80221-4b44-5fa2-9d55-a54755e21a6a"


def _serve(db: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ITWIN_", "INSIGHTS_"))}
    env.update({"INSIGHTS_SANDBOX_DB": db, "ITWIN_INSIGHTS_BACKEND": "sandbox", "ITWIN_INSIGHTS_LOG_LEVEL": "WARNING"})
    argv = [OUR_CLI, "serve", "--transport", "http", "--port", str(port), "--profile", "all"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
    except BaseException:
        stop(proc)
        raise
    return proc


async def _prepare(url: str) -> tuple[str, str]:
    """An iModel id and a mapping (with one group) that every client reads."""
    async with Client(url) as client:
        listed = await client.call_tool("list_imodels", {"iTwinId": ITWIN})
        imodel = str((listed.structured_content or {})["iModels"][0]["id"])
        created = await client.call_tool("create_mapping", {"imodelId": imodel, "mappingName": "Load"})
        mapping = str((created.structured_content or {})["mapping"]["id"])
        group = {"imodelId": imodel, "mappingId": mapping, "groupName": "Walls", "query": "SELECT * FROM Building.Wall"}
        await client.call_tool("create_group", group)
        return imodel, mapping


async def _load(url: str, clients: int, duration: float) -> dict[str, Any]:
    imodel, mapping = await _prepare(url)
    reads: list[tuple[str, dict[str, Any]]] = [
        ("list_itwins", {}),
        ("list_imodels", {"iTwinId": ITWIN}),
        ("list_mappings", {"imodelId": imodel}),
        ("get_mapping", {"imodelId": imodel, "mappingId": mapping}),
        ("list_groups", {"imodelId": imodel, "mappingId": mapping}),
    ]
    latencies: list[float] = []
    errors: list[str] = []
    connected: list[int] = []
    started = [0.0]

    async def one(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            result = await client.call_tool(tool, args)
        except Exception as exc:
            errors.append(f"{tool}: {type(exc).__name__}: {str(exc)[:120]}")
            return {}
        latencies.append(time.perf_counter() - t0)
        if result.is_error:
            errors.append(f"{tool}: isError")
        return dict(result.structured_content or {})

    async def worker(n: int, ready: anyio.Event, go: anyio.Event) -> None:
        rng = random.Random(n)
        async with Client(url) as client:
            await client.call_tool("list_itwins", {})
            connected.append(n)
            if len(connected) == clients:
                ready.set()
            await go.wait()
            while time.perf_counter() < started[0] + duration:
                if rng.random() < 0.1:
                    name = f"L{n}_{rng.randrange(10**9)}"
                    made = await one(client, "create_mapping", {"imodelId": imodel, "mappingName": name})
                    if "mapping" in made:
                        await one(client, "delete_mapping", {"imodelId": imodel, "mappingId": made["mapping"]["id"]})
                else:
                    tool, args = rng.choice(reads)
                    await one(client, tool, args)

    ready, go = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        for n in range(clients):
            tg.start_soon(worker, n, ready, go)
        await ready.wait()
        started[0] = time.perf_counter()
        go.set()
    wall = time.perf_counter() - started[0]
    return {
        "clients": clients,
        "clients_held": len(connected),
        "duration_s": round(wall, 1),
        "calls": len(latencies) + len([e for e in errors if "Error:" in e]),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "calls_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def run(clients: int, duration: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="insights-load-") as tmp:
        db = str(Path(tmp) / "sandbox.db")
        port = free_port()
        proc = _serve(db, port)
        try:
            server = psutil.Process(proc.pid)
            rss_start = server.memory_info().rss
            with RssSampler(proc.pid) as rss:
                figures = anyio.run(_load, f"http://127.0.0.1:{port}/mcp", clients, duration)
            rss_end = server.memory_info().rss
        finally:
            stop(proc)
    figures.update(
        rss_start_mb=round(rss_start / 2**20, 1),
        rss_peak_mb=round(rss.peak / 2**20, 1),
        rss_end_mb=round(rss_end / 2**20, 1),
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    log(f"load: {args.clients} clients for {args.duration:.0f} s")
    figures = run(args.clients, args.duration)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if figures["errors"] or figures["clients_held"] != args.clients else 0


if __name__ == "__main__":
    sys.exit(main())
