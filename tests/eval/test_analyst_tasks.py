"""An evaluation set: questions an analyst asks, answered only through the tools, checked against the iModel data.

Each task follows what the tools and skills teach: find ids with the context tools, map with groups and
properties, run and wait for the extraction, publish a report, read the OData feed (export for whole tables,
aggregations for totals). The expected answers are computed straight from the sandbox's element tables.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ..contract.helpers import ok

pytestmark = pytest.mark.anyio

BUILDING = "Sample Office Building"
WALL, DOOR, WINDOW, SLAB, PIPE, SPACE = 0x101, 0x102, 0x103, 0x104, 0x141, 0x107


class Analyst:
    """The scripted agent: every step is a tool call, in the order the skills describe."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db
        self.counter = 0

    async def ids(self) -> tuple[str, str]:
        itwin = (await ok(self.client, "list_itwins", search="Sandbox"))["iTwins"][0]["id"]
        imodels = (await ok(self.client, "list_imodels", iTwinId=itwin))["iModels"]
        return itwin, next(i["id"] for i in imodels if i["displayName"] == BUILDING)

    async def table(
        self,
        query: str,
        columns: dict[str, Any],
        *,
        aggregate: list[tuple[str, str, str]] | None = None,
    ) -> list[dict[str, str]]:
        """Map one group with `columns`, extract, publish, and read back every row (or the aggregation)."""
        self.counter += 1
        itwin, imodel = await self.ids()
        ids = {"imodelId": imodel}
        mapping = (await ok(self.client, "create_mapping", **ids, mappingName=f"Task{self.counter}"))["mapping"]
        ids["mappingId"] = mapping["id"]
        group = (await ok(self.client, "create_group", **ids, groupName="G", query=query))["group"]
        gids = {**ids, "groupId": group["id"]}
        for name, spec in columns.items():
            if isinstance(spec, list):
                await ok(
                    self.client,
                    "create_group_property",
                    **gids,
                    propertyName=name,
                    dataType=spec[0]["ecPropertyType"],
                    ecProperties=spec,
                )
            elif spec in ("Length", "Area", "Volume") or spec.startswith("BoundingBox"):
                await ok(self.client, "create_calculated_property", **gids, propertyName=name, type=spec)
            else:
                await ok(self.client, "create_custom_calculation", **gids, propertyName=name, formula=spec)
        run = (await ok(self.client, "run_extraction", imodelId=imodel, mappings=[{"id": mapping["id"]}]))["run"]
        status = await ok(self.client, "wait_for_extraction", jobId=run["id"])
        assert status["state"] == "Succeeded" and not status["containsIssues"], status
        report = (await ok(self.client, "create_report", projectId=itwin, displayName=f"Task {self.counter}"))["report"]
        await ok(self.client, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=imodel)
        wanted = f"Task{self.counter}_G"
        if aggregate:
            table_set = (
                await ok(
                    self.client,
                    "create_aggregation_table_set",
                    tableSetName=f"Agg{self.counter}",
                    datasourceId=mapping["id"],
                    datasourceType="IModelMapping",
                )
            )["aggregationTableSet"]
            table = (
                await ok(
                    self.client,
                    "create_aggregation_table",
                    aggregationTableSetId=table_set["id"],
                    tableName="T",
                    sourceTableName="G",
                )
            )["aggregationTable"]
            for prop, source, kind in aggregate:
                await ok(
                    self.client,
                    "create_aggregation_property",
                    aggregationTableSetId=table_set["id"],
                    aggregationTableId=table["id"],
                    propertyName=prop,
                    sourcePropertyName=source,
                    type=kind,
                )
            await ok(
                self.client, "create_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"]
            )
            wanted = f"Agg{self.counter}_T"
        service = await ok(self.client, "get_odata_service", reportId=report["id"])
        url = next(v["url"] for v in service["value"] if v["name"] == wanted)
        region, manifest, entity = url.split("/")
        exported = await ok(
            self.client,
            "export_odata_entity",
            reportId=report["id"],
            region=region,
            manifestId=manifest,
            entityType=entity,
        )
        with Path(exported["path"]).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()

    def elements(self, class_id: int, *columns: str) -> list[tuple[Any, ...]]:
        imodel = self.sql("SELECT id FROM sandbox_imodels WHERE json_extract(data, '$.displayName') = ?", BUILDING)
        select = ", ".join(columns)
        return self.sql(
            f"SELECT {select} FROM im_elements WHERE imodel_id = ? AND class_id = ?", imodel[0][0], class_id
        )


