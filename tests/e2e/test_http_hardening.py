"""HTTP face hardening (issue 13, items 10 and 14): no never-ending GET streams on the stateless transport, and a
server bound to another loopback address answers requests addressed to it."""

from __future__ import annotations

import subprocess

import httpx2

from .conftest import COMMAND, child_env, free_port, wait_for
from .test_http import HEADERS, INIT


def test_get_on_the_stateless_transport_is_refused_not_left_open(
    serve_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = serve_process
    for _ in range(20):  # each would have been a stream (and a file descriptor) that never ends
        refused = httpx2.get(f"{base}/mcp", headers={"Accept": "text/event-stream"}, timeout=5)
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert httpx2.post(f"{base}/mcp", json=INIT, headers=HEADERS).status_code == 200


def test_a_server_bound_to_127_0_0_2_answers_requests_addressed_to_it(sandbox_db: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--host", "127.0.0.2", "--port", str(port)],
        env=child_env(sandbox_db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.2:{port}"
    try:
        wait_for(f"{base}/healthz", process)
        assert httpx2.post(f"{base}/mcp", json=INIT, headers=HEADERS).status_code == 200
        foreign = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Host": "evil.example.com"})
        assert foreign.status_code == 421
    finally:
        process.terminate()
        process.wait(timeout=10)
