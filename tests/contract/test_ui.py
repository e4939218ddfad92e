"""The report view (MCP App): offered only to clients that declare the extension, in either protocol era; for the
others nothing changes. The view's resource, the tool links, the app-only page tool and its rules."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.client import advertise
from mcp.types import TextResourceContents

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.server.results import error_payload
from itwin_insights_mcp.server.ui import APP_MIME_TYPE, EXTENSION_ID, PAGE_TOOL, VIEW_TOOLS, VIEW_URI
from itwin_insights_mcp.settings import Settings

from .helpers import ok, text_of
from .ui_takeoff import publish_takeoff

pytestmark = pytest.mark.anyio

MODES = ["legacy", "2026-07-28"]  # initialize-era capabilities, and the per-request form
APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
PAGE = 4


def _settings(sandbox_db: str, **changes: Any) -> Settings:
    return Settings(backend="sandbox", sandbox_db=sandbox_db, sandbox_odata_page_size=PAGE, **changes)


@asynccontextmanager
async def _client(settings: Settings, mode: str, apps: bool) -> AsyncIterator[Client]:
    async with open_client(settings) as api:
        server = build_server(settings, api)
        async with Client(server, mode=mode, extensions=[APPS] if apps else None) as client:
            yield client


def _ui(tool: Any) -> dict[str, Any] | None:
    return (tool.meta or {}).get("ui")


@pytest.mark.parametrize("mode", MODES)
async def test_without_the_extension_nothing_changes(sandbox_db: str, mode: str) -> None:
    async with _client(_settings(sandbox_db), mode, apps=False) as client:
        tools = (await client.list_tools()).tools
        assert all(_ui(t) is None for t in tools)
        assert PAGE_TOOL not in {t.name for t in tools}
        assert not [r for r in (await client.list_resources()).resources if str(r.uri).startswith("ui://")]
        pages = await publish_takeoff(client)
        refused = await client.call_tool(PAGE_TOOL, pages["Walls"])
        assert refused.is_error and error_payload(refused)["code"] == "ToolNotAvailable"
        assert "get_odata_entity_page" in text_of(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_declaring_the_extension_links_the_page_tool_and_lists_the_app_only_tool(
    sandbox_db: str, mode: str
) -> None:
    async with _client(_settings(sandbox_db), mode, apps=True) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert _ui(tools["get_odata_entity_page"]) == {"resourceUri": VIEW_URI}
        assert _ui(tools[PAGE_TOOL]) == {"resourceUri": VIEW_URI, "visibility": ["app"]}
        linked = {name for name, tool in tools.items() if _ui(tool) is not None}
        assert {"get_odata_entity_page", PAGE_TOOL} <= linked <= {*VIEW_TOOLS, PAGE_TOOL}
        hints = tools[PAGE_TOOL].annotations
        assert hints is not None and hints.read_only_hint is True
        listed = [r for r in (await client.list_resources()).resources if str(r.uri) == VIEW_URI]
        assert len(listed) == 1 and listed[0].mime_type == APP_MIME_TYPE


async def test_the_server_advertises_the_extension(sandbox_settings: Settings) -> None:
    """Sent in `server/discover` (2026-07-28); the SDK leaves it out of 2025-era `initialize` results."""
    async with open_client(sandbox_settings) as api:
        assert build_server(sandbox_settings, api).get_capabilities().extensions == {EXTENSION_ID: {}}
        compact = dataclasses.replace(sandbox_settings, mode="compact")
        assert not build_server(compact, api).get_capabilities().extensions


async def test_the_view_resource_is_one_self_contained_html_document(mcp: Client) -> None:
    read = await mcp.read_resource(VIEW_URI)
    (content,) = read.contents
    assert isinstance(content, TextResourceContents)
    assert str(content.uri) == VIEW_URI and content.mime_type == APP_MIME_TYPE
    assert content.meta == {"ui": {"csp": {"connectDomains": [], "resourceDomains": []}, "prefersBorder": True}}
    html = content.text
    assert html.lstrip().lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"<(script|img|iframe)\b[^>]*\bsrc\s*=", html, re.I), "everything must be inlined"
    assert not re.search(r"<link\b", html, re.I) and "@import" not in html
    assert "ui/initialize" in html  # the ext-apps App bridge is inside


@pytest.mark.parametrize("mode", MODES)
async def test_the_text_content_stays_complete_for_hosts_that_see_only_text(sandbox_db: str, mode: str) -> None:
    texts = []
    for apps in (False, True):
        async with _client(_settings(sandbox_db, max_rows=PAGE), mode, apps) as client:
            pages = await publish_takeoff(client)
            result = await client.call_tool("get_odata_entity_page", pages["Walls"])
            assert not result.is_error
            rows = result.structured_content["value"]
            text = text_of(result)
            texts.append(text.replace(pages["Walls"]["reportId"], "R").replace(pages["Walls"]["manifestId"], "M"))
            assert rows and all(str(row["ECInstanceId"]) in text for row in rows)
    assert texts[0] == texts[1]  # the same full text whether or not a view will render it


@pytest.mark.parametrize("mode", MODES)
async def test_the_app_only_tool_pages_with_column_types_and_units(sandbox_db: str, mode: str) -> None:
    async with _client(_settings(sandbox_db), mode, apps=True) as client:
        pages = await publish_takeoff(client)
        first = await ok(client, PAGE_TOOL, **pages["Walls"])
        columns = {c["name"]: c for c in first["columns"]}
        assert columns["Volume"]["type"] == "Edm.Double" and columns["Volume"]["unit"] == "m³"
        assert columns["Area"]["unit"] == "m²" and columns["Material"]["type"] == "Edm.String"
        assert columns["Material"]["unit"] == ""
        assert first["entitySet"] == "QuantityTakeoff_Walls" and first["sequence"] == 0 and first["hasNext"] is True
        assert first["feedUrl"].endswith(f"/insights/reporting/odata/{pages['Walls']['reportId']}")
        assert len(first["rows"]) == PAGE
        model = await ok(client, "get_odata_entity_page", **pages["Walls"], sequence=1)
        second = await ok(client, PAGE_TOOL, **pages["Walls"], sequence=1)
        assert second["rows"] == model["value"] and second["sequence"] == 1
        assert {r["ECInstanceId"] for r in second["rows"]}.isdisjoint(r["ECInstanceId"] for r in first["rows"])
        bad = await client.call_tool(PAGE_TOOL, {**pages["Walls"], "sequence": -1, "extra": 1})
        assert bad.is_error and error_payload(bad)["code"] == "InvalidArguments"


async def test_the_app_only_tool_follows_the_toolset_and_read_only_rules(sandbox_db: str) -> None:
    async with _client(_settings(sandbox_db, read_only=True), "legacy", apps=True) as client:
        assert PAGE_TOOL in {t.name for t in (await client.list_tools()).tools}  # a read: kept under read-only
    async with _client(_settings(sandbox_db, toolsets=("reports",)), "legacy", apps=True) as client:
        tools = (await client.list_tools()).tools
        assert PAGE_TOOL not in {t.name for t in tools}
        refused = await client.call_tool(
            PAGE_TOOL, {"reportId": "r", "region": "a", "manifestId": "b", "entityType": "c"}
        )
        assert refused.is_error and "tool selection" in text_of(refused)


async def test_compact_mode_offers_no_view(sandbox_db: str) -> None:
    async with _client(_settings(sandbox_db, mode="compact"), "legacy", apps=True) as client:
        tools = (await client.list_tools()).tools
        assert all(_ui(t) is None for t in tools) and PAGE_TOOL not in {t.name for t in tools}
        refused = await client.call_tool(
            PAGE_TOOL, {"reportId": "r", "region": "a", "manifestId": "b", "entityType": "c"}
        )
        assert refused.is_error


def test_a_local_tool_opts_into_the_view_with_opens_view() -> None:
    """The hook for tools built elsewhere (e.g. an iModel query tool): `opens_view=True` links it, for apps only."""
    from itwin_insights_mcp.api.catalog import load_catalog
    from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
    from itwin_insights_mcp.server.tools import ToolSurface
    from itwin_insights_mcp.server.ui import tools_for_client

    base = next(t for t in LOCAL_TOOLS if t.tool == "read_skill")
    query = dataclasses.replace(
        base, tool="query_rows", definition=base.definition.model_copy(update={"name": "query_rows"}), opens_view=True
    )
    surface = ToolSurface(load_catalog(), local_tools=[base, query])
    linked = {t.name: (t.meta or {}).get("ui") for t in tools_for_client(surface, surface.tools, wants_view=True)}
    assert linked["query_rows"] == {"resourceUri": VIEW_URI} and linked["read_skill"] is None
    plain = tools_for_client(surface, surface.tools, wants_view=False)
    assert plain == surface.tools and all(t.meta is None or "ui" not in t.meta for t in plain)


async def test_the_app_only_tool_turns_api_errors_and_bad_ids_into_results(sandbox_db: str) -> None:
    async with _client(_settings(sandbox_db), "2026-07-28", apps=True) as client:
        pages = await publish_takeoff(client)
        missing = await client.call_tool(PAGE_TOOL, {**pages["Walls"], "entityType": "NoSuchTable"})
        assert missing.is_error and error_payload(missing)["status"] == 404
        dots = await client.call_tool(PAGE_TOOL, {**pages["Walls"], "reportId": ".."})
        assert dots.is_error and error_payload(dots)["code"] == "InvalidArguments"
