"""A cancelled wait_for_extraction stops: no progress after the cancel, no upstream poll later than a second after
it, over stdio and HTTP in both protocol eras (issue 14, item 5).

The upstream is a fake Bentley service whose extraction never ends and which records when it is polled; the server
is the real command, talking to it as it talks to api.bentley.com.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
from mcp import Client, StdioServerParameters
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .conftest import COMMAND, child_env, free_port, wait_for
from .hosting import _uvicorn

pytestmark = pytest.mark.anyio

JOB = "11111111-2222-3333-4444-555555555555"


class NeverEndingExtraction:
    """A fake upstream: the extraction stays Running; every poll is timed."""

    def __init__(self) -> None:
        self.polls: list[float] = []
        self.app = Starlette(routes=[Route("/insights/reporting/datasources/extraction/status/{jobId}", self.status)])

    async def status(self, request: Request) -> JSONResponse:
        self.polls.append(time.monotonic())
        return JSONResponse({"status": {"state": "Running", "reason": "", "containsIssues": False, "_links": {}}})


@pytest.fixture
def upstream() -> Iterator[tuple[str, NeverEndingExtraction]]:
    fake = NeverEndingExtraction()
    port = free_port()
    with _uvicorn(fake.app, port):
        yield f"http://127.0.0.1:{port}", fake


def server_env(db: str, base_url: str) -> dict[str, str]:
    env = child_env(db, ITWIN_INSIGHTS_BACKEND="bentley", ITWIN_API_BASE_URL=base_url, ITWIN_ACCESS_TOKEN="fake")
    return env


@contextmanager
def http_server(db: str, base_url: str, *args: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--port", str(port), *args],
        env=server_env(db, base_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def cancel_a_wait(client: Client, fake: NeverEndingExtraction) -> None:
    """Start a wait, cancel it after its second progress, then watch for three seconds."""
    seen: list[float] = []
    second = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(time.monotonic())
        if len(seen) >= 2:
            second.set()

    async with anyio.create_task_group() as group:

        async def wait() -> None:
            await client.call_tool(
                "wait_for_extraction", {"jobId": JOB, "waitSeconds": 40}, progress_callback=on_progress
            )

        group.start_soon(wait)
        with anyio.fail_after(20):
            await second.wait()
        group.cancel_scope.cancel()
    cancelled_at = time.monotonic()
    polls_before = len(fake.polls)
    assert polls_before >= 2
    await anyio.sleep(3.5)  # the wait would poll every second here, and report progress each time
    assert [p for p in seen if p > cancelled_at] == []
    late = [round(p - cancelled_at, 2) for p in fake.polls if p > cancelled_at + 1.0]
    assert late == [], f"polled {late} s after the cancel"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_cancel_over_stdio(sandbox_db: str, upstream: tuple[str, NeverEndingExtraction], mode: str) -> None:
    base_url, fake = upstream
    params = StdioServerParameters(command=COMMAND, args=["serve"], env=server_env(sandbox_db, base_url))
    async with Client(params, mode=mode) as client:
        await cancel_a_wait(client, fake)


async def test_cancel_over_http_2026_stateless(sandbox_db: str, upstream: tuple[str, NeverEndingExtraction]) -> None:
    base_url, fake = upstream
    with http_server(sandbox_db, base_url) as url:
        async with Client(url, mode="auto") as client:
            await cancel_a_wait(client, fake)


async def test_cancel_over_http_2025_with_sessions(
    sandbox_db: str, upstream: tuple[str, NeverEndingExtraction]
) -> None:
    base_url, fake = upstream
    with http_server(sandbox_db, base_url, "--http-sessions") as url:
        async with Client(url, mode="legacy") as client:
            await cancel_a_wait(client, fake)
