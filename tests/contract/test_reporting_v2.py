"""Contract: Reporting v2 (reports by iTwinId, report mappings by mappingId) and API keys, on the shared store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def every(sandbox_db: str) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, profile="all")
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def test_v2_reports_are_the_v1_reports(every: Client) -> None:
    mcp = every
    report = (await ok(mcp, "v2_create_report", iTwinId=ITWIN_ID, displayName="V2"))["report"]
    assert report["_links"]["iTwin"]["href"].endswith(f"/itwins/{ITWIN_ID}")
    assert report["_links"]["odata"]["href"].endswith(f"/odata/{report['id']}?api-version=v2")
    assert (await ok(mcp, "get_report", reportId=report["id"]))["report"]["displayName"] == "V2"
    assert [r["id"] for r in (await ok(mcp, "v2_list_reports", iTwinId=ITWIN_ID))["reports"]] == [report["id"]]
    assert [r["id"] for r in (await ok(mcp, "list_reports", projectId=ITWIN_ID))["reports"]] == [report["id"]]
    assert (await ok(mcp, "v2_get_report", reportId=report["id"]))["report"]["deleted"] is False
    assert (await ok(mcp, "v2_update_report", reportId=report["id"], description="x"))["report"]["description"] == "x"
    await ok(mcp, "v2_delete_report", reportId=report["id"])
    assert (await ok(mcp, "v2_list_reports", iTwinId=ITWIN_ID, deleted=True))["reports"][0]["deleted"] is True
    await fails(mcp, "v2_get_report", 404, "ReportNotFound", reportId=UNKNOWN)
    await fails(mcp, "v2_update_report", 404, "ReportNotFound", reportId=UNKNOWN, description="x")
    await fails(mcp, "v2_delete_report", 404, "ReportNotFound", reportId=UNKNOWN)
    await fails(mcp, "v2_list_reports", None, "InvalidArguments")
    await fails(mcp, "v2_create_report", None, "InvalidArguments", displayName="No iTwin")


async def test_v2_report_mappings_take_a_gm_mapping_without_imodel(every: Client) -> None:
    mcp = every
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="Linked"))["mapping"]
    report = (await ok(mcp, "v2_create_report", iTwinId=ITWIN_ID, displayName="R"))["report"]
    link = (await ok(mcp, "v2_create_report_mapping", reportId=report["id"], mappingId=mapping["id"]))["mapping"]
    assert (link["mappingId"], link["imodelId"]) == (mapping["id"], BUILDING_ID)
    assert [m["mappingId"] for m in (await ok(mcp, "v2_list_report_mappings", reportId=report["id"]))["mappings"]] == [
        mapping["id"]
    ]
    assert (await ok(mcp, "list_report_mappings", reportId=report["id"]))["mappings"][0]["imodelId"] == BUILDING_ID
    await fails(
        mcp, "v2_create_report_mapping", 409, "ReportMappingExists", reportId=report["id"], mappingId=mapping["id"]
    )
    await fails(mcp, "v2_create_report_mapping", 404, "MappingNotFound", reportId=report["id"], mappingId=UNKNOWN)
    await ok(mcp, "v2_delete_report_mapping", reportId=report["id"], mappingId=mapping["id"])
    await fails(
        mcp, "v2_delete_report_mapping", 404, "ReportMappingNotFound", reportId=report["id"], mappingId=mapping["id"]
    )
    await fails(mcp, "v2_list_report_mappings", 404, "ReportNotFound", reportId=UNKNOWN)


async def test_v2_odata(every: Client) -> None:
    mcp = every
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="Feed"))["mapping"]
    await ok(mcp, "gm_create_group", mappingId=mapping["id"], groupName="Slabs", query="SELECT * FROM Building.Slab")
    run = (await ok(mcp, "gm_run_extraction", iModelId=BUILDING_ID, mappings=[{"id": mapping["id"]}]))["extraction"]
    await ok(mcp, "wait_for_extraction", jobId=run["id"])
    report = (await ok(mcp, "v2_create_report", iTwinId=ITWIN_ID, displayName="Feed"))["report"]
    await ok(mcp, "v2_create_report_mapping", reportId=report["id"], mappingId=mapping["id"])
    service = await ok(mcp, "v2_get_odata_service", reportId=report["id"])
    url = {v["name"]: v["url"] for v in service["value"]}["Feed_Slabs"]
    metadata = await mcp.call_tool("v2_get_odata_metadata", {"reportId": report["id"]})
    assert not metadata.is_error and "Feed_Slabs" in metadata.content[0].text  # type: ignore[union-attr]
    region, manifest, entity = url.split("/")
    page = await ok(
        mcp, "v2_get_odata_entity_page", reportId=report["id"], region=region, manifestId=manifest, entityType=entity
    )
    assert page["rowsInPage"] == 120
    await fails(mcp, "v2_get_odata_service", 404, "SchemaNotFound", reportId=UNKNOWN)
    await fails(mcp, "v2_get_odata_metadata", 404, "SchemaNotFound", reportId=UNKNOWN)
    await fails(
        mcp,
        "v2_get_odata_entity_page",
        404,
        "EntityNotFound",
        reportId=report["id"],
        region=region,
        manifestId=manifest,
        entityType="Nope",
    )


async def test_api_keys(every: Client) -> None:
    mcp = every
    report = (await ok(mcp, "v2_create_report", iTwinId=ITWIN_ID, displayName="Keyed"))["report"]
    key = (await ok(mcp, "create_api_key", displayName="Power BI", reportId=report["id"], expiresAt=in_days(30)))["key"]
    assert key["apiKey"].startswith("ak_") and key["userEmail"] == "sandbox.user@example.com"
    assert key["_links"]["report"]["href"].endswith(report["id"])
    got = (await ok(mcp, "get_api_key", apiKeyId=key["id"]))["key"]
    assert "apiKey" not in got or got["apiKey"] is None  # the secret is shown once, at creation
    listed = (await ok(mcp, "list_api_keys", reportId=report["id"]))["keys"]
    assert [k["id"] for k in listed] == [key["id"]] and all(k.get("apiKey") is None for k in listed)
    renamed = (await ok(mcp, "update_api_key", apiKeyId=key["id"], displayName="Excel"))["key"]
    assert renamed["displayName"] == "Excel"
    await ok(mcp, "revoke_api_key", apiKeyId=key["id"])
    await fails(mcp, "get_api_key", 404, "ApiKeyNotFound", apiKeyId=key["id"])
    await fails(mcp, "update_api_key", 404, "ApiKeyNotFound", apiKeyId=key["id"], displayName="x")
    await fails(mcp, "revoke_api_key", 404, "ApiKeyNotFound", apiKeyId=key["id"])
    assert (await ok(mcp, "list_api_keys"))["keys"] == []
    too_long = await fails(
        mcp,
        "create_api_key",
        422,
        "InvalidInsightsRequest",
        displayName="K",
        reportId=report["id"],
        expiresAt=in_days(200),
    )
    assert too_long["target"] == "expiresAt"
    await fails(
        mcp,
        "create_api_key",
        422,
        "InvalidInsightsRequest",
        displayName="K",
        reportId=report["id"],
        expiresAt=in_days(-1),
    )
    await fails(mcp, "create_api_key", 404, "ReportNotFound", displayName="K", reportId=UNKNOWN, expiresAt=in_days(10))
    await fails(mcp, "list_api_keys", None, "InvalidArguments", top=0)


async def test_profiles_choose_coherent_surfaces(sandbox_db: str) -> None:
    for profile, present, absent in (
        (
            "reporting-v1",
            {"list_mappings", "create_report", "get_odata_service"},
            {"gm_list_mappings", "v2_get_report", "create_api_key"},
        ),
        (
            "current",
            {
                "gm_list_mappings",
                "gm_run_extraction",
                "create_report",
                "get_odata_service",
                "create_api_key",
                "wait_for_extraction",
                "list_itwins",
            },
            {"list_mappings", "run_extraction", "v2_get_report"},
        ),
        ("all", {"list_mappings", "gm_list_mappings", "v2_get_report", "create_api_key"}, set()),
    ):
        settings = Settings(backend="sandbox", sandbox_db=sandbox_db, profile=profile)  # type: ignore[arg-type]
        async with open_client(settings) as api, Client(build_server(settings, api)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
        assert present <= set(tools) and not absent & set(tools), profile
        for name, tool in tools.items():
            if name.startswith("gm_") or name.endswith("api_key") or name.endswith("api_keys"):
                assert (tool.description or "").startswith("Preview"), name
