"""The evaluation set, asked directly of the iModel: the same kind of analyst questions as test_analyst_tasks.py,
answered with describe_imodel / query_imodel as the insights-imodel-query skill teaches, each within a handful of
tool calls (counted and bounded here; before/after figures in tests/eval/README.md). Expected answers come from plain
SQL over the sandbox's `im_*` tables, never through the code under test.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from typing import Any

import pytest
from mcp import Client

from ..contract.helpers import ok

pytestmark = pytest.mark.anyio

BUILDING = "Sample Office Building"
WALL, DOOR, WINDOW, SLAB, PIPE, SPACE, COST = 0x101, 0x102, 0x103, 0x104, 0x141, 0x107, 0x111
MAX_CALLS = 4  # find the iModel (2) + describe and/or query


class Asker:
    """The scripted agent: finds the iModel with the context tools, then asks it; counts every tool call."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db
        self.calls = 0

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.calls += 1
        return await ok(self.client, tool, **arguments)

    async def imodel(self) -> str:
        itwin = (await self.call("list_itwins", search="Sandbox"))["iTwins"][0]["id"]
        imodels = (await self.call("list_imodels", iTwinId=itwin))["iModels"]
        return str(next(i["id"] for i in imodels if i["displayName"] == BUILDING))

    async def query(self, query: str, **extra: Any) -> list[dict[str, Any]]:
        data = await self.call("query_imodel", iModelId=await self.imodel(), query=query, maxRows=1000, **extra)
        assert data["complete"] and data["total"] == len(data["rows"])
        return list(data["rows"])

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            imodel = conn.execute(
                "SELECT id FROM sandbox_imodels WHERE json_extract(data, '$.displayName') = ?", (BUILDING,)
            ).fetchone()[0]
            return conn.execute(query, (imodel, *args)).fetchall()
        finally:
            conn.close()

    def props(self, class_id: int, *names: str) -> list[tuple[Any, ...]]:
        select = ", ".join(f"json_extract(props, '$.{n}')" for n in names)
        return self.sql(f"SELECT {select} FROM im_elements WHERE imodel_id = ? AND class_id = ?", class_id)


@pytest.fixture
async def asker(mcp: Client, sandbox_db: str) -> Any:
    a = Asker(mcp, sandbox_db)
    yield a
    assert a.calls <= MAX_CALLS, f"{a.calls} tool calls"


async def test_how_many_doors(asker: Asker) -> None:
    [row] = await asker.query("SELECT COUNT(*) AS doors FROM bldg.Door")
    assert row["doors"] == len(asker.props(DOOR, "Material")) == 300


async def test_what_is_in_the_imodel(asker: Asker) -> None:
    data = await asker.call("describe_imodel", iModelId=await asker.imodel())
    counts = {c["className"]: c["instances"] for c in data["classes"] if c["kind"] == "element"}
    expected = asker.sql(
        "SELECT c.schema_name || '.' || c.class_name, COUNT(*) FROM im_elements e JOIN im_classes c "
        "ON c.imodel_id = e.imodel_id AND c.class_id = e.class_id WHERE e.imodel_id = ? GROUP BY 1"
    )
    assert counts == dict(expected)


async def test_units_and_inherited_properties_of_walls(asker: Asker) -> None:
    data = await asker.call("describe_imodel", iModelId=await asker.imodel(), className="bldg.Wall")
    props = {p["name"]: p for p in data["properties"]}
    declared = asker.sql(
        "SELECT property_name FROM im_class_properties WHERE imodel_id = ? AND class_id IN (64, 66, 256, 257)"
    )
    assert set(props) == {n for (n,) in declared}
    assert props["Thickness"]["unit"] == "m" and props["Material"]["declaredIn"] == "Building.BuildingElement"