def prop(schema: str, cls: str, name: str, kind: str) -> list[dict[str, str]]:
    return [{"ecSchemaName": schema, "ecClassName": cls, "ecPropertyName": name, "ecPropertyType": kind}]


@pytest.fixture
async def analyst(mcp: Client, sandbox_db: str) -> Analyst:
    return Analyst(mcp, sandbox_db)


@pytest.fixture
def sandbox_settings(sandbox_db: str, tmp_path: Path) -> Any:
    from itwin_insights_mcp.settings import Settings

    return Settings(backend="sandbox", sandbox_db=sandbox_db, export_dir=str(tmp_path / "exports"))


async def test_how_many_doors(analyst: Analyst) -> None:
    rows = await analyst.table("SELECT * FROM Building.Door", {})
    assert len(rows) == len(analyst.elements(DOOR, "id")) == 300


async def test_wall_volume_by_material(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Wall",
        {"Material": prop("Building", "Wall", "Material", "String"), "Volume": "Volume"},
        aggregate=[("Material", "Material", "GroupBy"), ("Volume", "Volume", "Sum")],
    )
    expected: dict[str, float] = defaultdict(float)
    for material, volume in analyst.elements(WALL, "json_extract(props, '$.Material')", "volume"):
        expected[material] += volume
    assert {r["Material"] for r in rows} == set(expected)
    for row in rows:
        assert math.isclose(float(row["Volume"]), expected[row["Material"]])


async def test_storey_with_most_windows(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Window",
        {"Level": prop("Building", "BuildingElement", "Level", "String")},
        aggregate=[("Level", "Level", "GroupBy"), ("Windows", "ECInstanceId", "Count")],
    )
    counts: dict[str, int] = defaultdict(int)
    for (level,) in analyst.elements(WINDOW, "json_extract(props, '$.Level')"):
        counts[level] += 1
    answer = max(rows, key=lambda r: int(r["Windows"]))
    assert int(answer["Windows"]) == max(counts.values())
    assert {r["Level"]: int(r["Windows"]) for r in rows} == dict(counts)


async def test_length_of_large_pipes(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Plumbing.Pipe WHERE Diameter > 0.1",
        {"Length": "Length"},
        aggregate=[("Total", "Length", "Sum"), ("Pipes", "ECInstanceId", "Count")],
    )
    pipes = [
        (d, length) for d, length in analyst.elements(PIPE, "json_extract(props, '$.Diameter')", "length") if d > 0.1
    ]
    assert int(rows[0]["Pipes"]) == len(pipes) > 0
    assert math.isclose(float(rows[0]["Total"]), sum(length for _, length in pipes))


async def test_fire_rated_doors(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Door WHERE FireRating IS NOT NULL",
        {"FireRating": prop("Building", "Door", "FireRating", "String")},
    )
    expected = [r for (r,) in analyst.elements(DOOR, "json_extract(props, '$.FireRating')") if r is not None]
    assert len(rows) == len(expected) > 0
    assert sorted(r["FireRating"] for r in rows) == sorted(expected)


