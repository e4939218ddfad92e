"""Regressions at the transports (issue 13, items 10, 11 and 14), against the installed command as a child process.

- stdio: every malformed JSON-RPC line gets a JSON-RPC 2.0 error (-32700 / -32600 / -32602; with the request's id
  when it can be recovered) and the server keeps serving.
- stateless HTTP: `GET /mcp` is refused (405) or its stream ends, instead of holding a descriptor forever.
- `--host 127.0.0.2`: the host check accepts the address the server was bound to.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest

from ..e2e.conftest import COMMAND, child_env, free_port, http_server, wait_for

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
# (line, the id a reply must carry: an int when it can be recovered, None when it cannot)
MALFORMED: list[tuple[str, int | None]] = [
    ("{not json", None),
    # Too deep to parse, so the id (although written first) may be unrecoverable: id 11 or null.
    ('{"jsonrpc": "2.0", "id": 11, "method": "ping", "params": ' + "[" * 1000 + "]" * 1000 + "}", None),
    ('{"jsonrpc": "2.0", "id": 12, "method": "tools/list", "params": []}', 12),
    ('{"id": 13, "method": "ping"}', 13),
    ('{"jsonrpc": "2.0", "id": 14, "method": "tools/call", "params": {"name": "list_itwins", "arguments": 5}}', 14),
    ('{"jsonrpc": "2.0", "id": 15, "method": "ping", "params": {"x": "\\ud800"}}', 15),
    ("[]", None),
    ('"just a string"', None),
]
RPC_ERRORS = (-32700, -32600, -32601, -32602)


def _reader(stream: Any, lines: queue.Queue[bytes]) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line)


def _replies(lines: queue.Queue[bytes], until_id: int, within: float) -> list[dict[str, Any]]:
    """The JSON messages the server writes until the one with `until_id` (or `within` seconds pass)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        found.append(json.loads(line))
        if found[-1].get("id") == until_id:
            break
    return found


@pytest.mark.parametrize(("line", "reply_id"), MALFORMED, ids=[f"line{n}" for n in range(len(MALFORMED))])
def test_stdio_answers_a_malformed_line_and_keeps_serving(sandbox_db: str, line: str, reply_id: int | None) -> None:
    process = subprocess.Popen(
        [COMMAND, "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_env(sandbox_db),
    )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    try:
        for message in (INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}):
            process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()
        assert any(r.get("id") == 1 for r in _replies(lines, 1, 30)), "no reply to initialize"
        process.stdin.write(line.encode("utf-8", "surrogatepass") + b"\n")
        process.stdin.write(b'{"jsonrpc": "2.0", "id": 99, "method": "ping"}\n')
        process.stdin.flush()
        replies = _replies(lines, 99, 15)  # stdio answers in order: the malformed line's reply comes first
    finally:
        process.kill()
        process.wait(timeout=30)
    assert any(r.get("id") == 99 and "result" in r for r in replies), f"stopped serving after {line[:60]!r}"
    answers = [r for r in replies if r.get("id") != 99]
    assert answers, f"no reply at all to {line[:60]!r}"
    if reply_id is not None:
        assert any(r.get("id") == reply_id for r in answers), answers
    errors = [r["error"]["code"] for r in answers if isinstance(r.get("error"), dict)]
    if reply_id is None or line.startswith('{"id"'):
        assert errors and all(code in RPC_ERRORS for code in errors), answers


def test_stateless_http_get_streams_are_refused_or_closed(sandbox_db: str) -> None:
    with http_server(sandbox_db) as (base, _process):
        opened = 0
        for _ in range(3):
            headers = {"Accept": "text/event-stream"}
            try:
                with httpx.stream("GET", f"{base}/mcp", headers=headers, timeout=httpx.Timeout(5.0)) as reply:
                    if reply.status_code == 405:
                        continue
                    assert reply.status_code < 500
                    for _chunk in reply.iter_bytes():
                        pass  # a stream that ends is fine; one that stays open times out below
            except httpx.ReadTimeout:
                opened += 1
        assert opened == 0, f"{opened} GET /mcp stream(s) still open after 5 s"


def test_the_host_check_accepts_the_address_the_server_is_bound_to(sandbox_db: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--host", "127.0.0.2", "--port", str(port)],
        env=child_env(sandbox_db),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.2:{port}/healthz", process)
        reply = httpx.post(
            f"http://127.0.0.2:{port}/mcp",
            json=INIT,
            headers={"Accept": "application/json, text/event-stream"},
            timeout=10,
        )
        assert reply.status_code == 200, (reply.status_code, reply.text[:200])  # was 421 Misdirected Request
    finally:
        process.terminate()
        process.wait(timeout=30)
