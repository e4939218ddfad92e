"""The MCP `logging` capability: the server's own log records, sent to the client as `notifications/message`.

While a request runs, records of this package's loggers at or above the client's level go out on that request's
stream (request id, tool, upstream status, retries: what the stderr log says, already scrubbed of credentials by
`logs.RequestContextFilter`). The level is what the client set with `logging/setLevel` (2025-era, per MCP session;
stdio and stateless HTTP have one shared level) or what the request's `_meta` asks for (2026-07-28, the SDK filters).
Until a client sets one, only warnings and errors are sent.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from typing import Any

import anyio
import mcp.types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning

from ..logs import RequestContextFilter

__all__ = ["ClientLogHandler", "ClientLogLevels", "forwarding_logs", "session_key"]

PACKAGE_LOGGER = "itwin_insights_mcp"
DEFAULT_LEVEL: types.LoggingLevel = "warning"
_PYTHON_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO + 5,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL + 5,
    "emergency": logging.CRITICAL + 10,
}
_MAX_SESSIONS = 10_000
_QUEUE = 256  # records buffered per request; past that they are dropped rather than slowing the call


def _mcp_level(levelno: int) -> types.LoggingLevel:
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class ClientLogLevels:
    """The level each MCP session asked for with `logging/setLevel` (key None: stdio and stateless HTTP)."""

    def __init__(self) -> None:
        self._levels: dict[str | None, int] = {}

    def set(self, session: str | None, level: str) -> None:
        if len(self._levels) >= _MAX_SESSIONS and session not in self._levels:
            self._levels.clear()  # bounded: sessions that set a level and left are forgotten
        self._levels[session] = _PYTHON_LEVELS[level]

    def get(self, session: str | None) -> int:
        return self._levels.get(session, _PYTHON_LEVELS[DEFAULT_LEVEL])


_sink: ContextVar[tuple[MemoryObjectSendStream[logging.LogRecord], int] | None] = ContextVar(
    "client_log_sink", default=None
)


class ClientLogHandler(logging.Handler):
    """Hands each record of the running request to that request's sender (never blocks, never raises)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        target = _sink.get()
        if target is None or record.levelno < target[1]:
            return
        with suppress(anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            target[0].send_nowait(record)


_handler = ClientLogHandler()


def install() -> None:
    """Attach the handler to the package logger once, and let the logger pass DEBUG so a client may ask for it (the
    stderr handler keeps its own level, set by the CLI)."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
        logger.setLevel(logging.DEBUG)


def session_key(ctx: ServerRequestContext[Any]) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    return headers.get("mcp-session-id") if headers is not None else None


def _minimum(ctx: ServerRequestContext[Any], levels: ClientLogLevels) -> int:
    """The lowest level worth formatting for this request."""
    meta: Mapping[str, Any] = ctx.meta or {}
    requested = meta.get("io.modelcontextprotocol/logLevel")
    if isinstance(requested, str) and requested in _PYTHON_LEVELS:
        return _PYTHON_LEVELS[requested]
    return levels.get(session_key(ctx))


@asynccontextmanager
async def forwarding_logs(ctx: ServerRequestContext[Any], levels: ClientLogLevels) -> AsyncIterator[None]:
    """While the block runs, this request's log records go to its client; all are sent before the block ends."""
    install()
    sender, receiver = anyio.create_memory_object_stream[logging.LogRecord](_QUEUE)

    async def drain() -> None:
        async with receiver:
            async for record in receiver:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", MCPDeprecationWarning)
                        await ctx.session.send_log_message(
                            _mcp_level(record.levelno),
                            {"message": record.getMessage(), "requestId": getattr(record, "request_id", None)},
                            logger=record.name,
                            related_request_id=ctx.request_id,
                        )
                except Exception:  # noqa: S112 - a client that cannot take a log line must not fail the call
                    continue

    reset = _sink.set((sender, _minimum(ctx, levels)))
    async with anyio.create_task_group() as group:
        group.start_soon(drain)
        try:
            yield
        finally:
            _sink.reset(reset)
            sender.close()