async def test_wall_cost_from_the_cost_aspect(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Wall",
        {"Cost": prop("Building", "CostAspect", "Cost", "Double")},
        aggregate=[("Total", "Cost", "Sum"), ("Costed", "Cost", "Count")],
    )
    imodel = analyst.sql("SELECT id FROM sandbox_imodels WHERE json_extract(data, '$.displayName') = ?", BUILDING)[0][0]
    costs = analyst.sql(
        "SELECT json_extract(a.props, '$.Cost') FROM im_aspects a JOIN im_elements e ON e.imodel_id = a.imodel_id "
        "AND e.id = a.element_id WHERE a.imodel_id = ? AND e.class_id = ? AND a.class_id = 273",
        imodel,
        WALL,
    )
    assert int(rows[0]["Costed"]) == len(costs) > 0
    assert math.isclose(float(rows[0]["Total"]), sum(c for (c,) in costs))


async def test_elements_in_the_exterior_walls_category(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM bis.GeometricElement3d WHERE Category.CodeValue = 'Exterior Walls'",
        {"Category": prop("*", "*", "Category.CodeValue", "String")},
    )
    imodel = analyst.sql("SELECT id FROM sandbox_imodels WHERE json_extract(data, '$.displayName') = ?", BUILDING)[0][0]
    expected = analyst.sql(
        "SELECT COUNT(*) FROM im_elements e JOIN im_elements c ON c.imodel_id = e.imodel_id AND c.id = e.category_id "
        "WHERE e.imodel_id = ? AND c.code_value = 'Exterior Walls'",
        imodel,
    )[0][0]
    assert len(rows) == expected > 0
    assert {r["Category"] for r in rows} == {"Exterior Walls"}


async def test_imodels_and_latest_changeset(analyst: Analyst) -> None:
    itwin, building = await analyst.ids()
    imodels = (await ok(analyst.client, "list_imodels", iTwinId=itwin))["iModels"]
    assert {i["displayName"] for i in imodels} == {"Sample Office Building", "Sample Site Utilities"}
    latest = await ok(analyst.client, "list_changesets", iModelId=building, orderBy="index desc", top=1)
    stored = analyst.sql("SELECT json_extract(data, '$.changesets') FROM sandbox_imodels WHERE id = ?", building)
    assert latest["changesets"][0]["index"] == max(c["index"] for c in json.loads(stored[0][0]))


async def test_external_load_bearing_wall_area(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Wall WHERE IsExternal = true AND LoadBearing = true",
        {"Area": "Area"},
        aggregate=[("Area", "Area", "Sum"), ("Walls", "ECInstanceId", "Count")],
    )
    walls = [
        a
        for ext, lb, a in analyst.elements(
            WALL, "json_extract(props, '$.IsExternal')", "json_extract(props, '$.LoadBearing')", "area"
        )
        if ext and lb
    ]
    assert int(rows[0]["Walls"]) == len(walls) > 0
    assert math.isclose(float(rows[0]["Area"]), sum(walls))


async def test_average_slab_thickness_with_a_formula(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Slab",
        {"Thickness": prop("Building", "Slab", "Thickness", "Double"), "ThicknessMm": "Thickness * 1000"},
        aggregate=[("Total", "ThicknessMm", "Sum"), ("Slabs", "ECInstanceId", "Count")],
    )
    thicknesses = [t for (t,) in analyst.elements(SLAB, "json_extract(props, '$.Thickness')")]
    average = float(rows[0]["Total"]) / int(rows[0]["Slabs"])
    assert math.isclose(average, 1000 * sum(thicknesses) / len(thicknesses))


async def test_floor_area_per_space_type(analyst: Analyst) -> None:
    rows = await analyst.table(
        "SELECT * FROM Building.Space",
        {
            "SpaceType": prop("Building", "Space", "SpaceType", "String"),
            "FloorArea": prop("Building", "Space", "FloorArea", "Double"),
        },
        aggregate=[("SpaceType", "SpaceType", "GroupBy"), ("FloorArea", "FloorArea", "Sum")],
    )
    expected: dict[str, float] = defaultdict(float)
    for kind, area in analyst.elements(
        SPACE, "json_extract(props, '$.SpaceType')", "json_extract(props, '$.FloorArea')"
    ):
        expected[kind] += area
    assert {r["SpaceType"] for r in rows} == set(expected)
    for row in rows:
        assert math.isclose(float(row["FloorArea"]), expected[row["SpaceType"]])
