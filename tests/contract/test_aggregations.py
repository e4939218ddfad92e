"""Contract: aggregation table sets, tables and properties."""

from __future__ import annotations

import pytest
from mcp import Client

from ..conftest import BUILDING_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def test_table_set_table_property_lifecycle(mcp: Client) -> None:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="M"))["mapping"]
    ts = (
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="Totals",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
            description="sums",
        )
    )["aggregationTableSet"]
    assert set(ts) >= {
        "id",
        "tableSetName",
        "description",
        "datasourceType",
        "createdOn",
        "createdBy",
        "modifiedOn",
        "modifiedBy",
        "_links",
    }
    assert ts["_links"]["datasource"]["href"].endswith(f"/mappings/{mapping['id']}")
    sid = {"aggregationTableSetId": ts["id"]}
    assert (await ok(mcp, "get_aggregation_table_set", **sid))["aggregationTableSet"]["tableSetName"] == "Totals"
    renamed = (await ok(mcp, "update_aggregation_table_set", **sid, tableSetName="Sums"))["aggregationTableSet"]
    assert renamed["tableSetName"] == "Sums"
    sets = (await ok(mcp, "list_aggregation_table_sets", datasourceId=mapping["id"], datasourceType="IModelMapping"))[
        "aggregationTableSets"
    ]
    assert [s["id"] for s in sets] == [ts["id"]]

    table = (await ok(mcp, "create_aggregation_table", **sid, tableName="ByMaterial", sourceTableName="Walls"))[
        "aggregationTable"
    ]
    assert table["sourceTableName"] == "Walls" and set(table["_links"]) == {"datasource", "aggregationTableSet"}
    tid = {**sid, "aggregationTableId": table["id"]}
    assert (await ok(mcp, "get_aggregation_table", **tid))["aggregationTable"]["tableName"] == "ByMaterial"
    assert (await ok(mcp, "update_aggregation_table", **tid, description="x"))["aggregationTable"]["description"] == "x"
    assert len((await ok(mcp, "list_aggregation_tables", **sid))["aggregationTables"]) == 1
    await fails(
        mcp,
        "create_aggregation_table",
        409,
        "AggregationTableExists",
        **sid,
        tableName="bymaterial",
        sourceTableName="Walls",
    )

    prop = (
        await ok(
            mcp,
            "create_aggregation_property",
            **tid,
            propertyName="Material",
            sourcePropertyName="Material",
            type="GroupBy",
        )
    )["aggregationProperty"]
    assert set(prop["_links"]) == {"datasource", "aggregationTableSet", "aggregationTable"}
    pid = {**tid, "aggregationPropertyId": prop["id"]}
    assert (await ok(mcp, "get_aggregation_property", **pid))["aggregationProperty"]["type"] == "GroupBy"
    assert (await ok(mcp, "update_aggregation_property", **pid, type="Count"))["aggregationProperty"]["type"] == "Count"
    assert len((await ok(mcp, "list_aggregation_properties", **tid))["aggregationProperties"]) == 1
    await ok(mcp, "delete_aggregation_property", **pid)
    await ok(mcp, "delete_aggregation_table", **tid)
    await ok(mcp, "delete_aggregation_table_set", **sid)
    await fails(mcp, "get_aggregation_table_set", 404, "AggregationTableSetNotFound", **sid)


async def test_aggregation_errors(mcp: Client) -> None:
    await fails(
        mcp,
        "create_aggregation_table_set",
        404,
        "MappingNotFound",
        tableSetName="T",
        datasourceId=UNKNOWN,
        datasourceType="IModelMapping",
    )
    await fails(
        mcp,
        "create_aggregation_table_set",
        None,
        "InvalidArguments",
        tableSetName="T",
        datasourceId=UNKNOWN,
        datasourceType="Report",
    )
    await fails(mcp, "list_aggregation_table_sets", None, "InvalidArguments", datasourceId=UNKNOWN)
    await fails(mcp, "get_aggregation_table_set", 404, "AggregationTableSetNotFound", aggregationTableSetId=UNKNOWN)
    await fails(
        mcp,
        "update_aggregation_table_set",
        404,
        "AggregationTableSetNotFound",
        aggregationTableSetId=UNKNOWN,
        description="x",
    )
    await fails(mcp, "delete_aggregation_table_set", 404, "AggregationTableSetNotFound", aggregationTableSetId=UNKNOWN)
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="M"))["mapping"]
    ts = (
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="T",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
        )
    )["aggregationTableSet"]
    sid = {"aggregationTableSetId": ts["id"]}
    await fails(mcp, "list_aggregation_tables", 404, "AggregationTableSetNotFound", aggregationTableSetId=UNKNOWN)
    await fails(mcp, "get_aggregation_table", 404, "AggregationTableNotFound", **sid, aggregationTableId=UNKNOWN)
    await fails(
        mcp,
        "update_aggregation_table",
        404,
        "AggregationTableNotFound",
        **sid,
        aggregationTableId=UNKNOWN,
        tableName="X",
    )
    await fails(mcp, "delete_aggregation_table", 404, "AggregationTableNotFound", **sid, aggregationTableId=UNKNOWN)
    await fails(mcp, "create_aggregation_table", None, "InvalidArguments", **sid, tableName="X")
    table = (await ok(mcp, "create_aggregation_table", **sid, tableName="X", sourceTableName="G"))["aggregationTable"]
    tid = {**sid, "aggregationTableId": table["id"]}
    await fails(mcp, "list_aggregation_properties", 404, "AggregationTableNotFound", **sid, aggregationTableId=UNKNOWN)
    await fails(
        mcp, "get_aggregation_property", 404, "AggregationPropertyNotFound", **tid, aggregationPropertyId=UNKNOWN
    )
    await fails(
        mcp,
        "update_aggregation_property",
        404,
        "AggregationPropertyNotFound",
        **tid,
        aggregationPropertyId=UNKNOWN,
        type="Sum",
    )
    await fails(
        mcp, "delete_aggregation_property", 404, "AggregationPropertyNotFound", **tid, aggregationPropertyId=UNKNOWN
    )
    await fails(
        mcp,
        "create_aggregation_property",
        None,
        "InvalidArguments",
        **tid,
        propertyName="P",
        sourcePropertyName="S",
        type="Average",
    )
    await ok(mcp, "create_aggregation_property", **tid, propertyName="P", sourcePropertyName="S", type="Sum")
    await fails(
        mcp,
        "create_aggregation_property",
        409,
        "AggregationPropertyExists",
        **tid,
        propertyName="p",
        sourcePropertyName="S",
        type="Sum",
    )