async def test_storey_with_most_windows(asker: Asker) -> None:
    rows = await asker.query("SELECT Level, COUNT(*) AS windows FROM bldg.Window GROUP BY Level ORDER BY windows DESC")
    counts: dict[str, int] = defaultdict(int)
    for (level,) in asker.props(WINDOW, "Level"):
        counts[level] += 1
    assert {r["Level"]: r["windows"] for r in rows} == dict(counts)
    assert rows[0]["windows"] == max(counts.values())


async def test_length_of_large_pipes(asker: Asker) -> None:
    [row] = await asker.query(
        "SELECT SUM(Length) AS total, COUNT(*) AS pipes FROM plmb.Pipe WHERE Diameter > :d", args={"d": 0.1}
    )
    pipes = [length for d, length in asker.props(PIPE, "Diameter", "Length") if d > 0.1]
    assert row["pipes"] == len(pipes) > 0 and math.isclose(row["total"], sum(pipes))


async def test_fire_rated_doors(asker: Asker) -> None:
    rows = await asker.query("SELECT FireRating, COUNT(*) AS n FROM bldg.Door WHERE FireRating IS NOT NULL GROUP BY 1")
    expected: dict[str, int] = defaultdict(int)
    for (rating,) in asker.props(DOOR, "FireRating"):
        if rating is not None:
            expected[rating] += 1
    assert {r["FireRating"]: r["n"] for r in rows} == dict(expected) and expected


async def test_wall_cost_from_the_cost_aspect(asker: Asker) -> None:
    [row] = await asker.query(
        "SELECT SUM(c.Cost) AS total, COUNT(*) AS costed FROM bldg.CostAspect c "
        "JOIN bldg.Wall w ON w.ECInstanceId = c.Element.Id"
    )
    costs = asker.sql(
        "SELECT json_extract(a.props, '$.Cost') FROM im_aspects a JOIN im_elements e ON e.imodel_id = a.imodel_id "
        "AND e.id = a.element_id WHERE a.imodel_id = ? AND e.class_id = ? AND a.class_id = ?",
        WALL,
        COST,
    )
    assert row["costed"] == len(costs) > 0 and math.isclose(row["total"], sum(c for (c,) in costs))


async def test_elements_in_the_exterior_walls_category(asker: Asker) -> None:
    [row] = await asker.query(
        "SELECT COUNT(*) AS n FROM bis.GeometricElement3d WHERE Category.CodeValue = 'Exterior Walls'"
    )
    [(expected,)] = asker.sql(
        "SELECT COUNT(*) FROM im_elements e JOIN im_elements c ON c.imodel_id = e.imodel_id AND c.id = e.category_id "
        "WHERE e.imodel_id = ? AND c.code_value = 'Exterior Walls'"
    )
    assert row["n"] == expected > 0


async def test_average_slab_thickness_in_mm(asker: Asker) -> None:
    [row] = await asker.query("SELECT AVG(Thickness) * 1000 AS mm FROM bldg.Slab")
    thicknesses = [t for (t,) in asker.props(SLAB, "Thickness")]
    assert math.isclose(row["mm"], 1000 * sum(thicknesses) / len(thicknesses))


async def test_floor_area_per_space_type(asker: Asker) -> None:
    rows = await asker.query("SELECT SpaceType, SUM(FloorArea) AS area FROM bldg.Space GROUP BY SpaceType")
    expected: dict[str, float] = defaultdict(float)
    for kind, area in asker.props(SPACE, "SpaceType", "FloorArea"):
        expected[kind] += area
    assert {r["SpaceType"] for r in rows} == set(expected)
    for row in rows:
        assert math.isclose(row["area"], expected[row["SpaceType"]])


async def test_largest_rooms(asker: Asker) -> None:
    rows = await asker.query("SELECT CodeValue, FloorArea FROM bldg.Space ORDER BY FloorArea DESC LIMIT 5")
    areas = sorted((a for (a,) in asker.props(SPACE, "FloorArea")), reverse=True)[:5]
    assert [r["FloorArea"] for r in rows] == areas
