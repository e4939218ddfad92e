"""A real MCP `Client` on a sandbox-backed server, in process, callable from synchronous code.

Hypothesis drives synchronous test functions, so the async client lives in an anyio blocking portal (an event loop
on a helper thread) and each call is sent through it with a deadline. Whatever goes wrong in a call comes back as a
description instead of an exception, so one run can list every distinct failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Tool

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

__all__ = ["McpSession"]


class McpSession:
    """`with McpSession(settings) as mcp: mcp.call(tool, arguments)`; `mcp.tools` maps names to definitions."""

    def __init__(self, settings: Settings, *, call_timeout: float = 30.0) -> None:
        self.settings = settings
        self.call_timeout = call_timeout
        self.tools: dict[str, Tool] = {}
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._client_cm: AbstractContextManager[Client] | None = None
        self._portal: BlockingPortal | None = None
        self._client: Client | None = None

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Client]:
        async with (
            open_client(self.settings) as api,
            Client(build_server(self.settings, api), raise_exceptions=True) as client,
        ):
            yield client

    def __enter__(self) -> McpSession:
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._client_cm = self._portal.wrap_async_context_manager(self._open())
        self._client = self._client_cm.__enter__()
        listed = self._portal.call(self._client.list_tools)
        self.tools = {t.name: t for t in listed.tools}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if self._client_cm is not None:
                self._client_cm.__exit__(kind, exc, tb)
        finally:
            if self._portal_cm is not None:
                self._portal_cm.__exit__(kind, exc, tb)

    async def _call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        assert self._client is not None
        with anyio.fail_after(self.call_timeout):
            return await self._client.call_tool(name, arguments)

    def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult | str:
        """The tool's result, or why there is none (timeout, protocol error, exception that escaped)."""
        assert self._portal is not None
        try:
            result: CallToolResult = self._portal.call(self._call, name, arguments)
            return result
        except TimeoutError:
            return f"no reply within {self.call_timeout:.0f}s"
        except MCPError as exc:
            return f"protocol error {exc.error.code}: {exc.error.message[:200]}"
        except Exception as exc:
            return f"exception escaped: {type(exc).__name__}: {str(exc)[:200]}"
