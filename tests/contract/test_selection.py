"""Tool surface control: toolsets, single tools, exclusions, read-only and compact mode, each through a session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.errors import ConfigError
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import PROFILES, Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

CATALOG = load_catalog()


@asynccontextmanager
async def session(db: str, **options: Any) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=db, **options)
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


# Tools this server computes itself: (toolset, read-only). `core` tools are there whatever the toolsets.
LOCAL = {
    "wait_for_extraction": ("extraction", True),
    "export_odata_entity": ("odata", False),
    "read_skill": ("core", True),
    "auth_status": ("core", True),
    "query_imodel": ("imodel_query", True),
    "describe_imodel": ("imodel_query", True),
    "manage_exports": ("odata", False),
}
CORE = {name for name, (toolset, _) in LOCAL.items() if toolset == "core"}
DEFAULT_TOOLSETS = set(PROFILES["reporting-v1"] or ())
ALL = {op.tool for op in CATALOG.current() if op.toolset in DEFAULT_TOOLSETS} | set(LOCAL)


def of(toolset: str) -> set[str]:
    return {op.tool for op in CATALOG.current() if op.toolset == toolset} | {
        name for name, (ts, _) in LOCAL.items() if ts == toolset
    }


def reads(names: set[str]) -> set[str]:
    return {n for n in names if (LOCAL[n][1] if n in LOCAL else CATALOG[n].read_only)}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ALL),
        ({"toolsets": ("odata",)}, of("odata") | CORE),
        ({"toolsets": ("odata", "context")}, of("odata") | of("context") | CORE),
        ({"toolsets": ("all",)}, {op.tool for op in CATALOG.current()} | set(LOCAL)),  # every family
        ({"tools": ("get_report",)}, {"get_report"} | CORE),
        ({"toolsets": ("odata",), "tools": ("get_report",)}, of("odata") | {"get_report"} | CORE),
        ({"toolsets": ("reports",), "exclude_tools": ("delete_report",)}, of("reports") - {"delete_report"} | CORE),
        ({"tools": ("create_report",), "exclude_tools": ("create_report", "read_skill")}, {"auth_status"}),
        ({"read_only": True, "toolsets": ("reports",)}, reads(of("reports")) | CORE),
        ({"read_only": True, "tools": ("create_report", "get_report")}, {"get_report"} | CORE),  # read-only wins
        ({"read_only": True, "toolsets": ("odata",)}, reads(of("odata")) | CORE),  # export writes a file
        ({"tools": ("get_imodel_extraction_status",)}, {"get_imodel_extraction_status"} | CORE),
    ],
)
async def test_flag_combinations(sandbox_db: str, options: dict[str, Any], expected: set[str]) -> None:
    async with session(sandbox_db, **options) as client:
        assert await names(client) == expected


async def test_write_by_name_in_read_only_mode_is_refused_and_sends_nothing(sandbox_db: str) -> None:
    async with session(sandbox_db, read_only=True) as client:
        refused = await fails(client, "create_report", None, "ToolNotAvailable", projectId=ITWIN_ID, displayName="Nope")
        assert "read-only" in refused["message"]
        reports = await ok(client, "list_reports", projectId=ITWIN_ID)
        assert reports["reports"] == []
    async with session(sandbox_db, read_only=True, tools=("create_report",)) as client:  # nothing re-enables it
        await fails(client, "create_report", None, "ToolNotAvailable", projectId=ITWIN_ID, displayName="Nope")


async def test_tool_outside_the_toolsets_is_refused(sandbox_db: str) -> None:
    async with session(sandbox_db, toolsets=("odata",)) as client:
        refused = await fails(client, "list_reports", None, "ToolNotAvailable", projectId=ITWIN_ID)
        assert "toolset `reports`" in refused["message"]
    async with session(sandbox_db, exclude_tools=("delete_report",)) as client:
        refused = await fails(client, "delete_report", None, "ToolNotAvailable", reportId="x")
        assert "excluded" in refused["message"]


@pytest.mark.parametrize("options", [{"toolsets": ("nope",)}, {"tools": ("make_coffee",)}, {"exclude_tools": ("x",)}])
async def test_unknown_names_are_refused_at_start(sandbox_db: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="Unknown"):
        async with session(sandbox_db, **options):
            pass


async def test_compact_mode_searches_and_calls(sandbox_db: str) -> None:
    async with session(sandbox_db, mode="compact") as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["search_operations", "call_operation"]
        found = await ok(client, "search_operations", query="list the mappings of an iModel")
        assert found["operations"][0]["name"] == "list_mappings"
        assert found["operations"][0]["inputSchema"]["required"] == ["imodelId"]
        odata = await ok(client, "search_operations", query="read rows of the odata feed", toolset="odata")
        assert {o["name"] for o in odata["operations"]} <= of("odata")
        assert "get_odata_entity_page" in [o["name"] for o in odata["operations"][:2]]
        listed = await ok(client, "call_operation", name="list_imodels", arguments={"iTwinId": ITWIN_ID})
        assert {m["id"] for m in listed["iModels"]} >= {BUILDING_ID}
        bad = await fails(
            client,
            "call_operation",
            None,
            "InvalidArguments",
            name="create_mapping",
            arguments={"imodelId": BUILDING_ID},
        )
        assert "mappingName" in bad["message"]
        missing = await fails(
            client,
            "call_operation",
            404,
            "MappingNotFound",
            name="get_mapping",
            arguments={"imodelId": BUILDING_ID, "mappingId": "nope"},
        )
        assert "list_mappings" in missing["nextStep"]
        await fails(client, "call_operation", None, "ToolNotAvailable", name="brew_coffee", arguments={})
        await fails(client, "search_operations", None, "ToolNotAvailable", query="")
        await fails(client, "list_mappings", None, "ToolNotAvailable", imodelId=BUILDING_ID)


async def test_compact_mode_keeps_read_only_and_toolsets(sandbox_db: str) -> None:
    async with session(sandbox_db, mode="compact", read_only=True, toolsets=("reports", "context")) as client:
        call = next(t for t in (await client.list_tools()).tools if t.name == "call_operation")
        assert call.annotations is not None and call.annotations.read_only_hint is True
        found = await ok(client, "search_operations", query="create a report", limit=20)
        assert all(o["kind"] == "read" for o in found["operations"])
        refused = await fails(
            client,
            "call_operation",
            None,
            "ToolNotAvailable",
            name="create_report",
            arguments={"projectId": ITWIN_ID, "displayName": "x"},
        )
        assert "read-only" in refused["message"]
        outside = await fails(
            client,
            "call_operation",
            None,
            "ToolNotAvailable",
            name="list_mappings",
            arguments={"imodelId": BUILDING_ID},
        )
        assert "toolset" in outside["message"]
