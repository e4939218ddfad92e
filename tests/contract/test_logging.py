"""The logging capability: logging/setLevel is honoured and the server's own log records reach the client as
notifications/message at or above the level it chose, never carrying a token."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import LoggingMessageNotificationParams

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import ITWIN_ID

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


async def test_set_level_debug_then_error_over_the_2025_handshake(sandbox_settings: Settings) -> None:
    received: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with open_client(sandbox_settings) as api:
        server = build_server(sandbox_settings, api)
        async with Client(server, mode="legacy", logging_callback=on_log) as client:
            assert client.server_capabilities is not None and client.server_capabilities.logging is not None
            await client.set_logging_level("debug")
            await client.call_tool("list_reports", {"projectId": ITWIN_ID})
            messages = [str(p.data) for p in received]
            assert any("tool list_reports" in m for m in messages), messages
            assert any("GET /insights/reporting/reports" in m and "-> 200" in m for m in messages), messages
            assert {p.level for p in received} >= {"debug", "info"}
            assert all(p.logger and p.logger.startswith("itwin_insights_mcp") for p in received)

            received.clear()
            await client.set_logging_level("error")
            failed = await client.call_tool("get_report", {"reportId": "00000000-0000-0000-0000-000000000000"})
            assert failed.is_error and received == []  # the warning about it is below "error"


async def test_default_level_sends_warnings_only(sandbox_settings: Settings) -> None:
    received: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with (
        open_client(sandbox_settings) as api,
        Client(build_server(sandbox_settings, api), mode="legacy", logging_callback=on_log) as client,
    ):
        await client.call_tool("list_reports", {"projectId": ITWIN_ID})
        assert received == []
        await client.call_tool("get_report", {"reportId": "00000000-0000-0000-0000-000000000000"})
        assert [p.level for p in received] == ["warning"] and "get_report failed" in str(received[0].data)


async def test_the_2026_per_request_log_level(sandbox_settings: Settings) -> None:
    received: list[Any] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        received.append(params)

    settings = sandbox_settings.with_overrides(access_token=None)
    async with (
        open_client(settings) as api,
        Client(build_server(settings, api), mode="auto", log_level="info", logging_callback=on_log) as client,
    ):
        await client.call_tool("list_reports", {"projectId": ITWIN_ID})
    assert any("tool list_reports" in str(p.data) for p in received)
    assert all(p.level != "debug" for p in received)
