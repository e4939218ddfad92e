"""Contract: Grouping & Mapping tools against the sandbox, sharing one store with Reporting v1."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, SITE_ID
from .helpers import fails, ok, text_of

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def every(sandbox_db: str) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, profile="all")
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


async def test_gm_mapping_group_property_lifecycle(every: Client) -> None:
    mcp = every
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="GM"))["mapping"]
    assert mapping["extractionEnabled"] is False and mapping["_links"]["iModel"]["href"].endswith(BUILDING_ID)
    mid = {"mappingId": mapping["id"]}
    assert (await ok(mcp, "gm_get_mapping", **mid))["mapping"]["mappingName"] == "GM"
    assert [m["id"] for m in (await ok(mcp, "gm_list_mappings", iModelId=BUILDING_ID))["mappings"]] == [mapping["id"]]
    # The same mapping is visible through Reporting v1.
    v1 = await ok(mcp, "get_mapping", imodelId=BUILDING_ID, mappingId=mapping["id"])
    assert v1["mapping"]["mappingName"] == "GM"
    renamed = (await ok(mcp, "gm_update_mapping", **mid, description="shared"))["mapping"]
    assert renamed["description"] == "shared"

    group = (
        await ok(
            mcp,
            "gm_create_group",
            **mid,
            groupName="Walls",
            query="SELECT * FROM Building.Wall",
            metadata=[{"key": "discipline", "value": "architecture"}],
        )
    )["group"]
    assert group["metadata"] == [{"key": "discipline", "value": "architecture"}]
    gid = {**mid, "groupId": group["id"]}
    minimal = (await ok(mcp, "gm_list_groups", **mid))["groups"][0]
    assert "metadata" not in minimal or minimal["metadata"] is None
    assert (await ok(mcp, "gm_get_group", **gid))["group"]["query"] == "SELECT * FROM Building.Wall"
    assert (await ok(mcp, "gm_update_group", **gid, description="d"))["group"]["description"] == "d"

    material = (
        await ok(
            mcp,
            "gm_create_property",
            **gid,
            propertyName="Material",
            dataType="String",
            ecProperties=[{"ecSchemaName": "Building", "ecClassName": "Wall", "ecPropertyName": "Material"}],
        )
    )["property"]
    volume = (
        await ok(
            mcp, "gm_create_property", **gid, propertyName="Volume", dataType="Double", calculatedPropertyType="Volume"
        )
    )["property"]
    cost = (await ok(mcp, "gm_create_property", **gid, propertyName="Cost", dataType="Double", formula="Volume * 100"))[
        "property"
    ]
    placeholder = (await ok(mcp, "gm_create_property", **gid, propertyName="Notes", dataType="String"))["property"]
    assert volume["calculatedPropertyType"] == "Volume" and cost["formula"] == "Volume * 100"
    assert set(material["_links"]) == {"iModel", "mapping", "group"}
    assert len((await ok(mcp, "gm_list_properties", **gid))["properties"]) == 4
    # Reporting v1 sees each by its value source.
    v1ids = {"imodelId": BUILDING_ID, **gid}
    assert [p["propertyName"] for p in (await ok(mcp, "list_group_properties", **v1ids))["properties"]] == [
        "Material",
        "Notes",
    ]
    assert [p["propertyName"] for p in (await ok(mcp, "list_calculated_properties", **v1ids))["properties"]] == [
        "Volume"
    ]
    assert [c["propertyName"] for c in (await ok(mcp, "list_custom_calculations", **v1ids))["customCalculations"]] == [
        "Cost"
    ]
    pid = {**gid, "propertyId": placeholder["id"]}
    assert (await ok(mcp, "gm_get_property", **pid))["property"]["propertyName"] == "Notes"
    replaced = (
        await ok(
            mcp,
            "gm_update_property",
            **pid,
            propertyName="Notes",
            dataType="String",
            ecProperties=[{"ecSchemaName": "*", "ecClassName": "*", "ecPropertyName": "UserLabel"}],
        )
    )["property"]
    assert replaced["ecProperties"][0]["ecPropertyName"] == "UserLabel"
    await ok(mcp, "gm_delete_property", **pid)
    await ok(mcp, "gm_delete_group", **gid)
    await ok(mcp, "gm_delete_mapping", **mid)
    await fails(mcp, "get_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=mapping["id"])


async def test_gm_errors(every: Client) -> None:
    mcp = every
    await fails(mcp, "gm_get_mapping", 404, "MappingNotFound", mappingId=UNKNOWN)
    await fails(mcp, "gm_update_mapping", 404, "MappingNotFound", mappingId=UNKNOWN, description="x")
    await fails(mcp, "gm_delete_mapping", 404, "MappingNotFound", mappingId=UNKNOWN)
    await fails(mcp, "gm_list_mappings", 404, "iModelNotFound", iModelId=UNKNOWN)
    await fails(mcp, "gm_create_mapping", None, "InvalidArguments", iModelId=BUILDING_ID, mappingName="bad name")
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="E"))["mapping"]
    mid = {"mappingId": mapping["id"]}
    await fails(mcp, "gm_list_groups", 404, "MappingNotFound", mappingId=UNKNOWN)
    await fails(mcp, "gm_get_group", 404, "GroupNotFound", **mid, groupId=UNKNOWN)
    await fails(mcp, "gm_update_group", 404, "GroupNotFound", **mid, groupId=UNKNOWN, description="x")
    await fails(mcp, "gm_delete_group", 404, "GroupNotFound", **mid, groupId=UNKNOWN)
    await fails(
        mcp,
        "gm_create_group",
        422,
        "InvalidInsightsRequest",
        **mid,
        groupName="G",
        query="SELECT 1",
        metadata=[{"key": "a"}, {"key": "a"}],
    )
    group = (await ok(mcp, "gm_create_group", **mid, groupName="G", query="SELECT * FROM bis.Element"))["group"]
    gid = {**mid, "groupId": group["id"]}
    await fails(mcp, "gm_list_properties", 404, "GroupNotFound", **mid, groupId=UNKNOWN)
    await fails(mcp, "gm_get_property", 404, "PropertyNotFound", **gid, propertyId=UNKNOWN)
    await fails(
        mcp,
        "gm_update_property",
        404,
        "PropertyNotFound",
        **gid,
        propertyId=UNKNOWN,
        propertyName="X",
        dataType="String",
    )
    await fails(mcp, "gm_delete_property", 404, "PropertyNotFound", **gid, propertyId=UNKNOWN)
    await ok(mcp, "gm_create_property", **gid, propertyName="A", dataType="Double", formula="1 + 1")
    await fails(mcp, "gm_create_property", 409, "PropertyExists", **gid, propertyName="a", dataType="String")
    bad = await fails(
        mcp,
        "gm_create_property",
        422,
        "InvalidInsightsRequest",
        **gid,
        propertyName="B",
        dataType="Double",
        formula="Nope * 2",
    )
    assert bad["target"] == "formula"
    await fails(mcp, "gm_create_property", None, "InvalidArguments", **gid, propertyName="C", dataType="Number")


async def test_gm_copy_on_create(every: Client) -> None:
    mcp = every
    source = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="Src"))["mapping"]
    group = (
        await ok(mcp, "gm_create_group", mappingId=source["id"], groupName="Doors", query="SELECT * FROM Building.Door")
    )["group"]
    await ok(
        mcp,
        "gm_create_property",
        mappingId=source["id"],
        groupId=group["id"],
        propertyName="Len",
        dataType="Double",
        calculatedPropertyType="Length",
    )
    copy = (await ok(mcp, "gm_create_mapping", iModelId=SITE_ID, mappingName="Copy", sourceMappingId=source["id"]))[
        "mapping"
    ]
    groups = (await ok(mcp, "gm_list_groups", mappingId=copy["id"]))["groups"]
    assert [g["groupName"] for g in groups] == ["Doors"]
    props = (await ok(mcp, "gm_list_properties", mappingId=copy["id"], groupId=groups[0]["id"]))["properties"]
    assert [(p["propertyName"], p["calculatedPropertyType"]) for p in props] == [("Len", "Length")]
    copied_group = (
        await ok(
            mcp,
            "gm_create_group",
            mappingId=copy["id"],
            groupName="Doors2",
            query="SELECT * FROM Building.Door WHERE Width > 1",
            source={"mappingId": source["id"], "groupId": group["id"]},
        )
    )["group"]
    props = (await ok(mcp, "gm_list_properties", mappingId=copy["id"], groupId=copied_group["id"]))["properties"]
    assert [p["propertyName"] for p in props] == ["Len"]


async def test_gm_extraction_cdm_and_audit(every: Client) -> None:
    mcp = every
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="Cdm"))["mapping"]
    mid = {"mappingId": mapping["id"]}
    group = (await ok(mcp, "gm_create_group", **mid, groupName="Beams", query="SELECT * FROM Building.Beam"))["group"]
    await ok(
        mcp,
        "gm_create_property",
        **mid,
        groupId=group["id"],
        propertyName="Len",
        dataType="Double",
        calculatedPropertyType="Length",
    )
    bad = (await ok(mcp, "gm_create_group", **mid, groupName="Bad", query="SELECT * FROM Building.Nope"))["group"]
    extraction = (await ok(mcp, "gm_run_extraction", iModelId=BUILDING_ID, mappings=[{"id": mapping["id"]}]))[
        "extraction"
    ]
    assert extraction["state"] == "Queued" and extraction["_links"]["status"]["href"].endswith(extraction["id"])
    done = await ok(mcp, "wait_for_extraction", jobId=extraction["id"])
    assert done["state"] == "Succeeded"
    status = (await ok(mcp, "gm_get_extraction_status", extractionId=extraction["id"]))["extraction"]
    assert status["state"] == "PartiallySucceeded"  # the Bad group failed to translate
    logs = (await ok(mcp, "gm_list_extraction_logs", extractionId=extraction["id"]))["logs"]
    assert any(e["category"] == "QueryTranslation" and "Nope" in e["message"] for e in logs)
    assert set(logs[0]) == {"state", "dateTime", "contextType", "contextId", "level", "category", "message"}
    history = (await ok(mcp, "gm_list_imodel_extractions", iModelId=BUILDING_ID))["extractions"]
    assert extraction["id"] in [h["id"] for h in history]
    runs = (await ok(mcp, "gm_list_mapping_extractions", **mid))["extractions"]
    assert [r["extractionId"] for r in runs] == [extraction["id"]] and runs[0]["changesetIndex"] == 5

    cdm = await ok(mcp, "gm_get_cdm", **mid, extractionId=extraction["id"])
    assert cdm["name"] == "Insights_and_Reporting_Extractor"
    beams = next(e for e in cdm["entities"] if e["name"] == "Beams")
    assert [a["name"] for a in beams["attributes"]][-1] == "Len" and beams["attributes"][-1]["dataType"] == "double"
    assert [e["name"] for e in cdm["entities"]] == ["Beams"]  # the failed group publishes nothing
    partition = await mcp.call_tool(
        "gm_get_cdm_partition",
        {**mid, "extractionId": extraction["id"], "location": beams["partitions"][0]["location"]},
    )
    assert not partition.is_error
    rows = list(csv.reader(io.StringIO(text_of(partition))))
    assert len(rows) == 300 and len(rows[0]) == len(beams["attributes"])

    await fails(mcp, "gm_get_cdm", 404, "ExtractionNotFound", **mid, extractionId=UNKNOWN)
    await fails(
        mcp,
        "gm_get_cdm_partition",
        404,
        "PartitionNotFound",
        **mid,
        extractionId=extraction["id"],
        location="Nothing/part00000.csv",
    )
    await fails(mcp, "gm_get_extraction_status", 404, "ExtractionNotFound", extractionId=UNKNOWN)
    await fails(mcp, "gm_list_extraction_logs", 404, "ExtractionNotFound", extractionId=UNKNOWN)
    await fails(mcp, "gm_list_mapping_extractions", 404, "MappingNotFound", mappingId=UNKNOWN)
    await fails(mcp, "gm_list_imodel_extractions", 404, "iModelNotFound", iModelId=UNKNOWN)
    await fails(mcp, "gm_run_extraction", 404, "MappingNotFound", iModelId=BUILDING_ID, mappings=[{"id": UNKNOWN}])
    await fails(mcp, "gm_run_extraction", 422, "InvalidInsightsRequest", iModelId=BUILDING_ID, changesetId="abc")

    await ok(mcp, "gm_delete_group", **mid, groupId=bad["id"])
    trail = (await ok(mcp, "gm_list_audit_trail", iModelId=BUILDING_ID, path=f"mappings/{mapping['id']}"))[
        "auditTrailEntries"
    ]
    actions = [(e["action"], e["path"].count("/")) for e in trail]
    assert ("Create", 1) in actions and ("Create", 3) in actions and ("Delete", 3) in actions
    assert all(e["userEmail"] == "sandbox.user@example.com" for e in trail)
    created = next(e for e in trail if e["action"] == "Create" and e["path"].count("/") == 1)
    assert {"property": "mappingName", "oldValue": None, "newValue": "Cdm"} in created["changes"]
    await fails(mcp, "gm_list_audit_trail", 404, "iModelNotFound", iModelId=UNKNOWN)
