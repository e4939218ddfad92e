"""Set-based extraction gives exactly the rows of the per-row Python path (issue 16, item 2).

Every case runs the same mapping twice over the sample iModels (plus elements with awkward values): once set-based
(SQL where the plan allows it) and once with `set_based=False` (the Python reference). Tables, column types, the
stored JSON of every row (byte for byte, so types, nulls and float digits all count), row order and the issues must
be equal; each case also states whether the set-based run really planned its groups in SQL, so a silent fallback to
Python cannot make the comparison trivially true.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any

import pytest

from itwin_insights_mcp.sandbox.engine import extraction, extraction_sql

from ..conftest import BUILDING_ID, SITE_ID

Props = Sequence[Mapping[str, Any]]
TYPES = ("String", "Double", "Integer", "Boolean", "Number")
KEYS = ("Material", "Rank", "Thickness", "IsPrivate", "JsonProperties", "Description", "material", "Weird", "Nope")


def group_prop(name: str, data_type: str, *entries: tuple[str, str, str]) -> dict[str, Any]:
    ec = [{"ecSchemaName": s, "ecClassName": c, "ecPropertyName": p, "ecPropertyType": "String"} for s, c, p in entries]
    return {"kind": "group", "propertyName": name, "dataType": data_type, "ecProperties": ec}


def calc(name: str, kind: str) -> dict[str, Any]:
    return {"kind": "calculated", "propertyName": name, "type": kind}


def custom(name: str, formula: str) -> dict[str, Any]:
    return {"kind": "custom", "propertyName": name, "formula": formula}


CALCULATED = [
    calc(k, k)
    for k in (
        "Length",
        "Area",
        "Volume",
        "BoundingBoxLongestEdgeLength",
        "BoundingBoxIntermediateEdgeLength",
        "BoundingBoxShortestEdgeLength",
        "BoundingBoxDiagonalLength",
        "BoundingBoxLongestFaceDiagonalLength",
        "BoundingBoxIntermediateFaceDiagonalLength",
        "BoundingBoxShortestFaceDiagonalLength",
    )
]
EVERY_KEY_AND_TYPE = [group_prop(f"p{i}_{k}_{t}", t, ("*", "*", k)) for i, k in enumerate(KEYS) for t in TYPES]
ELEMENT_PATHS = [
    group_prop(f"{p.replace('.', '_')}_{t}", t, ("*", "*", p))
    for p in ("CodeValue", "UserLabel", "Category", "Model.Id", "parent", "ECInstanceId", "ECClassId")
    for t in ("String", "Integer", "Double", "Boolean")
]
PRIORITY = [
    group_prop(
        "Thick", "Double", ("Building", "Slab", "Thickness"), ("bldg", "Wall", "Thickness"), ("*", "*", "Width")
    ),
    group_prop("Mat", "String", ("Nope", "Nothing", "Material"), ("BisCore", "GeometricElement3d", "Material")),
    group_prop("Missing", "String", ("bis", "Element", "NoSuchProperty"), ("*", "*", "CodeValue")),
]
FORMULAS = [
    calc("Volume", "Volume"),
    calc("Length", "Length"),
    calc("Area", "Area"),
    group_prop("Thickness", "Double", ("*", "*", "Thickness")),
    group_prop("Rank", "Integer", ("*", "*", "Rank")),
    custom("Cost", "Volume * 120"),
    custom("Mixed", "-Length + Area / 2 - Thickness * 1e-3"),
    custom("Chained", "Cost * 0.5 + Rank"),
    custom("PlusRank", "+Rank"),
    custom("Bare", "Thickness"),
    custom("Big", "Volume * 1e308 * 1e308 - Volume * 1e308 * 1e308"),
    custom("Zero", "Length * 0 * -1"),
    custom("Longer", "Length > Area"),
    custom("Pick", "if(Thickness >= 0.25, Thickness, Rank * 2)"),
    custom("Constant", "PI * 2"),
]
PYTHON_ONLY_FORMULAS = [
    calc("Volume", "Volume"),
    group_prop("Material", "String", ("*", "*", "Material")),
    group_prop("Thickness", "Double", ("*", "*", "Thickness")),
    custom("Label", 'Material + " / " + tostring(Volume)'),
    custom("OrZero", "ifnull(Thickness, 0)"),
    custom("Ratio", "Volume / Thickness"),
    custom("Same", 'Material == "Concrete"'),
]

# (case id, groups as (name, query), properties of every group, expected: the set-based run planned them in SQL)
CASES: list[tuple[str, list[tuple[str, str]], Props, bool]] = [
    ("fixed-only", [("All", "SELECT * FROM bis.Element")], [], True),
    ("every-key-and-type", [("Geo", "SELECT * FROM bis.GeometricElement3d")], EVERY_KEY_AND_TYPE, True),
    ("element-paths", [("All", "SELECT * FROM bis.Element")], ELEMENT_PATHS, True),
    ("calculated", [("Geo", "SELECT * FROM bis.GeometricElement3d")], CALCULATED, True),
    ("priority-and-classes", [("Geo", "SELECT * FROM bis.GeometricElement3d")], PRIORITY, True),
    (
        "queried-columns",
        [
            (
                "Walls",
                "SELECT CodeValue, ECInstanceId, Material FROM bldg.Wall "
                "WHERE Thickness > 0.2 AND CodeValue NOT LIKE 'T-%'",
            )
        ],
        [
            group_prop("Material", "String", ("*", "*", "material")),
            group_prop("Code", "Integer", ("*", "*", "CodeValue")),
        ],
        True,
    ),
    ("formulas", [("Geo", "SELECT * FROM bis.GeometricElement3d")], FORMULAS, True),
    ("string-and-conditional-formulas", [("Geo", "SELECT * FROM bis.GeometricElement3d")], PYTHON_ONLY_FORMULAS, False),
    (
        "aspect",
        [("Walls", "SELECT * FROM bldg.Wall")],
        [group_prop("Rating", "String", ("Building", "FireRatingAspect", "Rating"))],
        False,
    ),
    (
        "nested-and-navigation",
        [("All", "SELECT * FROM bis.Element")],
        [group_prop("Unit", "String", ("*", "*", "JsonProperties.formatter.mastUnit.label"))],
        False,
    ),
    (
        "merged-tables",
        [
            ("Shared", "SELECT * FROM bldg.Wall"),
            ("Shared", "SELECT * FROM bldg.Slab"),
            ("Other", "SELECT * FROM bis.Element WHERE ECInstanceId < 0x30"),
            ("Bad", "SELECT * FROM nope.Nothing"),
        ],
        [group_prop("Material", "String", ("*", "*", "Material")), calc("Volume", "Volume"), custom("C", "Volume*2")],
        True,
    ),
    (
        "shadowing-name",
        [("Geo", "SELECT * FROM bis.GeometricElement3d")],
        [group_prop("userlabel", "String", ("*", "*", "Material"))],
        False,
    ),
]


def _tricky_elements(conn: sqlite3.Connection) -> None:
    """Elements whose values test casting and lookup edges: case-variant keys, escapes, huge and odd numbers."""
    (wall,) = conn.execute(
        "SELECT class_id FROM im_classes WHERE imodel_id = ? AND class_name = 'Wall'", (BUILDING_ID,)
    ).fetchone()
    (first,) = conn.execute("SELECT max(id) FROM im_elements").fetchone()
    props: list[Any] = [
        {"material": "lower first", "Material": "Upper second", "Rank": 9007199254740993},
        {"Material": None, "MATERIAL": "shadowed by null"},
        {"Material": "\ud800 lone surrogate", "Thickness": 0.30000000000000004, "Rank": -(2**63)},
        {"Material": "Béton", "Thickness": 1e16, "Rank": 2**64, "IsPrivate": "yes"},
        {
            "Ran\u212a": "Kelvin sign key",
            "Material": "Kelvin first",
            "Thickness": "  1.5e3 ",
            "Rank": "0x1F",
            "IsPrivate": " no ",
        },
        {"Material": 12.0, "Thickness": True, "Rank": 3.99, "IsPrivate": 0.0, "Weird": [1, 2.50, {"a": None}]},
        {"Material": "x" * 300, "Thickness": -0.0, "Rank": "-7", "IsPrivate": 2, "Weird": {"k": "v"}},
        {"Material": 'quote " and \\ backslash\nnewline', "Thickness": "inf", "Rank": 1e300, "IsPrivate": ""},
        {},
    ]
    rows = []
    for i, p in enumerate(props, start=1):
        box: tuple[float | None, ...] = (0.0, -1.5, 2.0, 3.25, 0.1, 7.0) if i % 3 else (None, 0.0, 0.0, 1, 1, 1)
        length = 2 if i % 2 else None  # an integer into a REAL column
        label = "L" * (40 + i) if i % 4 == 0 else f"Tricky {i}"
        rows.append(
            (
                BUILDING_ID,
                first + i,
                wall,
                f"T-{i}",
                label,
                None,
                None,
                None,
                *box,
                length,
                0.1 * i,
                1e-7 * i,
                json.dumps(p),
            )
        )
    conn.executemany(f"INSERT INTO im_elements VALUES ({', '.join('?' * 18)})", rows)
    conn.commit()


@pytest.fixture
def db(sandbox_db: str) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(sandbox_db)) as conn:
        assert [c[1] for c in conn.execute("PRAGMA table_info(im_elements)")][-1] == "props"
        _tricky_elements(conn)
        extraction.ensure_tables(conn)
        yield conn


def _same(result: Any, reference: Any) -> None:
    """Equal outputs, compared row by row first so a failure names the first differing row."""
    for ours, theirs in zip(result[1], reference[1], strict=False):
        assert ours == theirs
    assert result == reference


def _groups(spec: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"id": f"g{i}", "groupName": name, "query": query} for i, (name, query) in enumerate(spec)]


def _run(conn: sqlite3.Connection, imodel: str, groups: list[dict[str, Any]], props: Props, **kw: Any) -> Any:
    job = f"{kw['set_based']}-{imodel}-{kw.get('max_cell_bytes', 0)}-{bool(kw.get('ecinstance_ids'))}"
    result = extraction.extract_mapping(
        conn,
        job_id=job,
        imodel_id=imodel,
        mapping_id="m",
        groups=groups,
        properties={g["id"]: props for g in groups},
        **kw,
    )
    tables = conn.execute(
        "SELECT table_name, columns, row_count FROM ex_tables WHERE job_id = ? ORDER BY rowid", (job,)
    ).fetchall()
    rows = conn.execute(
        "SELECT table_name, row_no, data FROM ex_rows WHERE job_id = ? ORDER BY table_name, row_no", (job,)
    ).fetchall()
    return tables, rows, [(i.level, i.category, i.message, i.context_id) for i in result.issues]


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per group planned, whether the set-based plan covered it."""
    outcomes: list[bool] = []
    real = extraction_sql.plan_group

    def spy(**kw: Any) -> extraction_sql.SqlGroup | None:
        plan = real(**kw)
        outcomes.append(plan is not None)
        return plan

    monkeypatch.setattr(extraction_sql, "plan_group", spy)
    return outcomes


