"""Tests for the ECSQL-subset translator (sandbox/engine/ecsql.py) against generated sample iModels."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from itwin_insights_mcp.sandbox import imodels as im
from itwin_insights_mcp.sandbox.engine.ecsql import QueryTranslationError, TranslatedQuery, translate

M1 = "m1"
SITE = "site-1"
WALL = im.CLASS_DEFS_BY_NAME["Building.Wall"].class_id
PIPE = im.CLASS_DEFS_BY_NAME["Plumbing.Pipe"].class_id


@dataclass(frozen=True)
class Element:
    id: int
    class_id: int
    code: str | None
    label: str | None
    category: int | None
    model: int | None
    parent: int | None
    props: dict[str, object]

    @property
    def ancestors(self) -> set[str]:
        """Full names of the element's class and all its base classes."""
        return _ancestors(self.class_id)


@dataclass(frozen=True)
class Aspect:
    id: int
    class_id: int
    element_id: int
    props: dict[str, object]


_BY_ID = {c.class_id: c for c in im.CLASS_DEFS}


def _ancestors(class_id: int) -> set[str]:
    names: set[str] = set()
    current: im.ClassDef | None = _BY_ID[class_id]
    while current is not None:
        names.add(current.full_name)
        current = im.CLASS_DEFS_BY_NAME[current.base] if current.base else None
    return names


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    im.generate_imodel(connection, M1, elements=500, seed=1)
    im.generate_site_imodel(connection, SITE, elements=200, seed=3)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def elements(conn: sqlite3.Connection) -> list[Element]:
    rows = conn.execute(
        "SELECT id, class_id, code_value, user_label, category_id, model_id, parent_id, props "
        "FROM im_elements WHERE imodel_id = ?",
        (M1,),
    )
    return [Element(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]


@pytest.fixture(scope="module")
def aspects(conn: sqlite3.Connection) -> list[Aspect]:
    rows = conn.execute("SELECT id, class_id, element_id, props FROM im_aspects WHERE imodel_id = ?", (M1,))
    return [Aspect(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


Run = Callable[..., list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def run(conn: sqlite3.Connection) -> Run:
    def _run(query: str, imodel_id: str = M1) -> list[tuple[object, ...]]:
        translated = translate(query, imodel_id, conn)
        cursor = conn.execute(translated.sql, translated.params)
        assert tuple(d[0] for d in cursor.description) == translated.sql_columns
        return cursor.fetchall()

    return _run


def ids(rows: list[tuple[object, ...]]) -> set[object]:
    return {r[0] for r in rows}


def of_class(elements: list[Element], full_name: str) -> list[Element]:
    return [e for e in elements if full_name in e.ancestors]


# ------------------------------------------------------------------ basics


def test_select_star_returns_every_element_with_its_own_columns(
    conn: sqlite3.Connection, run: Run, elements: list[Element]
) -> None:
    translated = translate("SELECT * FROM BisCore.Element", M1, conn)
    assert translated.columns == ("ECInstanceId", "ECClassId", "CodeValue", "UserLabel", "Category", "Model", "Parent")
    assert translated.sql_columns == translated.columns
    assert translated.params == (M1,)
    expected = {(e.id, e.class_id, e.code, e.label, e.category, e.model, e.parent) for e in elements}
    rows = run("SELECT * FROM BisCore.Element")
    assert len(rows) == len(elements) == len(expected)
    assert set(rows) == expected


def test_queries_are_scoped_to_the_imodel(run: Run, conn: sqlite3.Connection) -> None:
    site_count = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (SITE,)).fetchone()[0]
    assert len(run("SELECT ECInstanceId FROM bis.Element", SITE)) == site_count
    assert len(run("SELECT ECInstanceId FROM site.Pavement", M1)) == 0
    assert len(run("SELECT ECInstanceId FROM site.Pavement", SITE)) > 0


def test_result_columns_lead_with_id_and_class(conn: sqlite3.Connection, run: Run, elements: list[Element]) -> None:
    translated = translate("SELECT CodeValue, ECInstanceId, Material FROM bldg.Wall", M1, conn)
    assert translated.columns == ("CodeValue", "ECInstanceId", "Material")
    assert translated.sql_columns == ("ECInstanceId", "ECClassId", "CodeValue", "Material")
    rows = run("SELECT CodeValue, ECInstanceId, Material FROM bldg.Wall")
    walls = of_class(elements, "Building.Wall")
    assert set(rows) == {(e.id, WALL, e.code, e.props.get("Material")) for e in walls}


def test_only_ecinstanceid_required_and_ecclassid_added(conn: sqlite3.Connection) -> None:
    translated = translate("SELECT ECInstanceId FROM bis.Element", M1, conn)
    assert translated.columns == ("ECInstanceId",)
    assert translated.sql_columns == ("ECInstanceId", "ECClassId")
    both = translate("select ecclassid, ecinstanceid from bis.element", M1, conn)
    assert both.columns == ("ECClassId", "ECInstanceId")


@pytest.mark.parametrize(
    ("class_name", "polymorphic_name"),
    [
        ("bis.PhysicalElement", "BisCore.PhysicalElement"),
        ("BisCore.SpatialElement", "BisCore.SpatialElement"),
        ("bldg.BuildingElement", "Building.BuildingElement"),
        ("Building.Wall", "Building.Wall"),
        ("plmb.DistributionElement", "Plumbing.DistributionElement"),
        ("bis.Category", "BisCore.Category"),
    ],
)
def test_polymorphic_from_includes_subclasses(
    run: Run, elements: list[Element], class_name: str, polymorphic_name: str
) -> None:
    expected = {e.id for e in of_class(elements, polymorphic_name)}
    assert expected
    assert ids(run(f"SELECT ECInstanceId FROM {class_name}")) == expected


def test_only_selects_the_exact_class(run: Run, elements: list[Element]) -> None:
    assert run("SELECT ECInstanceId FROM ONLY bis.PhysicalElement") == []
    assert run("SELECT ECInstanceId FROM ONLY Building.BuildingElement") == []
    walls = {e.id for e in elements if e.class_id == WALL}
    assert ids(run("SELECT ECInstanceId FROM ONLY Building.Wall")) == walls
    spatial = {e.id for e in elements if _BY_ID[e.class_id].full_name == "BisCore.SpatialCategory"}
    assert ids(run("select ECInstanceId from only bis.SpatialCategory")) == spatial
    assert run("SELECT ECInstanceId FROM ONLY bis.Category") == []


# ------------------------------------------------------------------ WHERE


def test_where_on_domain_properties(run: Run, elements: list[Element]) -> None:
    walls = of_class(elements, "Building.Wall")
    concrete = {e.id for e in walls if e.props.get("Material") == "Reinforced Concrete"}
    assert concrete
    assert ids(run("SELECT ECInstanceId FROM bldg.Wall WHERE Material = 'Reinforced Concrete'")) == concrete
    thick = {e.id for e in walls if float(e.props["Thickness"]) > 0.2}  # type: ignore[arg-type]
    assert thick and thick != {e.id for e in walls}
    assert ids(run("SELECT ECInstanceId FROM Building.Wall WHERE Thickness > 0.2")) == thick
    both = {e.id for e in walls if e.id in thick and e.props.get("IsExternal") is True}
    assert ids(run("SELECT ECInstanceId FROM Building.Wall WHERE Thickness > 0.2 AND IsExternal = TRUE")) == both


def test_where_on_inherited_property_of_polymorphic_class(run: Run, elements: list[Element]) -> None:
    steel = {e.id for e in of_class(elements, "Building.BuildingElement") if e.props.get("Material") == "Steel"}
    assert steel
    rows = run("SELECT ECInstanceId, Material FROM bldg.BuildingElement WHERE Material = 'Steel'")
    assert ids(rows) == steel
    assert {r[2] for r in rows} == {"Steel"}


def test_like_on_user_label(run: Run, elements: list[Element]) -> None:
    expected = {e.id for e in elements if e.label is not None and e.label.lower().startswith("basic wall: exterior")}
    assert expected
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE UserLabel LIKE 'Basic Wall: Exterior%'")) == expected
    not_like = {e.id for e in elements if e.label is not None and e.id not in expected}
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE UserLabel NOT LIKE 'Basic Wall: Exterior%'")) == not_like


def test_in_list(run: Run, elements: list[Element]) -> None:
    expected = {e.id for e in of_class(elements, "Building.BuildingElement") if e.props.get("Level") in ("L00", "L01")}
    assert expected
    assert ids(run("SELECT ECInstanceId FROM bldg.BuildingElement WHERE Level IN ('L00', 'L01')")) == expected
    rest = {e.id for e in of_class(elements, "Building.BuildingElement") if e.props.get("Level") not in ("L00", "L01")}
    assert ids(run("SELECT ECInstanceId FROM bldg.BuildingElement WHERE Level NOT IN ('L00', 'L01')")) == rest


def test_is_null_and_not(run: Run, elements: list[Element]) -> None:
    no_code = {e.id for e in elements if e.code is None}
    assert no_code
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE CodeValue IS NULL")) == no_code
    with_code = {e.id for e in elements if e.code is not None}
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE CodeValue IS NOT NULL")) == with_code
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE NOT (CodeValue IS NULL)")) == with_code
    walls = of_class(elements, "Building.Wall")
    no_rating = {e.id for e in walls if e.props.get("FireRating") is None}
    assert ids(run("SELECT ECInstanceId FROM bldg.Wall WHERE FireRating IS NULL")) == no_rating


def test_or_parentheses_and_arithmetic(run: Run, elements: list[Element]) -> None:
    beams = of_class(elements, "Building.Beam")
    expected = {
        e.id
        for e in beams
        if float(e.props["Width"]) * float(e.props["Depth"]) > 0.05  # type: ignore[arg-type]
        or e.props.get("Material") == "Timber"
    }
    assert expected
    query = "SELECT ECInstanceId FROM bldg.Beam WHERE (Width * Depth > 0.05) OR (Material = 'Timber')"
    assert ids(run(query)) == expected
    rows = run("SELECT ECInstanceId, Width * 1000 AS WidthMm, ROUND(Depth, 1) d FROM bldg.Beam")
    widths = {e.id: float(e.props["Width"]) * 1000 for e in beams}  # type: ignore[arg-type]
    assert {r[0]: r[2] for r in rows} == pytest.approx(widths)


def test_ecclassid_is_polymorphic_and_only(run: Run, elements: list[Element]) -> None:
    geometric = of_class(elements, "BisCore.GeometricElement3d")
    walls_pipes = {e.id for e in geometric if e.class_id in (WALL, PIPE)}
    query = "SELECT ECInstanceId FROM bis.GeometricElement3d WHERE ECClassId IS (Building.Wall, plmb:Pipe)"
    assert ids(run(query)) == walls_pipes
    distribution = {e.id for e in elements if "Plumbing.DistributionElement" in e.ancestors}
    query = "SELECT ECInstanceId FROM bis.Element WHERE ECClassId IS (Plumbing.DistributionElement)"
    assert ids(run(query)) == distribution
    assert run("SELECT ECInstanceId FROM bis.Element WHERE ECClassId IS (ONLY Plumbing.DistributionElement)") == []
    not_walls = {e.id for e in elements if e.class_id != WALL}
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE ECClassId IS NOT (ONLY bldg.Wall)")) == not_walls
    assert ids(run("SELECT ECInstanceId FROM bis.Element e WHERE e.ECClassId = 0x101")) == {
        e.id for e in elements if e.class_id == WALL
    }


def test_category_id_with_id64_literals(run: Run, elements: list[Element]) -> None:
    wall = next(e for e in elements if e.class_id == WALL)
    assert wall.category is not None
    category = im.id64(wall.category)
    expected = {e.id for e in elements if e.category == wall.category}
    for condition in (f"Category.Id = {category}", f"Category.id = '{category}'", f"category.ID = {wall.category}"):
        assert ids(run(f"SELECT ECInstanceId FROM bis.GeometricElement3d WHERE {condition}")) == expected
    upper = "0x" + category[2:].upper()
    assert ids(run(f"SELECT ECInstanceId FROM bis.GeometricElement3d WHERE Category.Id IN ('{upper}')")) == expected


def test_ecinstanceid_literals(run: Run, elements: list[Element]) -> None:
    target = elements[20]
    hex_id = im.id64(target.id)
    for literal in (hex_id, f"'{hex_id}'", str(target.id)):
        assert ids(run(f"SELECT ECInstanceId FROM bis.Element WHERE ECInstanceId = {literal}")) == {target.id}
    two = f"SELECT ECInstanceId FROM bis.Element WHERE ECInstanceId IN ({hex_id}, '{im.id64(elements[21].id)}')"
    assert ids(run(two)) == {target.id, elements[21].id}


def test_navigation_member_access(run: Run, elements: list[Element]) -> None:
    codes = {e.id: e.code for e in elements}
    walls = of_class(elements, "Building.Wall")
    rows = run("SELECT ECInstanceId, Category.CodeValue, Model.CodeValue FROM bldg.Wall")
    assert {r[0]: (r[2], r[3]) for r in rows} == {e.id: (codes[e.category], codes[e.model]) for e in walls}  # type: ignore[index]
    exterior = {e.id for e in walls if codes[e.category] == "Exterior Walls"}  # type: ignore[index]
    assert exterior
    assert ids(run("SELECT ECInstanceId FROM bldg.Wall w WHERE w.Category.CodeValue = 'Exterior Walls'")) == exterior
    structure = {e.id for e in elements if e.model is not None and codes[e.model] == "Structure"}
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE Model.CodeValue = 'Structure'")) == structure


def test_parent_and_model_ids(run: Run, elements: list[Element]) -> None:
    with_parent = {e.id: e.parent for e in elements if e.parent is not None}
    rows = run("SELECT ECInstanceId, Parent.Id FROM bis.Element WHERE Parent.Id IS NOT NULL")
    assert {r[0]: r[2] for r in rows} == with_parent
    model = next(e.model for e in elements if e.class_id == WALL)
    assert model is not None
    expected = {e.id for e in elements if e.model == model}
    assert ids(run(f"SELECT ECInstanceId FROM bis.Element WHERE Model.Id = {im.id64(model)}")) == expected


def test_json_properties(run: Run, elements: list[Element]) -> None:
    pipes = of_class(elements, "Plumbing.Pipe")
    rows = run("SELECT ECInstanceId, JsonProperties, JsonProperties.Plumbing.level AS lvl FROM plmb.Pipe")
    expected = {e.id: e.props.get("JsonProperties") for e in pipes}
    assert {r[0]: json.loads(str(r[2])) if r[2] is not None else None for r in rows} == expected
    levels = {
        e.id: e.props["JsonProperties"]["Plumbing"]["level"]  # type: ignore[index]
        for e in pipes
        if e.props.get("JsonProperties")
    }
    assert {r[0]: r[3] for r in rows if r[3] is not None} == levels


# ------------------------------------------------------------------ aspects


def test_element_joined_with_aspect(run: Run, elements: list[Element], aspects: list[Aspect]) -> None:
    fire = im.CLASS_DEFS_BY_NAME["Building.FireRatingAspect"].class_id
    walls = {e.id for e in elements if e.class_id == WALL}
    expected = {
        (a.element_id, WALL, a.props["Rating"]) for a in aspects if a.class_id == fire and a.element_id in walls
    }
    assert expected
    query = (
        "SELECT e.ECInstanceId, a.Rating FROM Building.Wall e "
        "JOIN Building.FireRatingAspect a ON a.Element.Id = e.ECInstanceId"
    )
    assert set(run(query)) == expected
    left = run(
        "SELECT e.ECInstanceId, a.Rating FROM bldg.Wall e "
        "LEFT JOIN bldg.FireRatingAspect a ON a.Element.Id = e.ECInstanceId"
    )
    assert ids(left) == walls


def test_aspect_class_query_aliases_the_element_id(
    conn: sqlite3.Connection, run: Run, elements: list[Element], aspects: list[Aspect]
) -> None:
    classes = {e.id: e.class_id for e in elements}
    fire = im.CLASS_DEFS_BY_NAME["Building.FireRatingAspect"].class_id
    query = "SELECT A.Element.Id ECInstanceId, A.ECClassId, A.Rating FROM Building.FireRatingAspect A"
    translated = translate(query, M1, conn)
    assert translated.columns == ("ECInstanceId", "ECClassId", "Rating")
    expected = {(a.element_id, classes[a.element_id], a.props["Rating"]) for a in aspects if a.class_id == fire}
    assert expected
    rows = run(query)
    assert len(rows) == len(expected)
    assert set(rows) == expected  # ECClassId is the element's class, not the aspect's
    aliased = run("SELECT a.Element.Id AS ECInstanceId, a.ECClassId AspectClass FROM bldg.FireRatingAspect a")
    assert {r[2] for r in aliased} == {fire}


def test_polymorphic_aspect_class(run: Run, aspects: list[Aspect]) -> None:
    unique = {im.CLASS_DEFS_BY_NAME[n].class_id for n in ("Building.FireRatingAspect", "Building.CostAspect")}
    rows = run("SELECT Element.Id ECInstanceId, ECInstanceId AspectId FROM bis.ElementUniqueAspect")
    assert {r[2] for r in rows} == {a.id for a in aspects if a.class_id in unique}


# ------------------------------------------------------------------ LIMIT, ORDER BY


def test_limit_offset_and_order(run: Run, elements: list[Element]) -> None:
    ordered = sorted(e.id for e in of_class(elements, "Building.Wall"))
    assert len(run("SELECT * FROM bldg.Wall LIMIT 7")) == 7
    rows = run("SELECT ECInstanceId FROM bldg.Wall ORDER BY ECInstanceId LIMIT 5 OFFSET 3")
    assert [r[0] for r in rows] == ordered[3:8]
    rows = run("SELECT ECInstanceId FROM bldg.Wall ORDER BY ECInstanceId DESC LIMIT 2")
    assert [r[0] for r in rows] == ordered[::-1][:2]
    assert run("select * from biscore.element limit 0") == []


# ------------------------------------------------------------------ bare class names (v1)


@pytest.mark.parametrize(
    ("query", "full_name"),
    [
        ("bis.Element", "BisCore.Element"),
        ("BisCore.Element", "BisCore.Element"),
        ("BisCore:PhysicalElement", "BisCore.PhysicalElement"),
        ("bis:PhysicalElement", "BisCore.PhysicalElement"),
        ("Building:Beam", "Building.Beam"),
        ("bldg.Wall", "Building.Wall"),
        ("BLDG:wall", "Building.Wall"),
        ("plmb.DistributionElement", "Plumbing.DistributionElement"),
        ("[BisCore].[SpatialElement]", "BisCore.SpatialElement"),
    ],
)
def test_bare_element_class(
    conn: sqlite3.Connection, run: Run, elements: list[Element], query: str, full_name: str
) -> None:
    translated = translate(query, M1, conn)
    assert translated.columns == ()
    assert translated.sql_columns == ("ECInstanceId", "ECClassId")
    expected = {(e.id, e.class_id) for e in of_class(elements, full_name)}
    assert expected
    assert set(run(query)) == expected


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("Building:FireRatingAspect", {"Building.FireRatingAspect"}),
        ("bldg.MaintenanceRecordAspect", {"Building.MaintenanceRecordAspect"}),
        ("bis.ElementAspect", {"Building.FireRatingAspect", "Building.CostAspect", "Building.MaintenanceRecordAspect"}),
    ],
)
def test_bare_aspect_class_selects_owning_elements(
    run: Run, elements: list[Element], aspects: list[Aspect], query: str, names: set[str]
) -> None:
    class_ids = {im.CLASS_DEFS_BY_NAME[n].class_id for n in names}
    owners = {a.element_id for a in aspects if a.class_id in class_ids}
    classes = {e.id: e.class_id for e in elements}
    rows = run(query)
    assert len(rows) == len(owners)  # one row per element, even with several aspects
    assert set(rows) == {(i, classes[i]) for i in owners}


# ------------------------------------------------------------------ case-insensitivity


def test_names_are_case_insensitive(run: Run, conn: sqlite3.Connection) -> None:
    canonical = run("SELECT ECInstanceId, Material FROM Building.Wall WHERE Thickness > 0.2")
    for query in (
        "select ecinstanceid, material from building.wall where thickness > 0.2",
        "SELECT ECINSTANCEID, MATERIAL FROM BLDG.WALL WHERE THICKNESS > 0.2",
        "Select w.EcInstanceId, w.mAtErIaL From bldg.wall W Where W.Thickness > 0.2",
    ):
        assert run(query) == canonical
    translated = translate("select ecinstanceid, material, category.codevalue from bldg.wall", M1, conn)
    assert translated.columns == ("ECInstanceId", "Material", "Category.CodeValue")


# ------------------------------------------------------------------ binding


def test_literals_and_imodel_are_bound_parameters(conn: sqlite3.Connection) -> None:
    query = "SELECT ECInstanceId FROM bldg.Wall WHERE Material = 'Brick'' OR 1=1 --' AND Thickness > 0.25 LIMIT 3"
    translated = translate(query, M1, conn)
    assert "Brick" not in translated.sql and "0.25" not in translated.sql and M1 not in translated.sql
    assert translated.params == (M1, "Brick' OR 1=1 --", 0.25, 3)
    assert conn.execute(translated.sql, translated.params).fetchall() == []


def test_weird_alias_is_quoted(run: Run, conn: sqlite3.Connection) -> None:
    translated = translate(
        'SELECT ECInstanceId, CodeValue AS "x""; DROP TABLE im_elements; --" FROM bldg.Wall', M1, conn
    )
    assert translated.columns == ("ECInstanceId", 'x"; DROP TABLE im_elements; --')
    assert len(conn.execute(translated.sql, translated.params).fetchall()) > 0
    assert len(run("SELECT ECInstanceId FROM bldg.Wall")) > 0


def test_result_is_a_frozen_dataclass(conn: sqlite3.Connection) -> None:
    translated = translate("bis.Element", M1, conn)
    assert isinstance(translated, TranslatedQuery)
    with pytest.raises(AttributeError):
        translated.sql = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ rejections


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT ECInstanceId FROM bis.Element GROUP BY ECInstanceId", "GROUP BY is not supported"),
        ("SELECT ECInstanceId FROM bis.Element HAVING 1", "HAVING is not supported"),
        ("SELECT ECInstanceId FROM bis.Element WHERE ECInstanceId IN (SELECT 1)", "subqueries are not supported"),
        ("SELECT ECInstanceId FROM bis.Element WHERE EXISTS (SELECT 1)", "subqueries are not supported"),
        ("SELECT * FROM (SELECT 1)", "subqueries are not supported"),
        ("SELECT * FROM bis.Element UNION SELECT * FROM bis.Element", "UNION"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "WITH"),
        ("SELECT ECInstanceId, COUNT(*) FROM bis.Element", "aggregate function"),
        ("SELECT ECInstanceId, ROW_NUMBER() OVER () FROM bis.Element", "window functions"),
        ("SELECT ECInstanceId, ec_classname(ECClassId) FROM bis.Element", "EC_CLASSNAME() is not supported"),
        ("SELECT ECInstanceId FROM Building.Wal", "Unknown class 'Building.Wal'; classes in schema Building: Beam,"),
        ("SELECT ECInstanceId FROM Buildng.Wall", "Unknown schema 'Buildng'"),
        ("SELECT ECInstanceId FROM Wall", "did you mean Building.Wall"),
        ("SELECT ECInstanceId FROM bldg.Wall WHERE Thicknes > 1", "Unknown property 'Thicknes' on Building.Wall"),
        ("SELECT ECInstanceId FROM bis.Element WHERE Material = 'x'", "declared by Building.BuildingElement"),
        ("SELECT ECInstanceId FROM bis.Element WHERE Category.Id = 1", "Unknown property 'Category'"),
        ("SELECT A.Rating FROM Building.FireRatingAspect A", "aspect queries must select A.Element.Id ECInstanceId"),
        ("SELECT ECInstanceId FROM Building.FireRatingAspect", "aspect queries must select"),
        ("SELECT * FROM bldg.CostAspect", "aspect queries must select"),
        ("SELECT ECClassId FROM bis.Element", "must select ECInstanceId"),
        ("SELECT CodeValue AS ECInstanceId FROM bis.Element", "ECInstanceId must be an element id"),
        ("SELECT ECInstanceId, ECInstanceId FROM bis.Element", "Duplicate result column"),
        ("SELECT ECInstanceId FROM bis.Element e JOIN bldg.CostAspect a ON a.Element.Id = e.ECInstanceId", "ambiguous"),
        ("SELECT * FROM bis.Element e, bis.Element f", "ON condition"),
        ("SELECT * FROM bis.Element e RIGHT JOIN bis.Element f ON 1", "only JOIN / INNER JOIN / LEFT JOIN"),
        ("SELECT * FROM bis.Element WHERE ECInstanceId = 'abc'", "is not an Id64"),
        ("SELECT * FROM bis.Element WHERE ECInstanceId = ?", "parameters"),
        ("SELECT * FROM bis.Element WHERE CodeValue IS (bis.Element)", "may only follow ECClassId"),
        ("SELECT * FROM bis.Element LIMIT -1", "LIMIT takes a non-negative integer"),
        ("SELECT * FROM bis.Element; DROP TABLE im_elements", "exactly one SELECT"),
        ("DELETE FROM bis.Element", "must be an ECSQL SELECT"),
        ("BisCore.01.00.00:Element", "versioned names"),
        ("this is not ecsql", "must be an ECSQL SELECT"),
        ("SELECT * FROM", "ECSQL syntax error"),
        ("SELECT 'unterminated FROM bis.Element", "ECSQL syntax error"),
        ("SELECT ))) FROM ((", "ECSQL syntax error"),
        ("", "empty"),
        ("bis.Nothing", "Unknown class 'bis.Nothing'"),
    ],
)
def test_rejections_are_helpful(conn: sqlite3.Connection, query: str, fragment: str) -> None:
    with pytest.raises(QueryTranslationError) as caught:
        translate(query, M1, conn)
    assert fragment in str(caught.value)


