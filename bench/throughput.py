"""Comparison 4: hosted throughput over streamable HTTP: 1, 8 and 32 concurrent clients calling `get_report`.

Each server runs as a child process (ours: `serve --transport http`, stateless; FastMCP's: its HTTP transport,
stateless) and calls the same HTTP sandbox. The clients are SDK `Client`s, one per asyncio task, all in this
process; for each level the clients call back to back for `duration` seconds. We record requests per second,
p50/p99 latency, the server's peak RSS (sampled every 50 ms) and this process's CPU use, which shows when the
load generator itself is the limit (on 2 cores it shares the machine with the server and the sandbox).
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import anyio
import psutil
from mcp import Client

from .common import Sandbox, ServerCmd, fastmcp, free_port, log, median, ours, percentile, stop, wait_port

LEVELS = (1, 8, 32)


class RssSampler:
    """Peak RSS of one process, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _level(url: str, report_id: str, clients: int, duration: float) -> tuple[list[float], float]:
    latencies: list[float] = []
    args = {"reportId": report_id}

    async def worker(ready: anyio.Event, go: anyio.Event, done: list[int]) -> None:
        async with Client(url) as client:
            await client.call_tool("get_report", args)  # connect and warm up outside the window
            done.append(1)
            if len(done) == clients:
                ready.set()
            await go.wait()
            deadline = started[0] + duration
            while True:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                result = await client.call_tool("get_report", args)
                t1 = time.perf_counter()
                if result.is_error:
                    raise RuntimeError(f"get_report failed: {result.content}")
                if t1 <= deadline:
                    latencies.append(t1 - t0)

    started = [0.0]
    ready, go = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        done: list[int] = []
        for _ in range(clients):
            tg.start_soon(worker, ready, go, done)
        await ready.wait()
        started[0] = time.perf_counter()
        go.set()
    return latencies, time.perf_counter() - started[0]


def _serve(server: ServerCmd, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(server.argv(), env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
    except BaseException:
        stop(proc)
        raise
    return proc


def run(sb: Sandbox, duration: float, repeats: int, preview_httpx2: bool = False) -> dict[str, Any]:
    names = ["ours", "fastmcp"] + (["ours_httpx2_preview"] if preview_httpx2 else [])
    ports = {name: free_port() for name in names}
    servers = {
        "ours": ours(sb, "--transport", "http", "--port", str(ports["ours"])),
        "fastmcp": fastmcp(sb, "--transport", "http", "--port", str(ports["fastmcp"])),
    }
    if preview_httpx2:
        port = str(ports["ours_httpx2_preview"])
        servers["ours_httpx2_preview"] = ours(sb, "--transport", "http", "--port", port, httpx2=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    me = psutil.Process()
    raw: dict[str, dict[int, list[dict[str, float]]]] = {name: {n: [] for n in LEVELS} for name in servers}
    try:
        for name, server in servers.items():
            procs[name] = _serve(server, ports[name])
        rss_idle = {name: psutil.Process(p.pid).memory_info().rss for name, p in procs.items()}
        for round_no in range(repeats):
            for clients in LEVELS:
                for name in servers:
                    url = f"http://127.0.0.1:{ports[name]}/mcp"
                    cpu0 = sum(me.cpu_times()[:2])
                    with RssSampler(procs[name].pid) as rss:
                        latencies, wall = anyio.run(_level, url, sb.report_id, clients, duration)
                    cpu = sum(me.cpu_times()[:2]) - cpu0
                    raw[name][clients].append({
                        "rps": len(latencies) / wall,
                        "p50_ms": percentile(latencies, 50) * 1000,
                        "p99_ms": percentile(latencies, 99) * 1000,
                        "peak_rss_mb": rss.peak / 2**20,
                        "client_cpu_pct": 100 * cpu / wall,
                    })
            log(f"throughput round {round_no + 1}/{repeats}")
    finally:
        for proc in procs.values():
            stop(proc)
    result: dict[str, Any] = {"duration_s": duration, "repeats": repeats, "levels": list(LEVELS),
                              "client": "SDK Client per asyncio task, all in the harness process"}
    for name, per_level in raw.items():
        result[name] = {"rss_idle_mb": round(rss_idle[name] / 2**20, 1)}
        for clients, runs in per_level.items():
            result[name][str(clients)] = {
                key: round(median([r[key] for r in runs]), 2 if key != "rps" else 1) for key in runs[0]
            } | {"peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1)}
    return result
