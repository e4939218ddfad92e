"""The stdio face: the SDK's stdio transport, with every line that is not a valid JSON-RPC message answered.

The SDK drops a line it cannot parse, so a client that sent one waits for ever. Here each stdin line is checked first;
a bad one gets the JSON-RPC 2.0 error it deserves (-32700 parse error, -32600 invalid request, -32602 invalid params)
with its id when one can be recovered (`null` otherwise; a bad notification gets nothing), and the server keeps
serving. Valid lines go on to the SDK unchanged.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

__all__ = ["LineProblem", "check_line", "serve_stdio"]

MAX_LINE_CHARACTERS = 16 * 1024 * 1024  # the HTTP face caps bodies too; nothing legitimate comes near it


@dataclass(frozen=True)
class LineProblem:
    """Why a line is not a message the server can handle, and the error reply it gets (None: no reply)."""

    reply: types.JSONRPCError | None


def _error(request_id: Any, code: int, message: str) -> types.JSONRPCError:
    valid_id = request_id if isinstance(request_id, str) or type(request_id) is int else None
    return types.JSONRPCError(jsonrpc="2.0", id=valid_id, error=types.ErrorData(code=code, message=message))


def check_line(line: str) -> LineProblem | None:
    """None when `line` is a JSON-RPC message the SDK will accept; else the problem and the reply it gets."""
    if len(line) > MAX_LINE_CHARACTERS:
        return LineProblem(_error(None, types.INVALID_REQUEST, "Invalid Request: the message is too large."))
    try:
        decoded = json.loads(line)
    except RecursionError:
        return LineProblem(_error(None, types.INVALID_REQUEST, "Invalid Request: the JSON is nested too deeply."))
    except ValueError as exc:
        return LineProblem(_error(None, types.PARSE_ERROR, f"Parse error: {str(exc)[:120]}"))
    if not isinstance(decoded, dict):
        kind = "a batch (array)" if isinstance(decoded, list) else type(decoded).__name__
        return LineProblem(_error(None, types.INVALID_REQUEST, f"Invalid Request: expected one object, got {kind}."))
    request_id = decoded.get("id")
    is_notification = "id" not in decoded and "method" in decoded
    if "id" in decoded and not (isinstance(request_id, str) or type(request_id) is int):
        return LineProblem(_error(None, types.INVALID_REQUEST, "Invalid Request: `id` must be a string or an integer."))
    try:
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        message = "Invalid Request: the message contains a lone UTF-16 surrogate, which is not valid Unicode."
        return LineProblem(None if is_notification else _error(request_id, types.INVALID_REQUEST, message))
    except (RecursionError, ValueError):
        message = "Invalid Request: the JSON is nested too deeply."
        return LineProblem(None if is_notification else _error(request_id, types.INVALID_REQUEST, message))
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError:
        if is_notification:
            return LineProblem(None)
        if decoded.get("jsonrpc") == "2.0" and isinstance(decoded.get("method"), str) and "params" in decoded:
            message = "Invalid params: `params` must be an object."
            return LineProblem(_error(request_id, types.INVALID_PARAMS, message))
        message = 'Invalid Request: a request needs "jsonrpc": "2.0", a string "method" and a string or integer "id".'
        return LineProblem(_error(request_id, types.INVALID_REQUEST, message))
    return None


class _CheckedLines:
    """The stdin lines that are valid messages; every other line is answered through `reply` and skipped."""

    def __init__(self, source: AsyncIterator[str]) -> None:
        self._source = source
        self._ready = anyio.Event()
        self._reply: Callable[[SessionMessage], Awaitable[None]] | None = None

    def connect(self, reply: Callable[[SessionMessage], Awaitable[None]]) -> None:
        self._reply = reply
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self._source:
            if not line.strip():
                continue
            problem = check_line(line)
            if problem is None:
                yield line
                continue
            if problem.reply is not None:
                await self._ready.wait()
                assert self._reply is not None
                await self._reply(SessionMessage(problem.reply))


async def serve_stdio(server: Server[Any]) -> None:
    """Run `server` on this process's stdin/stdout until stdin closes."""
    from mcp.server.stdio import stdio_server

    text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    checked = _CheckedLines(aiter(anyio.wrap_file(text)))
    async with stdio_server(stdin=checked) as (read_stream, write_stream):  # type: ignore[arg-type]
        checked.connect(write_stream.send)
        await server.run(read_stream, write_stream, server.create_initialization_options())
