"""Contract: extraction runs, status, logs and history."""

from __future__ import annotations

import pytest
from mcp import Client

from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok, wait_for_state

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def test_run_status_logs_history(mcp: Client) -> None:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Ex"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    await ok(mcp, "create_group", **ids, groupName="Doors", query="SELECT * FROM Building.Door")
    await ok(mcp, "create_group", **ids, groupName="Broken", query="SELECT * FROM Building.NoSuchClass")
    run = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID))["run"]
    assert run["_links"]["status"]["href"].endswith(f"/datasources/extraction/status/{run['id']}")
    await wait_for_state(mcp, run["id"])
    status = (await ok(mcp, "get_extraction_status", jobId=run["id"]))["status"]
    assert status["state"] == "Succeeded" and status["containsIssues"] is True
    assert status["reason"] == "Completed with issues; see the logs."
    assert status["_links"]["logs"]["href"].endswith(f"/status/{run['id']}/logs")

    logs = (await ok(mcp, "list_extraction_logs", jobId=run["id"]))["logs"]
    assert {
        "state",
        "reason",
        "dateTime",
        "jobId",
        "contextType",
        "contextId",
        "level",
        "category",
        "message",
        "containsIssues",
    } <= set(logs[0])
    translation = [entry for entry in logs if entry["category"] == "QueryTranslation"]
    assert len(translation) == 1 and "NoSuchClass" in translation[0]["message"]
    assert translation[0]["level"] == "Error"
    assert any("Doors: 300 rows" in (entry["message"] or "") for entry in logs)

    history = (await ok(mcp, "list_extraction_history", imodelId=BUILDING_ID))["extractions"]
    assert [h["jobId"] for h in history] == [run["id"]]
    assert set(history[0]["_links"]) == {"status", "logs"}


async def test_run_with_mappings_filter_includes_disabled_mapping(mcp: Client) -> None:
    enabled = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="On"))["mapping"]
    disabled = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Off", extractionEnabled=False))[
        "mapping"
    ]
    for mapping in (enabled, disabled):
        await ok(
            mcp,
            "create_group",
            imodelId=BUILDING_ID,
            mappingId=mapping["id"],
            groupName="Beams",
            query="SELECT * FROM Building.Beam",
        )
    everything = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID))["run"]
    await wait_for_state(mcp, everything["id"])
    messages = [e["message"] or "" for e in (await ok(mcp, "list_extraction_logs", jobId=everything["id"]))["logs"]]
    assert any("'On' extracted" in m for m in messages) and not any("'Off'" in m for m in messages)

    only = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID, mappings=[{"id": disabled["id"]}]))["run"]
    assert (await wait_for_state(mcp, only["id"]))["state"] == "Succeeded"
    messages = [e["message"] or "" for e in (await ok(mcp, "list_extraction_logs", jobId=only["id"]))["logs"]]
    assert any("'Off' extracted" in m for m in messages) and not any("'On'" in m for m in messages)


async def test_extraction_errors(mcp: Client) -> None:
    await fails(mcp, "run_extraction", 404, "iModelNotFound", imodelId=UNKNOWN)
    await fails(mcp, "run_extraction", 404, "MappingNotFound", imodelId=BUILDING_ID, mappings=[{"id": UNKNOWN}])
    await fails(mcp, "run_extraction", None, "InvalidArguments", imodelId=BUILDING_ID, ecInstanceIds=["12"])
    await fails(mcp, "get_extraction_status", 404, "ExtractionStatusNotFound", jobId=UNKNOWN)
    await fails(mcp, "list_extraction_logs", 404, "ExtractionLogNotFound", jobId=UNKNOWN)
    await fails(mcp, "list_extraction_history", 404, "iModelNotFound", imodelId=UNKNOWN)


async def test_no_mappings_logs_a_warning(mcp: Client) -> None:
    run = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID))["run"]
    status = await wait_for_state(mcp, run["id"])
    assert status["state"] == "Succeeded" and status["containsIssues"] is True
    logs = (await ok(mcp, "list_extraction_logs", jobId=run["id"]))["logs"]
    assert any("has 0 mappings" in (e["message"] or "") and e["level"] == "Warning" for e in logs)


@pytest.fixture
def sandbox_settings(sandbox_db: str) -> Settings:
    """Whole OData pages in tool results, so a test can see every row of a table."""
    return Settings(backend="sandbox", sandbox_db=sandbox_db, max_rows=1000, max_result_bytes=4_194_304)


async def test_run_for_some_instances_refreshes_them_and_keeps_the_rest(mcp: Client) -> None:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Partial"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    group = (await ok(mcp, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))["group"]
    gids = {**ids, "groupId": group["id"]}
    await ok(mcp, "create_calculated_property", **gids, propertyName="Volume", type="Volume")
    cost = (await ok(mcp, "create_custom_calculation", **gids, propertyName="Cost", formula="Volume * 100"))[
        "customCalculation"
    ]
    full = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID))["run"]
    await wait_for_state(mcp, full["id"])
    report = (await ok(mcp, "create_report", projectId=ITWIN_ID, displayName="Partial"))["report"]
    await ok(mcp, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)

    async def rows() -> dict[str, dict[str, float]]:
        service = await ok(mcp, "get_odata_service", reportId=report["id"])
        region, manifest, entity = service["value"][0]["url"].split("/")
        page = await ok(
            mcp, "get_odata_entity_page", reportId=report["id"], region=region, manifestId=manifest, entityType=entity
        )
        return {r["ECInstanceId"]: r for r in page["value"]}

    before = await rows()
    assert len(before) == 840
    chosen = sorted(before)[:2]
    await ok(mcp, "update_custom_calculation", **gids, customCalculationId=cost["id"], formula="Volume * 200")
    partial = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID, ecInstanceIds=chosen))["run"]
    assert (await wait_for_state(mcp, partial["id"]))["state"] == "Succeeded"
    after = await rows()
    assert set(after) == set(before)  # every row is still there, once
    for element, row in after.items():
        factor = 200 if element in chosen else 100
        assert row["Cost"] == pytest.approx(row["Volume"] * factor)
