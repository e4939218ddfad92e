"""Contract: the iModel Query operations (run, get: 200, 201 polling, paging, parameters, errors, ECDbMeta) and the
agent tools over them (query_imodel, describe_imodel). Expected values come from plain SQL over the `im_*` tables."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.sandbox.imodels import changesets_for
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok, text_of

pytestmark = pytest.mark.anyio

LATEST = changesets_for(BUILDING_ID)[-1].id
TARGET = {"iTwinId": ITWIN_ID, "iModelId": BUILDING_ID, "changesetId": LATEST}


def sql(db: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
async def exporting(sandbox_db: str, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, export_dir=str(tmp_path / "exports"))
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


# -- the two operations ------------------------------------------------------------------------------------------


async def test_run_query_200_rows_are_positional_with_hex_ids(mcp: Client, sandbox_db: str) -> None:
    body = await ok(
        mcp,
        "run_imodel_query",
        **TARGET,
        query="SELECT ECInstanceId, ECClassId, CodeValue, Category FROM bldg.Door ORDER BY ECInstanceId LIMIT 2",
        includeMetadata=True,
    )
    expected = sql(
        sandbox_db,
        "SELECT id, class_id, code_value, category_id FROM im_elements WHERE imodel_id = ? AND class_id = 258 "
        "ORDER BY id LIMIT 2",
        BUILDING_ID,
    )
    assert body["state"] == "Completed" and body["id"]
    assert [m["name"] for m in body["meta"]] == ["ECInstanceId", "ECClassId", "CodeValue", "Category"]
    assert body["rows"] == [
        [hex(i), hex(c), code, {"Id": hex(cat), "RelECClassId": "0x72"}] for i, c, code, cat in expected
    ]
    assert body["links"]["self"].endswith(f"/queries/{body['id']}") and body["links"]["next"] is None


async def test_run_query_201_then_get_polls_to_completed_and_pages(mcp: Client, sandbox_db: str) -> None:
    [(total,)] = sql(sandbox_db, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", BUILDING_ID)
    assert total > 1000  # above the sandbox's inline threshold
    started = await ok(mcp, "run_imodel_query", **TARGET, query="SELECT ECInstanceId FROM bis.Element")
    assert started["state"] == "Pending" and "rows" not in started
    args = {**TARGET, "queryId": started["id"]}
    states = []
    while True:
        body = await ok(mcp, "get_imodel_query", **args, limit=400, skip=0)
        states.append(body["state"])
        if body["state"] == "Completed":
            break
        assert body["state"] == "Running" and len(states) < 50
        await asyncio.sleep(0.1)
    seen: list[str] = [r[0] for r in body["rows"]]
    assert len(seen) == 400 and body["links"]["next"].endswith("limit=400&skip=400")
    skip = 400
    while body["links"]["next"]:
        body = await ok(mcp, "get_imodel_query", **args, limit=400, skip=skip)
        seen.extend(r[0] for r in body["rows"])
        skip += 400
    ids = [r[0] for r in sql(sandbox_db, "SELECT id FROM im_elements WHERE imodel_id = ?", BUILDING_ID)]
    assert sorted(seen) == sorted(hex(i) for i in ids) and len(seen) == total


async def test_parameters_bind_from_args_by_name_and_position(mcp: Client, sandbox_db: str) -> None:
    body = await ok(
        mcp,
        "run_imodel_query",
        **TARGET,
        query="SELECT COUNT(*) n FROM bldg.Wall WHERE Material = :material AND Thickness > ?",
        args={"material": "Brick", "1": 0.1},
    )
    [(n,)] = sql(
        sandbox_db,
        "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 257 "
        "AND json_extract(props, '$.Material') = 'Brick' AND json_extract(props, '$.Thickness') > 0.1",
        BUILDING_ID,
    )
    assert body["rows"] == [[n]] and n > 0
    missing = await fails(
        mcp, "run_imodel_query", 422, "InvalidECSqlQuery", **TARGET, query="SELECT :x FROM bis.Element"
    )
    assert ":x" in missing["message"]


async def test_non_select_is_refused(mcp: Client) -> None:
    for statement in (
        "DELETE FROM bis.Element",
        "UPDATE bldg.Wall SET Material = 'x'",
        "INSERT INTO bldg.Wall VALUES (1)",
    ):
        error = await fails(mcp, "run_imodel_query", 422, "InvalidECSqlQuery", **TARGET, query=statement)
        assert "Only ECSQL SELECT" in error["message"] and "line 1, column 1" in error["message"]


async def test_syntax_error_names_its_position(mcp: Client) -> None:
    error = await fails(mcp, "run_imodel_query", 422, "InvalidECSqlQuery", **TARGET, query="SELECT Material\nFROM")
    assert "line 2" in error["message"] and "column" in error["message"]


async def test_unknown_class_and_property_name_the_token_and_position(mcp: Client) -> None:
    error = await fails(mcp, "run_imodel_query", 422, "InvalidECSqlQuery", **TARGET, query="SELECT 1 FROM bldg.Wal")
    assert "Unknown class 'bldg.Wal'" in error["message"] and "line 1, column 15" in error["message"]
    assert "Wall" in error["message"]  # the classes of the schema are listed
    error = await fails(
        mcp, "run_imodel_query", 422, "InvalidECSqlQuery", **TARGET, query="SELECT w.Colour FROM bldg.Wall w"
    )
    assert "Unknown property 'Colour'" in error["message"] and "line 1, column 10" in error["message"]


async def test_unknown_query_changeset_and_imodel_are_404(mcp: Client) -> None:
    await fails(mcp, "get_imodel_query", 404, "QueryNotFound", **TARGET, queryId="00000000-0000-4000-8000-000000000000")
    await fails(
        mcp,
        "run_imodel_query",
        404,
        "ChangesetNotFound",
        **{**TARGET, "changesetId": "nope"},
        query="SELECT 1 FROM bis.Element",
    )
    await fails(
        mcp,
        "run_imodel_query",
        404,
        "iModelNotFound",
        **{**TARGET, "iTwinId": "other"},
        query="SELECT 1 FROM bis.Element",
    )


async def test_results_expire_after_24_hours(mcp: Client, sandbox_db: str) -> None:
    body = await ok(mcp, "run_imodel_query", **TARGET, query="SELECT COUNT(*) FROM bis.Element")
    conn = sqlite3.connect(sandbox_db)
    with conn:
        conn.execute(
            "UPDATE records SET data = json_set(data, '$.completedAt', json_extract(data, '$.completedAt') - 86401) "
            "WHERE kind = 'imodel_query' AND id = ?",
            (body["id"],),
        )
    conn.close()
    await fails(mcp, "get_imodel_query", 404, "QueryNotFound", **TARGET, queryId=body["id"])


async def test_meta_schema_queries(mcp: Client, sandbox_db: str) -> None:
    schemas = await ok(
        mcp, "run_imodel_query", **TARGET, query="SELECT Name, Alias FROM meta.ECSchemaDef ORDER BY Name"
    )
    expected = sql(
        sandbox_db, "SELECT DISTINCT schema_name, schema_alias FROM im_classes WHERE imodel_id = ?", BUILDING_ID
    )
    assert {tuple(r) for r in schemas["rows"]} == {*expected, ("ECDbMeta", "meta")}
    inherited = await ok(
        mcp,
        "run_imodel_query",
        **TARGET,
        query="SELECT ec_classname(p.Class.Id, 's.c') AS declaredIn, p.Name FROM meta.ECPropertyDef p "
        "JOIN meta.ClassHasAllBaseClasses h ON h.TargetECInstanceId = p.Class.Id "
        "WHERE h.SourceECInstanceId = ec_classid('bldg', 'Wall') ORDER BY p.Name",
    )
    names = {r[1]: r[0] for r in inherited["rows"]}
    assert names["Thickness"] == "Building.Wall" and names["Material"] == "Building.BuildingElement"
    assert names["Category"] == "BisCore.GeometricElement3d" and names["CodeValue"] == "BisCore.Element"
    own = await ok(
        mcp,
        "run_imodel_query",
        **TARGET,
        query="SELECT p.Name FROM meta.ECPropertyDef p JOIN meta.ECClassDef c ON c.ECInstanceId = p.Class.Id "
        "JOIN meta.ECSchemaDef s ON s.ECInstanceId = c.Schema.Id WHERE s.Name = 'Building' AND c.Name = 'Wall'",
    )
    local = sql(
        sandbox_db, "SELECT property_name FROM im_class_properties WHERE imodel_id = ? AND class_id = 257", BUILDING_ID
    )
    assert sorted(r[0] for r in own["rows"]) == sorted(r[0] for r in local)


# -- the agent tools ---------------------------------------------------------------------------------------------


async def test_query_imodel_resolves_the_latest_changeset_and_returns_objects(mcp: Client, sandbox_db: str) -> None:
    data = await ok(
        mcp,
        "query_imodel",
        iModelId=BUILDING_ID,
        query="SELECT Material, SUM(Thickness) AS total, COUNT(*) AS n FROM bldg.Wall "
        "GROUP BY Material ORDER BY Material",
    )
    expected = sql(
        sandbox_db,
        "SELECT json_extract(props, '$.Material') m, SUM(json_extract(props, '$.Thickness')), COUNT(*) "
        "FROM im_elements WHERE imodel_id = ? AND class_id = 257 GROUP BY m ORDER BY m",
        BUILDING_ID,
    )
    assert data["changesetId"] == LATEST and data["columns"] == ["Material", "total", "n"]
    assert data["total"] == len(expected) and data["complete"] is True
    for row, (material, total, n) in zip(data["rows"], expected, strict=True):
        assert row["Material"] == material and row["n"] == n and row["total"] == pytest.approx(total)


async def test_query_imodel_waits_through_201_and_pages_with_skip(mcp: Client, sandbox_db: str) -> None:
    [(total,)] = sql(sandbox_db, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", BUILDING_ID)
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    result = await mcp.call_tool(
        "query_imodel",
        {"iModelId": BUILDING_ID, "query": "SELECT ECInstanceId FROM bis.Element ORDER BY ECInstanceId", "maxRows": 10},
        progress_callback=on_progress,
    )
    data = dict(result.structured_content or {})
    assert data["total"] == total and len(data["rows"]) == 10 and data["nextSkip"] == 10
    assert reported and {m for _, _, m in reported} <= {"Pending", "Running"}  # it answered 201 and was polled
    assert "skip=10" in text_of(result) and f"{total} rows" in text_of(result)
    second = await ok(
        mcp,
        "query_imodel",
        iModelId=BUILDING_ID,
        query="SELECT ECInstanceId FROM bis.Element ORDER BY ECInstanceId",
        maxRows=10,
        skip=10,
    )
    ids = [
        hex(r[0])
        for r in sql(sandbox_db, "SELECT id FROM im_elements WHERE imodel_id = ? ORDER BY id LIMIT 20", BUILDING_ID)
    ]
    assert [r["ECInstanceId"] for r in data["rows"] + second["rows"]] == ids


async def test_query_imodel_exports_every_row(exporting: Client, sandbox_db: str, tmp_path: Path) -> None:
    data = await ok(
        exporting,
        "query_imodel",
        iModelId=BUILDING_ID,
        query="SELECT ECInstanceId, CodeValue FROM bis.Element",
        exportFile="elements.csv",
    )
    [(total,)] = sql(sandbox_db, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", BUILDING_ID)
    with open(data["path"], encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ECInstanceId", "CodeValue"] and len(rows) == total + 1 and data["total"] == total


async def test_query_imodel_reports_errors_with_a_next_step(mcp: Client) -> None:
    error = await fails(mcp, "query_imodel", 422, "InvalidECSqlQuery", iModelId=BUILDING_ID, query="DROP TABLE x")
    assert "SELECT" in error["message"] and "`query_imodel`" in error["nextStep"]


async def test_describe_imodel_lists_schemas_and_classes_with_counts(mcp: Client, sandbox_db: str) -> None:
    data = await ok(mcp, "describe_imodel", iModelId=BUILDING_ID)
    counts = {c["className"]: c["instances"] for c in data["classes"]}
    expected = sql(
        sandbox_db,
        "SELECT c.schema_name || '.' || c.class_name, COUNT(*) FROM im_elements e JOIN im_classes c "
        "ON c.imodel_id = e.imodel_id AND c.class_id = e.class_id WHERE e.imodel_id = ? GROUP BY 1",
        BUILDING_ID,
    )
    aspects = sql(
        sandbox_db,
        "SELECT c.schema_name || '.' || c.class_name, COUNT(*) FROM im_aspects a JOIN im_classes c "
        "ON c.imodel_id = a.imodel_id AND c.class_id = a.class_id WHERE a.imodel_id = ? GROUP BY 1",
        BUILDING_ID,
    )
    assert counts == dict(expected) | dict(aspects)
    assert {"name": "Building", "alias": "bldg"} in data["schemas"]


async def test_describe_imodel_gives_a_class_properties_with_types_and_units(mcp: Client) -> None:
    data = await ok(mcp, "describe_imodel", iModelId=BUILDING_ID, className="bldg.Wall")
    props = {p["name"]: p for p in data["properties"]}
    assert props["Thickness"] == {"name": "Thickness", "type": "Double", "declaredIn": "Building.Wall", "unit": "m"}
    assert props["Material"]["declaredIn"] == "Building.BuildingElement" and "unit" not in props["Material"]
    assert props["Category"]["type"] == "Navigation" and props["JsonProperties"]["type"] == "Json"
    result = await mcp.call_tool("describe_imodel", {"iModelId": BUILDING_ID, "className": "bldg.Nothing"})
    assert result.is_error and "describe_imodel without className" in text_of(result)


# -- what the analyst tripped over (issue 17, item 4) ------------------------------------------------------------


async def test_wait_for_extraction_text_says_issues_and_rows_per_group(mcp: Client, sandbox_db: str) -> None:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Waited"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    await ok(mcp, "create_group", **ids, groupName="Doors", query="SELECT * FROM Building.Door")
    run = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID, mappings=[{"id": mapping["id"]}]))["run"]
    result = await mcp.call_tool("wait_for_extraction", {"jobId": run["id"]})
    [(doors,)] = sql(sandbox_db, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 258", BUILDING_ID)
    data = dict(result.structured_content or {})
    assert data["issues"] == 0 and data["rowsPerGroup"] == {"Doors": doors}
    assert "No issues." in text_of(result) and f"Rows per group: Doors {doors}." in text_of(result)

    await ok(mcp, "create_group", **ids, groupName="Broken", query="SELECT * FROM Building.NoSuchClass")
    run = (await ok(mcp, "run_extraction", imodelId=BUILDING_ID, mappings=[{"id": mapping["id"]}]))["run"]
    result = await mcp.call_tool("wait_for_extraction", {"jobId": run["id"]})
    data = dict(result.structured_content or {})
    assert data["containsIssues"] is True and data["issues"] >= 1
    assert "issue(s) logged" in text_of(result) and "No issues" not in text_of(result)


async def test_descriptions_say_what_deletes_units_and_power_bi_do(mcp: Client) -> None:
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    assert "one month" in (tools["delete_report"].description or "")
    assert "aggregation table sets on it stay" in (tools["delete_mapping"].description or "")
    assert "surface area" in (tools["create_calculated_property"].description or "")
    area = tools["create_calculated_property"].input_schema["properties"]["type"]["description"]
    assert "not floor area" in area
    assert "API key" in (tools["get_odata_service"].description or "")


async def test_deleting_a_mapping_leaves_its_aggregation_table_sets(mcp: Client) -> None:
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="Gone"))["mapping"]
    table_set = (
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="Stays",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
        )
    )["aggregationTableSet"]
    await ok(mcp, "delete_mapping", imodelId=BUILDING_ID, mappingId=mapping["id"])
    still = await ok(mcp, "get_aggregation_table_set", aggregationTableSetId=table_set["id"])
    assert still["aggregationTableSet"]["id"] == table_set["id"]


async def test_export_files_can_be_listed_and_deleted(exporting: Client) -> None:
    query = "SELECT ECInstanceId FROM bldg.Door"
    written = await ok(exporting, "query_imodel", iModelId=BUILDING_ID, query=query, exportFile="doors.csv")
    listed = await ok(exporting, "manage_exports")
    assert [f["name"] for f in listed["files"]] == ["doors.csv"] and listed["files"][0]["bytes"] > 0
    assert Path(written["path"]).exists()
    after = await ok(exporting, "manage_exports", delete="doors.csv")
    assert after["deleted"] == "doors.csv" and after["files"] == [] and not Path(written["path"]).exists()
    for bad in ("doors.csv", "../sandbox.db"):
        result = await exporting.call_tool("manage_exports", {"delete": bad})
        assert result.is_error


async def test_query_imodel_stays_within_the_byte_budget_and_says_where_to_resume(sandbox_db: str) -> None:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, max_result_bytes=8192)
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        query = "SELECT ECInstanceId, CodeValue, UserLabel FROM bis.Element ORDER BY ECInstanceId"
        result = await client.call_tool("query_imodel", {"iModelId": BUILDING_ID, "query": query, "maxRows": 1000})
    data = dict(result.structured_content or {})
    shown = len(data["rows"])
    assert 0 < shown < 1000 and data["nextSkip"] == shown and "Trimmed" in text_of(result)
    assert f"skip={shown}" in text_of(result)
