"""Contract: mapping and group tools against the sandbox through a real MCP client session."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from ..conftest import BUILDING_ID, SITE_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def new_mapping(mcp: Client, name: str = "QTO", **extra: object) -> dict[str, Any]:
    mapping: dict[str, Any] = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName=name, **extra))[
        "mapping"
    ]
    return mapping


async def test_create_get_list_update_delete_mapping(mcp: Client) -> None:
    mapping = await new_mapping(mcp, description="take-off")
    assert set(mapping) >= {
        "id",
        "mappingName",
        "description",
        "extractionEnabled",
        "createdOn",
        "createdBy",
        "modifiedOn",
        "modifiedBy",
        "_links",
    }
    assert mapping["extractionEnabled"] is True
    assert mapping["_links"]["imodel"]["href"].endswith(f"/imodels/{BUILDING_ID}")
    got = await ok(mcp, "get_mapping", imodelId=BUILDING_ID, mappingId=mapping["id"])
    assert got["mapping"]["mappingName"] == "QTO"
    listed = await ok(mcp, "list_mappings", imodelId=BUILDING_ID)
    assert [m["id"] for m in listed["mappings"]] == [mapping["id"]]
    assert listed["nextContinuationToken"] is None and "self" in listed["_links"]
    updated = await ok(mcp, "update_mapping", imodelId=BUILDING_ID, mappingId=mapping["id"], extractionEnabled=False)
    assert updated["mapping"]["extractionEnabled"] is False
    assert updated["mapping"]["mappingName"] == "QTO"
    deleted = await mcp.call_tool("delete_mapping", {"imodelId": BUILDING_ID, "mappingId": mapping["id"]})
    assert not deleted.is_error and deleted.structured_content is None
    await fails(mcp, "get_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=mapping["id"])


async def test_mapping_errors(mcp: Client) -> None:
    error = await fails(mcp, "get_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=UNKNOWN)
    assert "list_mappings" in error["nextStep"]
    await fails(mcp, "list_mappings", 404, "iModelNotFound", imodelId=UNKNOWN)
    bad = await fails(mcp, "create_mapping", None, "InvalidArguments", imodelId=BUILDING_ID, mappingName="1bad name")
    assert "mappingName" in bad["message"]
    await fails(mcp, "create_mapping", None, "InvalidArguments", imodelId=BUILDING_ID, mappingName="x" * 129)
    await fails(mcp, "update_mapping", None, "InvalidArguments", imodelId=BUILDING_ID, mappingId=UNKNOWN)
    await fails(mcp, "update_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=UNKNOWN, description="x")
    await fails(mcp, "delete_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=UNKNOWN)
    await fails(mcp, "list_mappings", None, "InvalidArguments", imodelId=BUILDING_ID, top=0)
    await fails(mcp, "list_mappings", None, "InvalidArguments", imodelId=BUILDING_ID, top=1001)
    unknown_arg = await fails(
        mcp, "get_mapping", None, "InvalidArguments", imodelId=BUILDING_ID, mappingId=UNKNOWN, mapingId="typo"
    )
    assert "mapingId" in unknown_arg["message"]


async def test_copy_mapping_deep_copies_groups_and_all_property_kinds(mcp: Client) -> None:
    mapping = await new_mapping(mcp)
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    group = (await ok(mcp, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))["group"]
    gids = {**ids, "groupId": group["id"]}
    await ok(
        mcp,
        "create_group_property",
        **gids,
        propertyName="Material",
        dataType="String",
        ecProperties=[
            {
                "ecSchemaName": "Building",
                "ecClassName": "Wall",
                "ecPropertyName": "Material",
                "ecPropertyType": "String",
            }
        ],
    )
    await ok(mcp, "create_calculated_property", **gids, propertyName="Vol", type="Volume")
    await ok(mcp, "create_custom_calculation", **gids, propertyName="VolX2", formula="Vol * 2")

    copy = (await ok(mcp, "copy_mapping", **ids, targetIModelId=SITE_ID))["mapping"]
    assert copy["mappingName"] == "QTO_Copy" and copy["id"] != mapping["id"]
    assert copy["_links"]["imodel"]["href"].endswith(SITE_ID)
    cids = {"imodelId": SITE_ID, "mappingId": copy["id"]}
    groups = (await ok(mcp, "list_groups", **cids))["groups"]
    assert [(g["groupName"], g["query"]) for g in groups] == [("Walls", "SELECT * FROM Building.Wall")]
    assert groups[0]["id"] != group["id"]
    cg = {**cids, "groupId": groups[0]["id"]}
    assert [p["propertyName"] for p in (await ok(mcp, "list_group_properties", **cg))["properties"]] == ["Material"]
    calc = (await ok(mcp, "list_calculated_properties", **cg))["properties"]
    assert [(p["propertyName"], p["type"], p["quantityType"]) for p in calc] == [("Vol", "Volume", "Volume")]
    assert calc[0]["_links"]["mapping"]["href"].endswith(copy["id"])
    custom = (await ok(mcp, "list_custom_calculations", **cg))["customCalculations"]
    assert [(c["propertyName"], c["formula"], c["dataType"]) for c in custom] == [("VolX2", "Vol * 2", "Double")]
    # The source is untouched.
    assert len((await ok(mcp, "list_groups", **ids))["groups"]) == 1


async def test_copy_mapping_errors(mcp: Client) -> None:
    long_name = "M" + "x" * 124
    mapping = await new_mapping(mcp, name=long_name)
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    error = await fails(mcp, "copy_mapping", 422, "InvalidInsightsRequest", **ids, targetIModelId=SITE_ID)
    assert error["target"] == "mappingName"
    named = await ok(mcp, "copy_mapping", **ids, targetIModelId=SITE_ID, mappingName="Short")
    assert named["mapping"]["mappingName"] == "Short"
    await fails(
        mcp, "copy_mapping", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=UNKNOWN, targetIModelId=SITE_ID
    )
    await fails(mcp, "copy_mapping", 404, "iModelNotFound", **ids, targetIModelId=UNKNOWN, mappingName="X")
    await fails(mcp, "copy_mapping", None, "InvalidArguments", **ids)


async def test_group_lifecycle(mcp: Client) -> None:
    mapping = await new_mapping(mcp)
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    group = (
        await ok(
            mcp, "create_group", **ids, groupName="Doors", query="SELECT * FROM Building.Door", description="all doors"
        )
    )["group"]
    assert set(group) == {"id", "groupName", "description", "query"}
    assert (await ok(mcp, "get_group", **ids, groupId=group["id"]))["group"] == group
    updated = (await ok(mcp, "update_group", **ids, groupId=group["id"], query="SELECT * FROM bis.Element"))["group"]
    assert updated["query"] == "SELECT * FROM bis.Element" and updated["groupName"] == "Doors"
    assert [g["id"] for g in (await ok(mcp, "list_groups", **ids))["groups"]] == [group["id"]]
    await ok(mcp, "delete_group", **ids, groupId=group["id"])
    assert (await ok(mcp, "list_groups", **ids))["groups"] == []


async def test_group_errors(mcp: Client) -> None:
    mapping = await new_mapping(mcp)
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    await fails(mcp, "get_group", 404, "GroupNotFound", **ids, groupId=UNKNOWN)
    await fails(mcp, "list_groups", 404, "MappingNotFound", imodelId=BUILDING_ID, mappingId=UNKNOWN)
    await fails(mcp, "create_group", None, "InvalidArguments", **ids, groupName="Walls", query="")
    await fails(mcp, "create_group", None, "InvalidArguments", **ids, query="SELECT 1")
    await fails(
        mcp,
        "create_group",
        404,
        "MappingNotFound",
        imodelId=BUILDING_ID,
        mappingId=UNKNOWN,
        groupName="G",
        query="SELECT * FROM bis.Element",
    )
    await fails(mcp, "update_group", None, "InvalidArguments", **ids, groupId=UNKNOWN)
    await fails(mcp, "update_group", 404, "GroupNotFound", **ids, groupId=UNKNOWN, description="x")
    await fails(mcp, "delete_group", 404, "GroupNotFound", **ids, groupId=UNKNOWN)


async def test_mapping_of_other_imodel_is_not_found(mcp: Client) -> None:
    mapping = await new_mapping(mcp)
    await fails(mcp, "get_mapping", 404, "MappingNotFound", imodelId=SITE_ID, mappingId=mapping["id"])
