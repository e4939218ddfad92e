"""Every tool is driven by this suite on its happy path and on at least one error path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID
from .helpers import fails, ok, wait_for_state

pytestmark = pytest.mark.anyio

SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py"))


def called(helper: str) -> set[str]:
    return set(re.findall(rf'{helper}\(\s*\w+,\s*"([a-z0-9_]+)"', SOURCES))


@pytest.mark.parametrize("tool", sorted(op.tool for op in load_catalog()))
def test_tool_has_a_happy_and_an_error_path(tool: str) -> None:
    happy = called("ok") | set(re.findall(r'call_tool\(\s*"([a-z0-9_]+)"', SOURCES))
    assert tool in happy, f"no contract test calls {tool} successfully"
    assert tool in called("fails"), f"no contract test drives {tool} into an error"


@pytest.fixture
async def with_deprecated(sandbox_db: str) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, include_deprecated=True)
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


async def test_deprecated_status_tool_when_enabled(with_deprecated: Client, mcp: Client) -> None:
    run = (await ok(with_deprecated, "run_extraction", imodelId=BUILDING_ID))["run"]
    await wait_for_state(with_deprecated, run["id"])
    status = await ok(with_deprecated, "get_imodel_extraction_status", imodelId=BUILDING_ID, jobId=run["id"])
    assert status["status"]["state"] == "Succeeded"
    await fails(
        with_deprecated,
        "get_imodel_extraction_status",
        404,
        "ExtractionStatusNotFound",
        imodelId=BUILDING_ID,
        jobId="00000000-0000-4000-8000-000000000000",
    )
    refused = await fails(
        mcp, "get_imodel_extraction_status", None, "ToolNotAvailable", imodelId=BUILDING_ID, jobId=run["id"]
    )
    assert "deprecated" in refused["message"]
