"""Tests for the sample iModel generator and the discovery records (sandbox/imodels/)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from itwin_insights_mcp.sandbox import imodels as im

BUILDING = "11111111-1111-1111-1111-111111111111"
SITE = "22222222-2222-2222-2222-222222222222"
TABLES = {
    "im_classes": "imodel_id, class_id",
    "im_class_properties": "imodel_id, class_id, property_name",
    "im_elements": "imodel_id, id",
    "im_aspects": "imodel_id, id",
}


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def sample() -> Iterator[sqlite3.Connection]:
    """A database holding a 2,000-element building and a 300-element site."""
    connection = sqlite3.connect(":memory:")
    im.generate_imodel(connection, BUILDING, elements=2000, seed=7)
    im.generate_site_imodel(connection, SITE, elements=300, seed=7)
    yield connection
    connection.close()


def _digest(connection: sqlite3.Connection) -> str:
    h = hashlib.sha256()
    for table, order in TABLES.items():
        for row in connection.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            h.update(repr(row).encode())
    return h.hexdigest()


def _overhead(kind: im.IModelKind) -> int:
    """Root subject + dictionary partition + physical partitions + categories."""
    return 2 + {"building": 3 + 10, "site": 2 + 6}[kind]


def _class_counts(connection: sqlite3.Connection, imodel_id: str, table: str = "im_elements") -> Counter[str]:
    rows = connection.execute(
        f"SELECT c.schema_name || '.' || c.class_name, COUNT(*) FROM {table} t "
        "JOIN im_classes c ON c.imodel_id = t.imodel_id AND c.class_id = t.class_id "
        "WHERE t.imodel_id = ? GROUP BY 1",
        (imodel_id,),
    )
    return Counter({str(name): int(count) for name, count in rows})


def _elements(connection: sqlite3.Connection, imodel_id: str, class_name: str) -> list[sqlite3.Row]:
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(
            "SELECT * FROM im_elements WHERE imodel_id = ? AND class_id = ? ORDER BY id",
            (imodel_id, im.CLASS_DEFS_BY_NAME[class_name].class_id),
        ).fetchall()
    finally:
        connection.row_factory = None


# ------------------------------------------------------------------ determinism


def test_generation_is_deterministic() -> None:
    digests = []
    for _ in range(2):
        connection = sqlite3.connect(":memory:")
        im.generate_imodel(connection, BUILDING, elements=1500, seed=3)
        im.generate_site_imodel(connection, SITE, elements=200, seed=3)
        digests.append(_digest(connection))
        connection.close()
    assert digests[0] == digests[1]


def test_seed_changes_the_data_but_not_the_counts(conn: sqlite3.Connection) -> None:
    im.generate_imodel(conn, BUILDING, elements=800, seed=1)
    first, counts = _digest(conn), _class_counts(conn, BUILDING)
    im.generate_imodel(conn, BUILDING, elements=800, seed=2)
    assert _digest(conn) != first
    assert _class_counts(conn, BUILDING) == counts


def test_generate_replaces_existing_rows(conn: sqlite3.Connection) -> None:
    first = im.generate_imodel(conn, BUILDING, elements=500)
    digest = _digest(conn)
    second = im.generate_imodel(conn, BUILDING, elements=500)
    assert first == second == 500 + _overhead("building")
    assert _digest(conn) == digest


# ------------------------------------------------------------------------ counts


@pytest.mark.parametrize("elements", [0, 1, 7, 999, 3000])
@pytest.mark.parametrize("kind", ["building", "site"])
def test_planned_counts_sum_to_elements(kind: im.IModelKind, elements: int) -> None:
    counts = im.planned_counts(kind, elements)
    assert sum(counts.values()) == elements
    assert all(n >= 0 for n in counts.values())


def test_planned_counts_rejects_negative() -> None:
    with pytest.raises(ValueError, match="elements"):
        im.planned_counts("building", -1)


@pytest.mark.parametrize(("imodel_id", "kind", "elements"), [(BUILDING, "building", 2000), (SITE, "site", 300)])
def test_counts_per_class_match_plan(
    sample: sqlite3.Connection, imodel_id: str, kind: im.IModelKind, elements: int
) -> None:
    counts = _class_counts(sample, imodel_id)
    for class_name, planned in im.planned_counts(kind, elements).items():
        assert counts[class_name] == planned, class_name
    assert counts["BisCore.Subject"] == 1
    assert counts["BisCore.DefinitionPartition"] == 1
    assert sum(counts.values()) == elements + _overhead(kind)


def test_generate_returns_rows_written(conn: sqlite3.Connection) -> None:
    written = im.generate_imodel(conn, BUILDING, elements=1234)
    stored = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (BUILDING,)).fetchone()[0]
    assert written == stored == 1234 + _overhead("building")


def test_twenty_thousand_elements(conn: sqlite3.Connection) -> None:
    written = im.generate_imodel(conn, BUILDING, elements=20_000)
    assert written == 20_000 + _overhead("building")
    levels = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT json_extract(props, '$.Level') FROM im_elements WHERE imodel_id = ? AND class_id = ?",
            (BUILDING, im.CLASS_DEFS_BY_NAME["Building.Wall"].class_id),
        )
    }
    assert len(levels) == im.storey_count(20_000)
    assert _class_counts(conn, BUILDING)["Building.Wall"] == im.planned_counts("building", 20_000)["Building.Wall"]


# ---------------------------------------------------------------------- classes


def test_element_chains_end_at_element_and_aspect_chains_at_element_aspect(sample: sqlite3.Connection) -> None:
    rows = sample.execute("SELECT class_id, kind FROM im_classes WHERE imodel_id = ?", (BUILDING,)).fetchall()
    assert len(rows) == len(im.CLASS_DEFS)
    for class_id, kind in rows:
        chain = im.class_chain(sample, BUILDING, class_id)
        root = ("BisCore", "Element") if kind == "element" else ("BisCore", "ElementAspect")
        assert chain[-1] == root


def test_wall_chain_is_the_bis_chain(sample: sqlite3.Connection) -> None:
    wall = im.CLASS_DEFS_BY_NAME["Building.Wall"].class_id
    assert im.class_chain(sample, BUILDING, wall) == [
        ("Building", "Wall"),
        ("Building", "BuildingElement"),
        ("BisCore", "PhysicalElement"),
        ("BisCore", "SpatialElement"),
        ("BisCore", "GeometricElement3d"),
        ("BisCore", "GeometricElement"),
        ("BisCore", "Element"),
    ]
    assert im.class_chain(sample, BUILDING, 0xDEAD) == []


def test_class_names_are_case_insensitive_and_aliases_set(sample: sqlite3.Connection) -> None:
    row = sample.execute(
        "SELECT class_id, schema_alias FROM im_classes WHERE imodel_id = ? AND schema_name = 'building' "
        "AND class_name = 'WALL'",
        (BUILDING,),
    ).fetchone()
    assert row == (0x101, "bldg")
    aliases = dict(sample.execute("SELECT DISTINCT schema_name, schema_alias FROM im_classes"))
    assert aliases == {"BisCore": "bis", "Building": "bldg", "Plumbing": "plmb", "Site": "site"}


def test_no_property_is_declared_twice_along_a_chain() -> None:
    for cls in im.CLASS_DEFS:
        names: list[str] = []
        current: im.ClassDef | None = cls
        while current is not None:
            names.extend(name.lower() for name, _ in current.properties)
            current = im.CLASS_DEFS_BY_NAME[current.base] if current.base else None
        assert len(names) == len(set(names)), cls.full_name


def test_props_use_declared_names_and_types(sample: sqlite3.Connection) -> None:
    declared: dict[int, dict[str, str]] = {}
    for cls in im.CLASS_DEFS:
        props: dict[str, str] = {}
        current: im.ClassDef | None = cls
        while current is not None:
            props.update(current.properties)
            current = im.CLASS_DEFS_BY_NAME[current.base] if current.base else None
        declared[cls.class_id] = props
    python_types = {"String": str, "Double": float, "Integer": int, "Boolean": bool, "Json": dict}
    for table in ("im_elements", "im_aspects"):
        for class_id, text in sample.execute(f"SELECT class_id, props FROM {table}"):
            for name, value in json.loads(text).items():
                ptype = declared[class_id][name]
                assert name not in im.ELEMENT_COLUMN_PROPERTIES
                assert ptype != "Navigation"
                expected = python_types[ptype]
                if expected is float:
                    assert isinstance(value, (int, float)), (name, value)
                    assert not isinstance(value, bool), (name, value)
                else:
                    assert type(value) is expected, (name, value)


# ------------------------------------------------------------- references, ids


def test_navigation_columns_point_at_the_right_classes(sample: sqlite3.Connection) -> None:
    for imodel_id in (BUILDING, SITE):
        categories = _class_ids_of(sample, imodel_id, "BisCore.SpatialCategory")
        partitions = _class_ids_of(sample, imodel_id, "BisCore.PhysicalPartition")
        geometric = sample.execute(
            "SELECT category_id, model_id FROM im_elements WHERE imodel_id = ? AND bbox_low_x IS NOT NULL",
            (imodel_id,),
        ).fetchall()
        assert geometric
        assert all(cat in categories and model in partitions for cat, model in geometric)
    walls = {row["id"] for row in _elements(sample, BUILDING, "Building.Wall")}
    for class_name in ("Building.Door", "Building.Window"):
        assert all(row["parent_id"] in walls for row in _elements(sample, BUILDING, class_name))


def _class_ids_of(connection: sqlite3.Connection, imodel_id: str, class_name: str) -> set[int]:
    class_id = im.CLASS_DEFS_BY_NAME[class_name].class_id
    rows = connection.execute("SELECT id FROM im_elements WHERE imodel_id = ? AND class_id = ?", (imodel_id, class_id))
    return {int(row[0]) for row in rows}


def test_category_code_values_of_the_building(sample: sqlite3.Connection) -> None:
    rows = sample.execute(
        "SELECT c.code_value, COUNT(*) FROM im_elements e JOIN im_elements c "
        "ON c.imodel_id = e.imodel_id AND c.id = e.category_id WHERE e.imodel_id = ? GROUP BY 1",
        (BUILDING,),
    )
    per_category = dict(rows)
    plan = im.planned_counts("building", 2000)
    assert per_category["Exterior Walls"] + per_category["Interior Walls"] == plan["Building.Wall"]
    assert per_category["Rooms"] == plan["Building.Space"]


def test_id64_round_trip(sample: sqlite3.Connection) -> None:
    assert im.id64(im.local_id(1)) == "0x20000000001"
    assert im.id64(0) == "0"
    assert im.parse_id64("0X20000000001") == im.local_id(1)
    assert im.parse_id64("0x1") == im.ROOT_SUBJECT_ID
    for (element_id,) in sample.execute("SELECT id FROM im_elements UNION ALL SELECT id FROM im_aspects"):
        text = im.id64(element_id)
        assert re.fullmatch(r"0x[1-9a-f][0-9a-f]*", text)
        assert im.parse_id64(text) == element_id


@pytest.mark.parametrize("bad", ["", "0x", "12", "0xg1", "0x-1", "0x+1", "0x1_0", "x10", "0x1" + "0" * 16])
def test_parse_id64_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="Id64"):
        im.parse_id64(bad)


def test_id64_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="Id64"):
        im.id64(-1)
    with pytest.raises(ValueError, match="Id64"):
        im.id64(1 << 64)


def test_ids_are_unique_across_elements_and_aspects(sample: sqlite3.Connection) -> None:
    query = "SELECT id FROM im_elements WHERE imodel_id = ? UNION ALL SELECT id FROM im_aspects WHERE imodel_id = ?"
    ids = [row[0] for row in sample.execute(query, (BUILDING, BUILDING))]
    assert len(ids) == len(set(ids))


def test_category_ids_do_not_depend_on_size(conn: sqlite3.Connection, sample: sqlite3.Connection) -> None:
    im.generate_imodel(conn, BUILDING, elements=50, seed=99)
    query = "SELECT id, code_value FROM im_elements WHERE imodel_id = ? AND class_id IN (0x49, 0x4D) ORDER BY id"
    assert conn.execute(query, (BUILDING,)).fetchall() == sample.execute(query, (BUILDING,)).fetchall()


# --------------------------------------------------------------------- aspects


def test_aspects_reference_elements_and_unique_aspects_are_unique(sample: sqlite3.Connection) -> None:
    for imodel_id in (BUILDING, SITE):
        orphans = sample.execute(
            "SELECT COUNT(*) FROM im_aspects a LEFT JOIN im_elements e "
            "ON e.imodel_id = a.imodel_id AND e.id = a.element_id WHERE a.imodel_id = ? AND e.id IS NULL",
            (imodel_id,),
        ).fetchone()[0]
        assert orphans == 0
    per_element = Counter(
        (int(class_id), f"{imodel_id}/{element_id}")
        for imodel_id, class_id, element_id in sample.execute("SELECT imodel_id, class_id, element_id FROM im_aspects")
    )
    unique = {im.CLASS_DEFS_BY_NAME[n].class_id for n in ("Building.FireRatingAspect", "Building.CostAspect")}
    multi = im.CLASS_DEFS_BY_NAME["Building.MaintenanceRecordAspect"].class_id
    assert all(n == 1 for (class_id, _), n in per_element.items() if class_id in unique)
    multi_counts = Counter(n for (class_id, _), n in per_element.items() if class_id == multi)
    assert multi_counts[1] > 0
    assert multi_counts[2] > 0


def test_fire_rating_aspect_agrees_with_element(sample: sqlite3.Connection) -> None:
    rows = sample.execute(
        "SELECT json_extract(e.props, '$.FireRating'), json_extract(a.props, '$.Rating') FROM im_aspects a "
        "JOIN im_elements e ON e.imodel_id = a.imodel_id AND e.id = a.element_id WHERE a.class_id = ?",
        (im.CLASS_DEFS_BY_NAME["Building.FireRatingAspect"].class_id,),
    ).fetchall()
    assert rows
    assert all(element == aspect for element, aspect in rows)


# --------------------------------------------------------------------- geometry

BOX_RULES: dict[str, im.LengthRule] = {
    "Building.Wall": "longest_edge",
    "Building.Column": "longest_edge",
    "Building.Beam": "longest_edge",
    "Site.Curb": "longest_edge",
    "Building.Slab": "largest_face_perimeter",
    "Building.Door": "largest_face_perimeter",
    "Building.Window": "largest_face_perimeter",
    "Site.Pavement": "largest_face_perimeter",
    "Building.Space": "footprint_perimeter",
}
CYLINDERS = ("Plumbing.Pipe", "Plumbing.Fitting", "Plumbing.Manhole", "Site.LightPole")


def _extents(row: sqlite3.Row) -> tuple[float, float, float]:
    return (
        row["bbox_high_x"] - row["bbox_low_x"],
        row["bbox_high_y"] - row["bbox_low_y"],
        row["bbox_high_z"] - row["bbox_low_z"],
    )


@pytest.mark.parametrize("class_name", sorted(BOX_RULES))
def test_box_measures_follow_the_bbox(sample: sqlite3.Connection, class_name: str) -> None:
    imodel_id = SITE if class_name.startswith("Site.") else BUILDING
    rows = _elements(sample, imodel_id, class_name)
    assert rows
    for row in rows:
        dx, dy, dz = _extents(row)
        assert min(dx, dy, dz) > 0
        assert row["volume"] == pytest.approx(dx * dy * dz, abs=1e-9)
        assert row["area"] == pytest.approx(2 * (dx * dy + dy * dz + dx * dz), abs=1e-9)
        a, b, _ = sorted((dx, dy, dz), reverse=True)
        expected_length = {
            "longest_edge": a,
            "largest_face_perimeter": 2 * (a + b),
            "footprint_perimeter": 2 * (dx + dy),
        }[BOX_RULES[class_name]]
        assert row["length"] == pytest.approx(expected_length, abs=1e-9)


def test_linear_members_are_longest_along_their_length(sample: sqlite3.Connection) -> None:
    for row in _elements(sample, BUILDING, "Building.Beam"):
        assert row["length"] == pytest.approx(json.loads(row["props"])["Length"], abs=1e-9)
    for row in _elements(sample, BUILDING, "Building.Column"):
        assert row["length"] == pytest.approx(json.loads(row["props"])["Height"], abs=1e-9)
    for row in _elements(sample, BUILDING, "Building.Wall"):
        dx, dy, _ = _extents(row)
        assert row["length"] == pytest.approx(max(dx, dy), abs=1e-9)


@pytest.mark.parametrize("class_name", CYLINDERS)
def test_cylinder_measures_follow_diameter_and_axis(sample: sqlite3.Connection, class_name: str) -> None:
    imodel_id = BUILDING if class_name in ("Plumbing.Fitting",) else SITE
    rows = _elements(sample, imodel_id, class_name)
    assert rows
    for row in rows:
        props = json.loads(row["props"])
        r = props["Diameter"] / 2
        extents = sorted(_extents(row))
        axis = row["length"]
        # two extents equal the diameter, the third is the axis length
        assert sum(1 for e in extents if math.isclose(e, 2 * r, abs_tol=1e-9)) >= 2
        assert any(math.isclose(e, axis, abs_tol=1e-9) for e in extents)
        assert row["volume"] == pytest.approx(math.pi * r * r * axis, abs=1e-9)
        assert row["area"] == pytest.approx(2 * math.pi * r * axis + 2 * math.pi * r * r, abs=1e-9)
        if "Length" in props:
            assert axis == pytest.approx(props["Length"], abs=1e-9)


def test_hosted_doors_and_windows_lie_inside_their_wall(sample: sqlite3.Connection) -> None:
    walls = {row["id"]: row for row in _elements(sample, BUILDING, "Building.Wall")}
    for class_name in ("Building.Door", "Building.Window"):
        for row in _elements(sample, BUILDING, class_name):
            host = walls[row["parent_id"]]
            for axis in "xyz":
                assert host[f"bbox_low_{axis}"] - 1e-9 <= row[f"bbox_low_{axis}"]
                assert row[f"bbox_high_{axis}"] <= host[f"bbox_high_{axis}"] + 1e-9


def test_non_geometric_elements_have_null_geometry(sample: sqlite3.Connection) -> None:
    class_ids = tuple(
        im.CLASS_DEFS_BY_NAME[n].class_id
        for n in (
            "BisCore.Subject",
            "BisCore.DefinitionPartition",
            "BisCore.PhysicalPartition",
            "BisCore.SpatialCategory",
        )
    )
    rows = sample.execute(
        "SELECT bbox_low_x, bbox_high_z, length, area, volume, category_id FROM im_elements "
        f"WHERE class_id IN ({','.join('?' * len(class_ids))})",
        class_ids,
    ).fetchall()
    assert len(rows) == 2 * 1 + 2 * 1 + 3 + 2 + 10 + 6
    assert all(value is None for row in rows for value in row)


def test_json_properties_are_nested_objects(sample: sqlite3.Connection) -> None:
    row = sample.execute(
        "SELECT json_extract(props, '$.JsonProperties.Plumbing.level'), json_type(props, '$.JsonProperties') "
        "FROM im_elements WHERE imodel_id = ? AND class_id = ? ORDER BY id LIMIT 1",
        (BUILDING, im.CLASS_DEFS_BY_NAME["Plumbing.Pipe"].class_id),
    ).fetchone()
    assert row == ("L00", "object")
    label = sample.execute(
        "SELECT json_extract(m.props, '$.JsonProperties.formatter.mastUnit.label') FROM im_elements e "
        "JOIN im_elements m ON m.imodel_id = e.imodel_id AND m.id = e.model_id "
        "WHERE e.imodel_id = ? AND e.class_id = ? LIMIT 1",
        (BUILDING, im.CLASS_DEFS_BY_NAME["Building.Wall"].class_id),
    ).fetchone()
    assert label == ("m",)


# ----------------------------------------------------------------- ensure/sample


def test_ensure_sample_imodels_is_idempotent(conn: sqlite3.Connection) -> None:
    im.ensure_sample_imodels(conn)
    digest = _digest(conn)
    im.ensure_sample_imodels(conn)
    assert _digest(conn) == digest
    assert not conn.in_transaction
    for imodel in im.SANDBOX_IMODELS:
        stored = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (imodel.id,)).fetchone()[0]
        assert stored == imodel.elements + _overhead(imodel.kind)


def test_ensure_sample_imodels_joins_an_open_transaction(conn: sqlite3.Connection) -> None:
    im.create_schema(conn)
    conn.execute("BEGIN")
    im.ensure_sample_imodels(conn)
    assert conn.in_transaction
    conn.rollback()
    assert conn.execute("SELECT COUNT(*) FROM im_elements").fetchone()[0] == 0


def test_ensure_fills_only_missing_imodels(conn: sqlite3.Connection) -> None:
    im.ensure_sample_imodels(conn)
    building, site = im.SANDBOX_IMODELS
    conn.execute("DELETE FROM im_elements WHERE imodel_id = ?", (site.id,))
    conn.commit()
    before = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (building.id,)).fetchone()
    im.ensure_sample_imodels(conn)
    after = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (building.id,)).fetchone()
    assert before == after
    restored = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (site.id,)).fetchone()[0]
    assert restored == site.elements + _overhead("site")


# -------------------------------------------------------------------- discovery


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def test_discovery_records_have_valid_guids_and_links() -> None:
    itwin_ids = {itwin.id for itwin in im.SANDBOX_ITWINS}
    assert all(_is_guid(i) for i in itwin_ids)
    (itwin,) = im.SANDBOX_ITWINS
    wire = itwin.to_wire()
    assert (wire["class"], wire["subClass"], wire["status"], wire["displayName"]) == (
        "Endeavor",
        "Project",
        "Active",
        "Sandbox Project",
    )
    names = [imodel.display_name for imodel in im.SANDBOX_IMODELS]
    assert names == ["Sample Office Building", "Sample Site Utilities"]
    for imodel in im.SANDBOX_IMODELS:
        assert _is_guid(imodel.id)
        assert imodel.itwin_id in itwin_ids
        body = imodel.to_wire()
        assert body["state"] == "initialized"
        assert body["isSecured"] is False
        assert body["extent"] is None
        assert body["containersEnabled"] == 0


def test_guids_are_stable() -> None:
    # uuid5 from fixed names: these literals must never change (persisted sandbox data refers to them).
    assert im.SANDBOX_ITWINS[0].id == str(uuid.uuid5(im.SANDBOX_NAMESPACE, "itwin:sandbox-project"))
    assert im.SANDBOX_IMODELS[0].id == str(uuid.uuid5(im.SANDBOX_NAMESPACE, "imodel:sample-office-building"))


def test_changesets_form_a_chain() -> None:
    for imodel in im.SANDBOX_IMODELS:
        changesets = im.changesets_for(imodel.id)
        assert len(changesets) >= 3
        assert [cs.index for cs in changesets] == list(range(1, len(changesets) + 1))
        assert changesets[0].parent_id == ""
        assert changesets[0].containing_changes == 1
        for previous, current in itertools.pairwise(changesets):
            assert current.parent_id == previous.id
            assert current.push_date_time > previous.push_date_time
        for cs in changesets:
            assert re.fullmatch(r"[0-9a-f]{40}", cs.id)
            wire = cs.to_wire()
            assert wire["displayName"] == str(cs.index)
            assert wire["state"] == "fileUploaded"
            assert wire["briefcaseId"] == im.BRIEFCASE_ID
        assert imodel.last_changeset_push_date_time is not None
        assert imodel.last_changeset_push_date_time.rstrip("Z") == changesets[-1].push_date_time.removesuffix("+00:00")
        (version,) = im.named_versions_for(imodel.id)
        assert (version.changeset_id, version.changeset_index) == (changesets[-1].id, changesets[-1].index)
    assert im.changesets_for("00000000-0000-0000-0000-000000000000") == ()
    assert im.named_versions_for("nope") == ()
