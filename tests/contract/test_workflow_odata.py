"""The golden path through MCP tools only, with computed values checked against the iModel data itself.

mapping -> groups -> properties of all three kinds -> extraction -> report -> mapping and aggregation linked ->
service document, $metadata and every page of every table.
"""

from __future__ import annotations

import math
import sqlite3
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok, wait_for_state

pytestmark = pytest.mark.anyio

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
PAGE = 100


@pytest.fixture
async def small_pages(sandbox_db: str) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, sandbox_odata_page_size=PAGE, max_rows=PAGE)
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


def walls_from_imodel(db: str) -> list[dict[str, Any]]:
    """The expected rows, read straight from the element table."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT id, json_extract(props, '$.Material'), json_extract(props, '$.Thickness'), volume, "
        "bbox_low_x, bbox_low_y, bbox_low_z, bbox_high_x, bbox_high_y, bbox_high_z "
        "FROM im_elements WHERE imodel_id = ? AND class_id = 257 ORDER BY id",
        (BUILDING_ID,),
    ).fetchall()
    conn.close()
    return [
        {
            "id": hex(r[0]),
            "Material": r[1],
            "Thickness": r[2],
            "Volume": r[3],
            "Longest": max(abs(r[7] - r[4]), abs(r[8] - r[5]), abs(r[9] - r[6])),
        }
        for r in rows
    ]


async def read_all_pages(client: Client, report_id: str, url: str) -> list[dict[str, Any]]:
    region, manifest, entity = url.split("/")
    rows: list[dict[str, Any]] = []
    sequence = 0
    while True:
        page = await ok(
            client,
            "get_odata_entity_page",
            reportId=report_id,
            region=region,
            manifestId=manifest,
            entityType=entity,
            sequence=sequence,
        )
        rows += page["value"]
        if "@odata.nextLink" not in page:
            return rows
        assert page["@odata.nextLink"].endswith(f"/{entity}?sequence={sequence + 1}")
        sequence += 1


async def test_golden_path_with_computed_values(small_pages: Client, sandbox_db: str) -> None:
    mcp = small_pages
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="QTO"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    walls = (await ok(mcp, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))["group"]
    gids = {**ids, "groupId": walls["id"]}
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
    await ok(
        mcp,
        "create_group_property",
        **gids,
        propertyName="Thickness",
        dataType="Double",
        quantityType="Distance",
        ecProperties=[
            {
                "ecSchemaName": "Building",
                "ecClassName": "Wall",
                "ecPropertyName": "Thickness",
                "ecPropertyType": "Double",
            }
        ],
    )
    await ok(mcp, "create_calculated_property", **gids, propertyName="Volume", type="Volume")
    await ok(mcp, "create_calculated_property", **gids, propertyName="Longest", type="BoundingBoxLongestEdgeLength")
    await ok(
        mcp, "create_custom_calculation", **gids, propertyName="Cost", formula="Volume * 150", quantityType="Monetary"
    )
    await ok(mcp, "create_group", **ids, groupName="Doors", query="SELECT * FROM Building.Door")

    run = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID))["run"]
    status = await wait_for_state(mcp, run["id"])
    assert (status["state"], status["containsIssues"]) == ("Succeeded", False)

    table_set = (
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="Totals",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
        )
    )["aggregationTableSet"]
    table = (
        await ok(
            mcp,
            "create_aggregation_table",
            aggregationTableSetId=table_set["id"],
            tableName="WallsByMaterial",
            sourceTableName="Walls",
        )
    )["aggregationTable"]
    tid = {"aggregationTableSetId": table_set["id"], "aggregationTableId": table["id"]}
    await ok(
        mcp,
        "create_aggregation_property",
        **tid,
        propertyName="Material",
        sourcePropertyName="Material",
        type="GroupBy",
    )
    await ok(
        mcp, "create_aggregation_property", **tid, propertyName="Walls", sourcePropertyName="ECInstanceId", type="Count"
    )
    await ok(
        mcp, "create_aggregation_property", **tid, propertyName="TotalVolume", sourcePropertyName="Volume", type="Sum"
    )

    report = (await ok(mcp, "create_report", projectId=ITWIN_ID, displayName="Quantities"))["report"]
    await ok(mcp, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)
    await ok(mcp, "create_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"])

    service = await ok(mcp, "get_odata_service", reportId=report["id"])
    assert service["@odata.context"].endswith(f"/insights/reporting/odata/{report['id']}/$metadata")
    sets = {item["name"]: item["url"] for item in service["value"]}
    assert set(sets) == {"QTO_Walls", "QTO_Doors", "Totals_WallsByMaterial"}
    assert all(len(url.split("/")) == 3 for url in sets.values())

    metadata = await mcp.call_tool("get_odata_metadata", {"reportId": report["id"]})
    assert not metadata.is_error
    root = ET.fromstring(metadata.content[0].text)  # type: ignore[union-attr]
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    wall_columns = [(p.get("Name"), p.get("Type")) for p in types["QTO_Walls"].iter(f"{EDM}Property")]
    assert wall_columns == [
        ("ECInstanceId", "Edm.String"),
        ("ECClassId", "Edm.String"),
        ("UserLabel", "Edm.String"),
        ("BBoxLow", "Edm.String"),
        ("BBoxHigh", "Edm.String"),
        ("Material", "Edm.String"),
        ("Thickness", "Edm.Double"),
        ("Volume", "Edm.Double"),
        ("Longest", "Edm.Double"),
        ("Cost", "Edm.Double"),
    ]
    annotations = {s.get("Name"): s.find(f"{EDM}Annotation") for s in root.iter(f"{EDM}EntitySet")}
    display = {name: None if note is None else note.get("String") for name, note in annotations.items()}
    assert display["QTO_Walls"] == "Walls" and display["Totals_WallsByMaterial"] == "WallsByMaterial"

    expected = walls_from_imodel(sandbox_db)
    rows = await read_all_pages(mcp, report["id"], sets["QTO_Walls"])
    assert len(rows) == len(expected) == 840  # more than one page of PAGE rows
    by_id = {r["ECInstanceId"]: r for r in rows}
    assert set(by_id) == {e["id"] for e in expected}
    for wall in expected:
        row = by_id[wall["id"]]
        assert row["ECClassId"] == "Building.Wall"
        assert row["Material"] == wall["Material"]
        assert math.isclose(row["Thickness"], wall["Thickness"])
        assert math.isclose(row["Volume"], wall["Volume"])
        assert math.isclose(row["Longest"], wall["Longest"])
        assert math.isclose(row["Cost"], wall["Volume"] * 150)
        assert row["BBoxLow"].startswith('{"x":')

    doors = await read_all_pages(mcp, report["id"], sets["QTO_Doors"])
    assert len(doors) == 300

    totals = await read_all_pages(mcp, report["id"], sets["Totals_WallsByMaterial"])
    want_count: dict[str, int] = defaultdict(int)
    want_volume: dict[str, float] = defaultdict(float)
    for wall in expected:
        want_count[wall["Material"]] += 1
        want_volume[wall["Material"]] += wall["Volume"]
    assert {t["Material"]: t["Walls"] for t in totals} == dict(want_count)
    for t in totals:
        assert math.isclose(t["TotalVolume"], want_volume[t["Material"]])

    await fails(
        mcp,
        "get_odata_entity_page",
        404,
        "EntityNotFound",
        reportId=report["id"],
        region="EUS",
        manifestId=run["id"],
        entityType="QTO_Nothing",
    )
    await fails(mcp, "get_odata_service", 404, "SchemaNotFound", reportId="00000000-0000-4000-8000-000000000000")
    await fails(mcp, "get_odata_metadata", 404, "SchemaNotFound", reportId="00000000-0000-4000-8000-000000000000")
