"""Contract: group properties, calculated properties and custom calculations."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from ..conftest import BUILDING_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"
WALL_MATERIAL = [
    {"ecSchemaName": "Building", "ecClassName": "Wall", "ecPropertyName": "Material", "ecPropertyType": "String"}
]


@pytest.fixture
async def group_ids(mcp: Client) -> dict[str, Any]:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Props"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    group = (await ok(mcp, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))["group"]
    return {**ids, "groupId": group["id"]}


async def test_group_property_lifecycle(mcp: Client, group_ids: dict[str, Any]) -> None:
    prop = (
        await ok(
            mcp,
            "create_group_property",
            **group_ids,
            propertyName="Material",
            dataType="String",
            ecProperties=WALL_MATERIAL,
        )
    )["property"]
    assert prop["quantityType"] == "Undefined" and prop["ecProperties"] == WALL_MATERIAL
    assert set(prop) == {"id", "propertyName", "dataType", "quantityType", "ecProperties"}
    pid = {**group_ids, "propertyId": prop["id"]}
    assert (await ok(mcp, "get_group_property", **pid))["property"] == prop
    replaced = (
        await ok(
            mcp,
            "update_group_property",
            **pid,
            propertyName="Thick",
            dataType="Double",
            quantityType="Distance",
            ecProperties=[{**WALL_MATERIAL[0], "ecPropertyName": "Thickness", "ecPropertyType": "Double"}],
        )
    )["property"]
    assert (replaced["propertyName"], replaced["dataType"], replaced["quantityType"]) == ("Thick", "Double", "Distance")
    assert [p["id"] for p in (await ok(mcp, "list_group_properties", **group_ids))["properties"]] == [prop["id"]]
    await ok(mcp, "delete_group_property", **pid)
    await fails(mcp, "get_group_property", 404, "GroupPropertyNotFound", **pid)


async def test_group_property_errors(mcp: Client, group_ids: dict[str, Any]) -> None:
    await ok(
        mcp,
        "create_group_property",
        **group_ids,
        propertyName="Material",
        dataType="String",
        ecProperties=WALL_MATERIAL,
    )
    conflict = await fails(
        mcp,
        "create_group_property",
        409,
        "GroupPropertyExists",
        **group_ids,
        propertyName="material",
        dataType="String",
        ecProperties=WALL_MATERIAL,
    )
    assert conflict["target"] == "propertyName"
    await fails(
        mcp,
        "create_group_property",
        None,
        "InvalidArguments",
        **group_ids,
        propertyName="X",
        dataType="Undefined",
        ecProperties=WALL_MATERIAL,
    )
    await fails(
        mcp,
        "create_group_property",
        None,
        "InvalidArguments",
        **group_ids,
        propertyName="X",
        dataType="String",
        ecProperties=[],
    )
    await fails(
        mcp, "update_group_property", None, "InvalidArguments", **group_ids, propertyId=UNKNOWN, propertyName="X"
    )
    await fails(
        mcp,
        "update_group_property",
        404,
        "GroupPropertyNotFound",
        **group_ids,
        propertyId=UNKNOWN,
        propertyName="X",
        dataType="String",
        ecProperties=WALL_MATERIAL,
    )
    await fails(mcp, "delete_group_property", 404, "GroupPropertyNotFound", **group_ids, propertyId=UNKNOWN)
    await fails(mcp, "list_group_properties", 404, "GroupNotFound", **{**group_ids, "groupId": UNKNOWN})


async def test_calculated_property_lifecycle_and_errors(mcp: Client, group_ids: dict[str, Any]) -> None:
    prop = (await ok(mcp, "create_calculated_property", **group_ids, propertyName="Len", type="Length"))["property"]
    assert (prop["type"], prop["quantityType"]) == ("Length", "Distance")
    assert set(prop["_links"]) == {"imodel", "mapping", "group"}
    assert prop["_links"]["group"]["href"].endswith(f"/groups/{group_ids['groupId']}")
    pid = {**group_ids, "propertyId": prop["id"]}
    assert (await ok(mcp, "get_calculated_property", **pid))["property"]["propertyName"] == "Len"
    area = (await ok(mcp, "update_calculated_property", **pid, type="Area"))["property"]
    assert (area["type"], area["quantityType"], area["propertyName"]) == ("Area", "Area", "Len")
    listed = (await ok(mcp, "list_calculated_properties", **group_ids))["properties"]
    assert [p["id"] for p in listed] == [prop["id"]]
    # Group-property and calculated-property lists do not mix.
    assert (await ok(mcp, "list_group_properties", **group_ids))["properties"] == []
    await fails(
        mcp,
        "create_calculated_property",
        409,
        "CalculatedPropertyExists",
        **group_ids,
        propertyName="LEN",
        type="Volume",
    )
    await fails(
        mcp, "create_calculated_property", None, "InvalidArguments", **group_ids, propertyName="V", type="Weight"
    )
    await fails(
        mcp,
        "update_calculated_property",
        404,
        "CalculatedPropertyNotFound",
        **group_ids,
        propertyId=UNKNOWN,
        type="Volume",
    )
    await fails(mcp, "get_calculated_property", 404, "CalculatedPropertyNotFound", **group_ids, propertyId=UNKNOWN)
    await fails(mcp, "list_calculated_properties", 404, "GroupNotFound", **{**group_ids, "groupId": UNKNOWN})
    await ok(mcp, "delete_calculated_property", **pid)
    await fails(mcp, "delete_calculated_property", 404, "CalculatedPropertyNotFound", **pid)


async def test_custom_calculation_lifecycle(mcp: Client, group_ids: dict[str, Any]) -> None:
    await ok(mcp, "create_calculated_property", **group_ids, propertyName="Vol", type="Volume")
    calc = (
        await ok(
            mcp,
            "create_custom_calculation",
            **group_ids,
            propertyName="Cost",
            formula="Vol * 120.5",
            quantityType="Monetary",
        )
    )["customCalculation"]
    assert (calc["dataType"], calc["quantityType"], calc["formula"]) == ("Double", "Monetary", "Vol * 120.5")
    cid = {**group_ids, "customCalculationId": calc["id"]}
    assert (await ok(mcp, "get_custom_calculation", **cid))["customCalculation"]["propertyName"] == "Cost"
    text = (await ok(mcp, "update_custom_calculation", **cid, formula="tostring(Vol) + ' m3'"))["customCalculation"]
    assert text["dataType"] == "String"
    listed = (await ok(mcp, "list_custom_calculations", **group_ids))["customCalculations"]
    assert [c["id"] for c in listed] == [calc["id"]]
    await ok(mcp, "delete_custom_calculation", **cid)
    await fails(mcp, "get_custom_calculation", 404, "CustomCalculationNotFound", **cid)


async def test_custom_calculation_errors(mcp: Client, group_ids: dict[str, Any]) -> None:
    bad = await fails(
        mcp,
        "create_custom_calculation",
        422,
        "InvalidInsightsRequest",
        **group_ids,
        propertyName="Bad",
        formula="Lenght * 2",
    )
    assert bad["target"] == "formula" and "Lenght" in bad["message"]
    await fails(
        mcp,
        "create_custom_calculation",
        422,
        "InvalidInsightsRequest",
        **group_ids,
        propertyName="Syntax",
        formula="(1 + ",
    )
    await fails(
        mcp,
        "create_custom_calculation",
        422,
        "InvalidInsightsRequest",
        **group_ids,
        propertyName="Self",
        formula="Self + 1",
    )
    first = (await ok(mcp, "create_custom_calculation", **group_ids, propertyName="A", formula="1"))[
        "customCalculation"
    ]
    await ok(mcp, "create_custom_calculation", **group_ids, propertyName="B", formula="A + 1")
    cycle = await fails(
        mcp,
        "update_custom_calculation",
        422,
        "InvalidInsightsRequest",
        **group_ids,
        customCalculationId=first["id"],
        formula="B + 1",
    )
    assert cycle["target"] == "formula"
    # The failed update changed nothing.
    again = await ok(mcp, "get_custom_calculation", **group_ids, customCalculationId=first["id"])
    assert again["customCalculation"]["formula"] == "1"
    await fails(
        mcp, "create_custom_calculation", 409, "CustomCalculationExists", **group_ids, propertyName="a", formula="2"
    )
    await fails(mcp, "create_custom_calculation", None, "InvalidArguments", **group_ids, propertyName="C", formula="")
    await fails(
        mcp,
        "update_custom_calculation",
        404,
        "CustomCalculationNotFound",
        **group_ids,
        customCalculationId=UNKNOWN,
        formula="1",
    )
    await fails(
        mcp, "delete_custom_calculation", 404, "CustomCalculationNotFound", **group_ids, customCalculationId=UNKNOWN
    )
    await fails(mcp, "list_custom_calculations", 404, "MappingNotFound", **{**group_ids, "mappingId": UNKNOWN})
