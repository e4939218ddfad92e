"""Over stdio, every line that is not a valid JSON-RPC message gets its JSON-RPC 2.0 error (or, for a notification,
nothing), and the server keeps serving: a client is never left waiting (issue 13, item 11)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from itwin_insights_mcp.server.stdio import check_line

from .conftest import COMMAND, child_env

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}

# (line, expected id, expected code); None as the code means "no reply at all".
CASES: list[tuple[str, Any, int | None]] = [
    ("{not json", None, -32700),
    ("\x00\x01garbage", None, -32700),
    ("[" * 1000 + "]" * 1000, None, -32600),
    ('{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"x":"\\ud800"}}', 7, -32600),
    ('{"jsonrpc":"2.0","id":8,"method":"tools/list","params":[1]}', 8, -32602),
    ('{"id":9,"method":"tools/list"}', 9, -32600),
    ('{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', None, -32600),
    ('[{"jsonrpc":"2.0","id":10,"method":"ping"}]', None, -32600),
    ("42", None, -32600),
    ('{"jsonrpc":"2.0","method":"notifications/initialized","params":[1]}', None, None),
]


@pytest.mark.parametrize(("line", "request_id", "code"), CASES)
def test_check_line_names_the_error_and_recovers_the_id(line: str, request_id: Any, code: int | None) -> None:
    problem = check_line(line)
    assert problem is not None
    if code is None:
        assert problem.reply is None
    else:
        assert problem.reply is not None
        assert (problem.reply.id, problem.reply.error.code) == (request_id, code)


def test_valid_messages_pass_unchanged() -> None:
    assert check_line(json.dumps(INITIALIZE)) is None
    assert check_line('{"jsonrpc":"2.0","method":"notifications/initialized"}') is None
    assert check_line('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}') is None


def test_the_stdio_server_answers_every_bad_line_and_keeps_serving(sandbox_db: str) -> None:
    lines = [json.dumps(INITIALIZE)] + [line for line, _, _ in CASES]
    lines += ['{"jsonrpc":"2.0","method":"notifications/initialized"}', '{"jsonrpc":"2.0","id":"last","method":"ping"}']
    child = subprocess.run(
        [COMMAND, "serve"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=child_env(sandbox_db),
        timeout=60,
        check=False,
    )
    replies = [json.loads(line) for line in child.stdout.splitlines() if line.strip()]
    assert replies[0]["id"] == "init" and "result" in replies[0]
    expected = [(request_id, code) for _, request_id, code in CASES if code is not None]
    assert [(r["id"], r["error"]["code"]) for r in replies[1:-1]] == expected
    assert replies[-1] == {"jsonrpc": "2.0", "id": "last", "result": {}}
    assert "Traceback" not in child.stderr
