"""End-to-end helpers: start the installed command as a real child process and wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

COMMAND = str(Path(sys.executable).parent / "itwin-insights-mcp")


def child_env(db: str, **extra: str) -> dict[str, str]:
    """The environment of a child server: the sandbox on `db`, no Bentley credentials leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ITWIN_", "INSIGHTS_"))}
    env.update({"INSIGHTS_SANDBOX_DB": db, "ITWIN_INSIGHTS_BACKEND": "sandbox", **extra})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with {process.returncode}: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            if httpx2.get(url, timeout=1.0).status_code < 500:
                return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {within}s")


@contextmanager
def http_server(sandbox_db: str, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`itwin-insights-mcp serve --transport http [args]` on a free loopback port, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--port", str(port), *args],
        env=child_env(sandbox_db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def serve_process(sandbox_db: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with http_server(sandbox_db) as server:
        yield server
