"""The ECSQL conformance table of docs/architecture.md ("iModel Query: ECSQL conformance"), one test per row.

Supported rows run through the sandbox's one ECSQL engine (`imodel_query.run_select`) and compare with plain SQL over
the `im_*` tables; refused rows must fail with a message that says what is wrong.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itwin_insights_mcp.sandbox.api.imodel_query import QueryResult, run_select
from itwin_insights_mcp.sandbox.engine.ecsql import QueryTranslationError
from itwin_insights_mcp.sandbox.store import Store

from ..conftest import BUILDING_ID

WALL, DOOR, BUILDING_ELEMENT, COST_ASPECT = 0x101, 0x102, 0x100, 0x111


@pytest.fixture(scope="module")
def store(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("conformance") / "sandbox.db"
    shutil.copy(template_db, path)
    opened = Store(str(path))
    yield opened
    opened.close()


def q(store: Store, query: str, args: dict[str, Any] | None = None) -> QueryResult:
    return run_select(store, BUILDING_ID, query, args)


def sql(store: Store, query: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(query, (BUILDING_ID, *params)).fetchall()
    finally:
        conn.close()


def rows(result: QueryResult) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in result.rows]


# -- supported ---------------------------------------------------------------------------------------------------


def test_select_columns_and_aliases(store: Store) -> None:
    result = q(store, "SELECT CodeValue AS code, UserLabel FROM bldg.Door ORDER BY ECInstanceId")
    expected = sql(
        store, "SELECT code_value, user_label FROM im_elements WHERE imodel_id = ? AND class_id = 258 ORDER BY id"
    )
    assert result.columns == ("code", "UserLabel") and rows(result) == expected


def test_select_star(store: Store) -> None:
    result = q(store, "SELECT * FROM bldg.Door LIMIT 1")
    assert result.columns == ("ECInstanceId", "ECClassId", "CodeValue", "UserLabel", "Category", "Model", "Parent")
    assert result.rows[0][1] == hex(DOOR)


def test_where_operators(store: Store) -> None:
    result = q(
        store,
        "SELECT COUNT(*) FROM bldg.Wall WHERE Material LIKE 'Con%' AND Thickness BETWEEN 0.1 AND 0.3 "
        "AND Level IN ('L01', 'L02') AND UserLabel IS NOT NULL",
    )
    expected = sql(
        store,
        "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 257 "
        "AND json_extract(props, '$.Material') LIKE 'Con%' AND json_extract(props, '$.Thickness') BETWEEN 0.1 AND 0.3 "
        "AND json_extract(props, '$.Level') IN ('L01', 'L02') AND user_label IS NOT NULL",
    )
    assert rows(result) == expected


def test_aggregates_group_by_having(store: Store) -> None:
    result = q(
        store,
        "SELECT Material, COUNT(*), SUM(Thickness), AVG(Thickness), MIN(Thickness), MAX(Thickness), "
        "COUNT(DISTINCT Level) FROM bldg.Wall GROUP BY Material HAVING COUNT(*) > 100 ORDER BY Material",
    )
    expected = sql(
        store,
        "SELECT json_extract(props, '$.Material') m, COUNT(*), SUM(json_extract(props, '$.Thickness')), "
        "AVG(json_extract(props, '$.Thickness')), MIN(json_extract(props, '$.Thickness')), "
        "MAX(json_extract(props, '$.Thickness')), COUNT(DISTINCT json_extract(props, '$.Level')) FROM im_elements "
        "WHERE imodel_id = ? AND class_id = 257 GROUP BY m HAVING COUNT(*) > 100 ORDER BY m",
    )
    assert rows(result) == expected and expected


def test_order_by_position_limit_offset(store: Store) -> None:
    result = q(store, "SELECT ECInstanceId, CodeValue FROM bldg.Door ORDER BY 2 DESC LIMIT 5 OFFSET 3")
    expected = sql(
        store,
        "SELECT id, code_value FROM im_elements WHERE imodel_id = ? AND class_id = 258 "
        "ORDER BY code_value DESC LIMIT 5 OFFSET 3",
    )
    assert rows(result) == [(hex(i), c) for i, c in expected]


def test_parameters_positional_and_named(store: Store) -> None:
    result = q(
        store,
        "SELECT COUNT(*) FROM bldg.Wall WHERE Material = ? AND Level = :level AND ECInstanceId > ?",
        {"1": "Brick", "level": "L01", "2": "0x1"},
    )
    expected = sql(
        store,
        "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 257 "
        "AND json_extract(props, '$.Material') = 'Brick' AND json_extract(props, '$.Level') = 'L01'",
    )
    assert rows(result) == expected


def test_class_filter_is_and_only(store: Store) -> None:
    both = q(store, "SELECT COUNT(*) FROM bldg.BuildingElement e WHERE e.ECClassId IS (bldg.Wall, bldg.Door)")
    not_walls = q(store, "SELECT COUNT(*) FROM bldg.BuildingElement WHERE ECClassId IS NOT (bldg.Wall)")
    only = q(store, "SELECT COUNT(*) FROM ONLY bldg.BuildingElement")
    [(walls_doors,)] = sql(store, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id IN (257, 258)")
    [(building,)] = sql(store, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id BETWEEN 257 AND 262")
    [(walls,)] = sql(store, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 257")
    assert rows(both) == [(walls_doors,)] and rows(not_walls) == [(building - walls,)] and rows(only) == [(0,)]


def test_navigation_id_value_and_member(store: Store) -> None:
    result = q(store, "SELECT Category.Id, Category, Category.CodeValue FROM bldg.Door ORDER BY ECInstanceId LIMIT 1")
    [(cat, code)] = sql(
        store,
        "SELECT e.category_id, c.code_value FROM im_elements e JOIN im_elements c ON c.imodel_id = e.imodel_id "
        "AND c.id = e.category_id WHERE e.imodel_id = ? AND e.class_id = 258 ORDER BY e.id LIMIT 1",
    )
    assert result.rows[0] == [hex(cat), {"Id": hex(cat), "RelECClassId": "0x72"}, code]


def test_joins_and_aspects(store: Store) -> None:
    result = q(
        store,
        "SELECT e.Material, SUM(a.Cost) FROM bldg.CostAspect a JOIN bldg.BuildingElement e "
        "ON e.ECInstanceId = a.Element.Id GROUP BY e.Material ORDER BY e.Material",
    )
    expected = sql(
        store,
        "SELECT json_extract(e.props, '$.Material') m, SUM(json_extract(a.props, '$.Cost')) FROM im_aspects a "
        "JOIN im_elements e ON e.imodel_id = a.imodel_id AND e.id = a.element_id "
        "WHERE a.imodel_id = ? AND a.class_id = 273 AND e.class_id BETWEEN 256 AND 262 GROUP BY m ORDER BY m",
    )
    assert [r[0] for r in result.rows] == [r[0] for r in expected]
    assert [r[1] for r in result.rows] == pytest.approx([r[1] for r in expected])
    left = q(
        store,
        "SELECT COUNT(*) FROM bldg.Door d LEFT JOIN bldg.FireRatingAspect f ON f.Element.Id = d.ECInstanceId",
    )
    [(doors,)] = sql(store, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 258")
    assert left.rows[0][0] >= doors


def test_ec_classname_and_ec_classid(store: Store) -> None:
    result = q(
        store,
        "SELECT ec_classname(ECClassId), ec_classname(ECClassId, 'a.c'), ec_classname(ECClassId, 4), "
        "ec_classid('bldg.Door'), ec_classid('Building', 'Door') FROM bldg.Door LIMIT 1",
    )
    assert result.rows == [["Building:Door", "bldg.Door", "Door", DOOR, DOOR]]
    by_id = q(store, "SELECT COUNT(*) FROM bis.Element WHERE ECClassId = ec_classid('bldg:Wall')")
    [(walls,)] = sql(store, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? AND class_id = 257")
    assert rows(by_id) == [(walls,)]


def test_json_members(store: Store) -> None:
    result = q(
        store,
        "SELECT JsonProperties.formatter.mastUnit.label FROM bis.Element "
        "WHERE JsonProperties.formatter.mastUnit.label IS NOT NULL",
    )
    [(n,)] = sql(
        store,
        "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ? "
        "AND json_extract(props, '$.JsonProperties.formatter.mastUnit.label') IS NOT NULL",
    )
    assert len(result.rows) == n > 0 and {r[0] for r in result.rows} == {"m"}


def test_case_cast_functions_distinct(store: Store) -> None:
    result = q(
        store,
        "SELECT DISTINCT CASE WHEN Thickness > 0.2 THEN 'thick' ELSE 'thin' END AS k, UPPER(SUBSTR(Material, 1, 3)) "
        "FROM bldg.Wall WHERE CAST(Thickness * 100 AS INTEGER) > 0 ORDER BY 1, 2",
    )
    expected = sql(
        store,
        "SELECT DISTINCT CASE WHEN json_extract(props, '$.Thickness') > 0.2 THEN 'thick' ELSE 'thin' END k, "
        "UPPER(SUBSTR(json_extract(props, '$.Material'), 1, 3)) s FROM im_elements WHERE imodel_id = ? "
        "AND class_id = 257 ORDER BY 1, 2",
    )
    assert rows(result) == expected


def test_meta_schemas_classes_properties(store: Store) -> None:
    schemas = q(store, "SELECT Name, Alias FROM meta.ECSchemaDef ORDER BY Name")
    assert ("Building", "bldg") in rows(schemas)
    classes = q(
        store,
        "SELECT c.Name, c.Type, c.Modifier FROM meta.ECClassDef c "
        "JOIN meta.ECSchemaDef s ON s.ECInstanceId = c.Schema.Id WHERE s.Name = :schema ORDER BY c.Name",
        {"schema": "Building"},
    )
    expected = sql(store, "SELECT class_name FROM im_classes WHERE imodel_id = ? AND schema_name = 'Building'")
    assert [r[0] for r in classes.rows] == sorted(r[0] for r in expected)
    assert ("BuildingElement", 0, 1) in rows(classes) and ("Wall", 0, 0) in rows(classes)


def test_meta_all_base_classes_and_units(store: Store) -> None:
    bases = q(
        store,
        "SELECT ec_classname(TargetECInstanceId, 's.c') FROM meta.ClassHasAllBaseClasses "
        "WHERE SourceECInstanceId = ec_classid('bldg.Wall')",
    )
    assert [r[0] for r in bases.rows] == [
        "Building.Wall", "Building.BuildingElement", "BisCore.PhysicalElement", "BisCore.SpatialElement",
        "BisCore.GeometricElement3d", "BisCore.GeometricElement", "BisCore.Element",
    ]  # fmt: skip
    direct = q(store, "SELECT ec_classname(TargetECInstanceId) FROM meta.ClassHasBaseClasses "
                      "WHERE SourceECInstanceId = ec_classid('bldg.Wall')")  # fmt: skip
    assert direct.rows == [["Building:BuildingElement"]]
    units = q(
        store,
        "SELECT p.Name, k.Name, k.PersistenceUnit FROM meta.ECPropertyDef p "
        "JOIN meta.KindOfQuantityDef k ON k.ECInstanceId = p.KindOfQuantity.Id "
        "WHERE p.Class.Id = ec_classid('bldg.Space')",
    )
    assert rows(units) == [("FloorArea", "AREA", "Units:SQ_M")] and units.columns == (
        "Name",
        "Name_1",
        "PersistenceUnit",
    )


# -- refused -----------------------------------------------------------------------------------------------------

REFUSED = {
    "insert": ("INSERT INTO bldg.Wall (Material) VALUES ('x')", "Only ECSQL SELECT"),
    "update": ("UPDATE bldg.Wall SET Material = 'x'", "Only ECSQL SELECT"),
    "delete": ("DELETE FROM bldg.Wall", "Only ECSQL SELECT"),
    "union": ("SELECT CodeValue FROM bldg.Wall UNION SELECT CodeValue FROM bldg.Door", "UNION"),
    "cte": ("WITH x AS (SELECT 1) SELECT * FROM x", "Only ECSQL SELECT"),
    "subquery": ("SELECT COUNT(*) FROM bldg.Wall WHERE ECInstanceId IN (SELECT ECInstanceId FROM bldg.Door)", "sub"),
    "window": ("SELECT ROW_NUMBER() OVER (ORDER BY ECInstanceId) FROM bldg.Wall", "window"),
    "cross_join": ("SELECT COUNT(*) FROM bldg.Wall, bldg.Door", "ON condition"),
    "right_join": ("SELECT 1 FROM bldg.Wall w RIGHT JOIN bldg.Door d ON d.ECInstanceId = w.ECInstanceId", "LEFT JOIN"),
    "unknown_function": ("SELECT ec_bogus(ECClassId) FROM bldg.Wall", "not supported"),
    "missing_parameter": ("SELECT COUNT(*) FROM bldg.Wall WHERE Material = :m", "No value for parameter :m"),
    "unknown_class": ("SELECT 1 FROM bldg.Wal", "Unknown class 'bldg.Wal' (at line 1, column 15)"),
    "unknown_property": ("SELECT Colour FROM bldg.Wall", "Unknown property 'Colour' (at line 1, column 8)"),
    "syntax": ("SELECT FROM WHERE", "syntax error at line 1"),
    "too_many_rows": (
        "SELECT a.ECInstanceId FROM bis.Element a JOIN bis.Element b ON b.ECInstanceId <> a.ECInstanceId",
        "more than 200000 rows",
    ),
}


@pytest.mark.parametrize("feature", sorted(REFUSED))
def test_refused(store: Store, feature: str) -> None:
    query, fragment = REFUSED[feature]
    with pytest.raises(QueryTranslationError) as caught:
        q(store, query)
    assert fragment.lower() in str(caught.value).lower()


def test_group_queries_keep_their_subset(store: Store) -> None:
    """The same engine still refuses aggregates in group queries (they select one row per element)."""
    from itwin_insights_mcp.sandbox.engine.ecsql import translate

    with pytest.raises(QueryTranslationError, match="aggregate"):
        translate("SELECT ECInstanceId, COUNT(*) FROM bldg.Wall", BUILDING_ID, store.conn)
