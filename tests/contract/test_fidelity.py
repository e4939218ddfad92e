"""Issue 15: the sandbox and the tool layer agree with Bentley's documented Reporting v1 behaviour.

create-report goes to `POST /reports/`; 404 bodies carry the Swagger's code, wording and target; an unknown iModel is
named as such on every v1 route; list links read `.../collection/?$top=...`; `Prefer` is a tool input where Bentley's
client sends it; aggregations are marked preview; `ecInstanceIds` keep no format the API does not state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.sandbox.app import create_app
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.server.tools import build_request, tool_definition
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

RP = "/insights/reporting"
AUTH = {"Authorization": "Bearer any-token", "Accept": "application/vnd.bentley.itwin-platform.v1+json"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@asynccontextmanager
async def sandbox(db: str) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(db)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=AUTH) as http:
            yield http


@pytest.fixture
async def all_tools(sandbox_db: str) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, profile="all")
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


async def test_create_report_is_sent_with_the_documented_trailing_slash(sandbox_db: str) -> None:
    op = load_catalog()["create_report"]
    request = build_request(op, {"displayName": "R", "projectId": ITWIN_ID})
    assert (request.method, request.path) == ("POST", f"{RP}/reports/")
    async with sandbox(sandbox_db) as http:
        for path in (f"{RP}/reports/", f"{RP}/reports"):  # the sandbox keeps accepting both
            created = await http.post(path, json={"displayName": "R", "projectId": ITWIN_ID})
            assert created.status_code == 200, path
            assert created.json()["report"]["displayName"] == "R"


async def test_not_found_bodies_follow_the_swagger(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        mapping = (
            await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": "M"})
        ).json()
        base = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/{mapping['mapping']['id']}"
        group = (
            await http.post(f"{base}/groups", json={"groupName": "G", "query": "SELECT * FROM bis.Element"})
        ).json()
        expected = {
            f"{base}/groups/{UNKNOWN}": ("GroupNotFound", "Requested Group is not available.", "id"),
            f"{base}/groups/{group['group']['id']}/properties/{UNKNOWN}": (
                "GroupPropertyNotFound",
                "Requested GroupProperty is not available.",
                "id",
            ),
            f"{base}/groups/{group['group']['id']}/calculatedProperties/{UNKNOWN}": (
                "CalculatedPropertyNotFound",
                "Requested CalculatedProperty is not available.",
                "propertyId",
            ),
            f"{RP}/datasources/extraction/status/{UNKNOWN}": (
                "ExtractionStatusNotFound",
                "Requested ExtractionStatus is not available.",
                "id",
            ),
            f"{RP}/datasources/extraction/status/{UNKNOWN}/logs": (
                "ExtractionLogNotFound",
                "Requested Extraction Log is not available.",
                "jobId",
            ),
            f"{RP}/reports/{UNKNOWN}": ("ReportNotFound", "Requested Report is not available.", "id"),
        }
        for url, (code, message, target) in expected.items():
            reply = await http.get(url)
            assert reply.status_code == 404, url
            assert reply.json() == {"error": {"code": code, "message": message, "target": target}}, url


async def test_an_unknown_imodel_is_named_on_every_v1_route_and_listed_in_the_catalog(sandbox_db: str) -> None:
    catalog = load_catalog()
    async with sandbox(sandbox_db) as http:
        base = f"{RP}/datasources/imodels/{UNKNOWN}"
        for url in (f"{base}/mappings", f"{base}/mappings/{UNKNOWN}", f"{base}/mappings/{UNKNOWN}/groups/{UNKNOWN}"):
            reply = await http.get(url)
            assert reply.status_code == 404 and reply.json()["error"]["code"] == "iModelNotFound", url
        deprecated = await http.get(f"{base}/extraction/status/{UNKNOWN}")
        assert deprecated.json()["error"]["code"] == "iModelNotFound"
    for op in catalog:
        if op.family.name == "reporting-v1" and op.parameter("imodelId") is not None:
            assert "iModelNotFound" in op.error_codes, op.tool


async def test_v1_list_links_use_the_documented_slash_form(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        mappings = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings"
        for name in ("A", "B"):
            assert (await http.post(mappings, json={"mappingName": name})).status_code == 200
        page = (await http.get(mappings, params={"$top": 1})).json()
        assert page["_links"]["self"]["href"] == f"http://sandbox.test{mappings}/?$top=1"
        assert page["_links"]["next"]["href"].startswith(f"http://sandbox.test{mappings}/?$top=1&$continuationToken=")
        second = await http.get(page["_links"]["next"]["href"])
        assert second.status_code == 200 and len(second.json()["mappings"]) == 1

        run = (await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/extraction/run")).json()["run"]
        status = f"{RP}/datasources/extraction/status/{run['id']}"
        for _ in range(400):
            if (await http.get(status)).json()["status"]["state"] not in ("Queued", "Running"):
                break
            await asyncio.sleep(0.05)
        logs = (await http.get(f"{status}/logs", params={"$top": 1})).json()
        assert logs["_links"]["next"]["href"].startswith(
            f"http://sandbox.test{status}/logs/?$top=1&$continuationToken="
        )


async def test_prefer_is_a_tool_input_where_bentley_documents_it(all_tools: Client) -> None:
    mapping = (await ok(all_tools, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="Walls"))["mapping"]
    await ok(
        all_tools,
        "gm_create_group",
        mappingId=mapping["id"],
        groupName="W",
        query="SELECT * FROM bis.Element",
        metadata=[{"key": "discipline", "value": "arch"}],
    )
    minimal = (await ok(all_tools, "gm_list_groups", mappingId=mapping["id"]))["groups"]
    full = (await ok(all_tools, "gm_list_groups", mappingId=mapping["id"], Prefer="return=representation"))["groups"]
    assert "metadata" not in minimal[0]
    assert full[0]["metadata"] == [{"key": "discipline", "value": "arch"}]

    lean: list[dict[str, Any]] = (await ok(all_tools, "list_imodels", iTwinId=ITWIN_ID))["iModels"]
    rich = (await ok(all_tools, "list_imodels", iTwinId=ITWIN_ID, Prefer="return=representation"))["iModels"]
    assert set(lean[0]) == {"id", "displayName"}
    assert set(rich[0]) > set(lean[0])
    bad = await fails(all_tools, "gm_list_groups", None, "InvalidArguments", mappingId=mapping["id"], Prefer="all")
    assert "Prefer" in bad["message"]


def test_aggregations_are_technical_preview_in_their_tool_descriptions() -> None:
    ops = [
        op
        for op in load_catalog()
        if op.family.name == "reporting-v1" and "aggregation" in op.operation_id.replace("-", "")
    ]
    assert len(ops) == 19
    for op in ops:
        assert op.preview and (tool_definition(op).description or "").startswith("Preview: "), op.tool


async def test_ecinstanceids_keep_no_format_in_the_tool_but_the_sandbox_still_refuses_non_hex(mcp: Client) -> None:
    schema = load_catalog()["run_extraction"].input_schema["properties"]["ecInstanceIds"]["items"]
    assert "pattern" not in schema and "x-sandbox-pattern" not in schema
    refused = await fails(
        mcp, "run_extraction", 422, "InvalidInsightsRequest", imodelId=BUILDING_ID, ecInstanceIds=["42"]
    )
    assert "ecInstanceIds" in refused["message"] or refused.get("target", "").startswith("ecInstanceIds")