BUILDING_ONLY = {"queried-columns", "aspect"}  # walls and their aspects exist in the building only
PARAMS = [
    pytest.param(imodel, *case, id=f"{name}-{case[0]}")
    for case in CASES
    for imodel, name in ((BUILDING_ID, "building"), (SITE_ID, "site"))
    if imodel == BUILDING_ID or case[0] not in BUILDING_ONLY
]


@pytest.mark.parametrize(("imodel", "case", "spec", "props", "in_sql"), PARAMS)
def test_set_based_rows_equal_the_python_path(
    db: sqlite3.Connection, planned: list[bool], imodel: str, case: str, spec: Any, props: Props, in_sql: bool
) -> None:
    groups = _groups(spec)
    reference = _run(db, imodel, groups, props, set_based=False)
    assert planned == []
    result = _run(db, imodel, groups, props, set_based=True)
    assert reference[1], "the case must produce rows"
    _same(result, reference)
    assert planned and set(planned) == {in_sql}


@pytest.mark.parametrize("max_cell_bytes", [12, 45, 299])
def test_over_long_cells_and_their_warnings_match(
    db: sqlite3.Connection, planned: list[bool], max_cell_bytes: int
) -> None:
    groups = _groups([("Geo", "SELECT * FROM bis.GeometricElement3d"), ("Geo", "SELECT * FROM bldg.Wall")])
    props = [
        group_prop("Material", "String", ("*", "*", "Material")),
        group_prop("Desc", "String", ("*", "*", "Description")),
    ]
    reference = _run(db, BUILDING_ID, groups, props, set_based=False, max_cell_bytes=max_cell_bytes)
    result = _run(db, BUILDING_ID, groups, props, set_based=True, max_cell_bytes=max_cell_bytes)
    _same(result, reference)
    assert all(planned)
    assert any("INSIGHTS_SANDBOX_MAX_CELL_BYTES" in issue[2] for issue in result[2])
    stored = [json.loads(r[2]) for r in result[1]]
    bounded = [row[i] for row in stored for i in (2, 5, 6)]  # UserLabel, Material, Desc
    assert all(len(v.encode()) <= max_cell_bytes for v in bounded if v is not None)