def test_unknown_imodel(conn: sqlite3.Connection) -> None:
    with pytest.raises(QueryTranslationError, match="no ECSchema class data"):
        translate("SELECT * FROM bis.Element", "nope", conn)


def test_unknown_property_lists_valid_ones(conn: sqlite3.Connection) -> None:
    with pytest.raises(QueryTranslationError) as caught:
        translate("SELECT ECInstanceId FROM bldg.Wall WHERE Colour = 'red'", M1, conn)
    message = str(caught.value)
    for name in ("Thickness", "Material", "CodeValue", "UserLabel"):
        assert name in message


def test_query_translation_error_is_a_value_error() -> None:
    assert issubclass(QueryTranslationError, ValueError)


def test_only_with_brackets_and_in_joins(run: Run, elements: list[Element]) -> None:
    walls = {e.id for e in elements if e.class_id == WALL}
    assert ids(run("SELECT ECInstanceId FROM ONLY [Building].[Wall]")) == walls
    assert ids(run("SELECT ECInstanceId FROM bis.Element WHERE ECClassId IS ([Building]:[Wall])")) == walls
    join = "SELECT e.ECInstanceId FROM bldg.Wall e JOIN {} bis.ElementUniqueAspect a ON a.Element.Id = e.ECInstanceId"
    assert run(join.format("ONLY")) == []
    assert run(join.format(""))


def test_class_name_compared_as_string_gets_a_hint(conn: sqlite3.Connection) -> None:
    with pytest.raises(QueryTranslationError, match=r"ECClassId IS \(schema.Class\)"):
        translate("SELECT ECInstanceId FROM bis.Element WHERE ECClassId = 'Building.Wall'", M1, conn)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM BisCore.Element",
        "SELECT ECInstanceId FROM bldg.Wall WHERE Material = 'Brick'",
        "SELECT ECInstanceId, Category.CodeValue FROM bis.GeometricElement3d",
        "SELECT A.Element.Id ECInstanceId, A.Cost FROM bldg.CostAspect A",
        "bldg.FireRatingAspect",
    ],
)
def test_plans_use_indexes_not_full_scans(conn: sqlite3.Connection, query: str) -> None:
    translated = translate(query, M1, conn)
    plan = [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + translated.sql, translated.params)]
    assert plan
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