def test_instance_filter_matches(db: sqlite3.Connection, planned: list[bool]) -> None:
    ids = [
        r[0]
        for r in db.execute(
            "SELECT printf('0x%x', id) FROM im_elements WHERE imodel_id = ? AND id % 7 = 0", (BUILDING_ID,)
        )
    ]
    groups = _groups([("Geo", "SELECT * FROM bis.GeometricElement3d")])
    props = [*CALCULATED[:3], group_prop("Material", "String", ("*", "*", "Material"))]
    reference = _run(db, BUILDING_ID, groups, props, set_based=False, ecinstance_ids=ids)
    result = _run(db, BUILDING_ID, groups, props, set_based=True, ecinstance_ids=ids)
    _same(result, reference)
    assert 0 < len(result[1]) < len(ids)
    assert planned == [True]


def test_the_tricky_values_reach_both_paths(db: sqlite3.Connection) -> None:
    """The awkward elements are really in the compared output (lone surrogate scrubbed, first key wins)."""
    groups = _groups([("Walls", "SELECT * FROM bldg.Wall")])
    props = [group_prop("Material", "String", ("*", "*", "Material")), group_prop("Rank", "String", ("*", "*", "rank"))]
    _, rows, _ = _run(db, BUILDING_ID, groups, props, set_based=True)
    materials = [json.loads(r[2])[5] for r in rows]
    ranks = [json.loads(r[2])[6] for r in rows]
    assert "lower first" in materials
    assert "\ufffd lone surrogate" in materials
    assert "12.0" in materials
    assert "Kelvin sign key" in ranks  # Python's str.lower() folds the Kelvin sign; SQLite's lower() would not
    assert sum(1 for _ in itertools.filterfalse(lambda m: m is not None, materials)) >= 2
