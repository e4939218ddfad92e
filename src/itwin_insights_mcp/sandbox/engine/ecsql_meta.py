"""The ECDbMeta schema (alias ``meta``) of a sample iModel, as temp tables the ECSQL engine queries, plus the
``ec_classname``/``ec_classid`` functions and the relationship classes behind navigation values.

``install(conn, imodel_id)`` builds, on one (per-query) connection, a temp table ``meta_<Class>`` per ECDbMeta class
from ``im_classes``/``im_class_properties`` and registers the two functions; ``META_CLASSES`` tells the translator
which properties each class has. Ids, names and enumeration values follow the reference's ECDbMeta 04.00.03
(imodel-query-api.md §7); units are the sample data's (metres, m², m³, docs/sample-imodels.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .ecsql import MetaClass

__all__ = ["META_CLASSES", "NAV_RELATIONSHIPS", "UNITS", "ClassNames", "install"]

_META_SCHEMA: Final = ("ECDbMeta", "meta")
_SCHEMA_IDS: Final = {"BisCore": 0x1, "Building": 0x2, "Plumbing": 0x3, "Site": 0x4, "ECDbMeta": 0x5}
_I, _S, _N, _B, _D = "Id", "String", "Navigation", "Boolean", "Double"
_INT: Final = "Integer"

#: ECDbMeta classes the sandbox answers, with their properties (name, type) in ECDbMeta's order.
META_CLASSES: Final[tuple[MetaClass, ...]] = (
    MetaClass(0x30, *_META_SCHEMA, "ECSchemaDef", (
        ("Name", _S), ("DisplayLabel", _S), ("Description", _S), ("Alias", _S),
        ("VersionMajor", _INT), ("VersionWrite", _INT), ("VersionMinor", _INT))),
    MetaClass(0x31, *_META_SCHEMA, "ECClassDef", (
        ("Schema", _N), ("Name", _S), ("DisplayLabel", _S), ("Description", _S), ("Type", _INT),
        ("Modifier", _INT))),
    MetaClass(0x32, *_META_SCHEMA, "ECPropertyDef", (
        ("Class", _N), ("Name", _S), ("DisplayLabel", _S), ("Description", _S), ("IsReadonly", _B),
        ("Ordinal", _INT), ("Kind", _INT), ("PrimitiveType", _INT), ("ExtendedTypeName", _S),
        ("KindOfQuantity", _N), ("NavigationRelationshipClass", _N))),
    MetaClass(0x33, *_META_SCHEMA, "KindOfQuantityDef", (
        ("Schema", _N), ("Name", _S), ("DisplayLabel", _S), ("Description", _S), ("PersistenceUnit", _S),
        ("RelativeError", _D))),
    MetaClass(0x34, *_META_SCHEMA, "ClassHasBaseClasses", (
        ("SourceECInstanceId", _I), ("SourceECClassId", _I), ("TargetECInstanceId", _I), ("TargetECClassId", _I),
        ("Ordinal", _INT))),
    MetaClass(0x35, *_META_SCHEMA, "ClassHasAllBaseClasses", (
        ("SourceECInstanceId", _I), ("SourceECClassId", _I), ("TargetECInstanceId", _I),
        ("TargetECClassId", _I))),
    MetaClass(0x36, *_META_SCHEMA, "SchemaOwnsClasses", (
        ("SourceECInstanceId", _I), ("SourceECClassId", _I), ("TargetECInstanceId", _I),
        ("TargetECClassId", _I))),
    MetaClass(0x37, *_META_SCHEMA, "ClassOwnsLocalProperties", (
        ("SourceECInstanceId", _I), ("SourceECClassId", _I), ("TargetECInstanceId", _I),
        ("TargetECClassId", _I))),
)  # fmt: skip
_META_BY_NAME: Final = {m.name: m for m in META_CLASSES}

#: Relationship classes behind navigation properties (RelECClassId of a navigation value), all in BisCore/ECDbMeta.
_RELATIONSHIPS: Final = (
    (0x70, "BisCore", "bis", "ModelContainsElements"),
    (0x71, "BisCore", "bis", "ElementOwnsChildElements"),
    (0x72, "BisCore", "bis", "GeometricElement3dIsInCategory"),
    (0x73, "BisCore", "bis", "ElementOwnsUniqueAspect"),
    (0x74, "BisCore", "bis", "ElementOwnsMultiAspects"),
)
#: Navigation property -> its relationship class id.
NAV_RELATIONSHIPS: Final = {
    "Model": 0x70,
    "Parent": 0x71,
    "Category": 0x72,
    "Element": 0x73,
    "Schema": 0x36,
    "Class": 0x37,
}

#: Property name -> (KindOfQuantity, persistence unit): what the sample data's numbers are measured in.
UNITS: Final[dict[str, tuple[str, str]]] = {
    "Thickness": ("LENGTH", "Units:M"),
    "Height": ("LENGTH", "Units:M"),
    "Width": ("LENGTH", "Units:M"),
    "Depth": ("LENGTH", "Units:M"),
    "Length": ("LENGTH", "Units:M"),
    "Diameter": ("LENGTH", "Units:M"),
    "FloorArea": ("AREA", "Units:SQ_M"),
    "Hours": ("TIME", "Units:HR"),
    "UValue": ("THERMAL_TRANSMITTANCE", "Units:W_PER_SQ_M_K"),
    "Wattage": ("POWER", "Units:W"),
}
_KOQ_IDS: Final = {name: 0x90 + i for i, name in enumerate(sorted({k for k, _ in UNITS.values()}))}
_PRIMITIVE: Final = {"Binary": 257, "Boolean": 513, "DateTime": 769, "Double": 1025, "Integer": 1281, "Long": 1537,
                     "String": 2305, "Json": 2305}  # fmt: skip
_ABSTRACT: Final = {"Element", "GeometricElement", "GeometricElement3d", "SpatialElement", "PhysicalElement",
                    "InformationContentElement", "DefinitionElement", "InformationReferenceElement",
                    "InformationPartitionElement", "ElementAspect", "ElementUniqueAspect", "ElementMultiAspect",
                    "BuildingElement", "DistributionElement", "SiteElement", "SpatialLocationElement"}  # fmt: skip


@dataclass(frozen=True)
class ClassNames:
    """Every class id of one iModel (its ECSchema classes, relationships and ECDbMeta) -> (schema, alias, name)."""

    names: dict[int, tuple[str, str, str]]

    def name(self, class_id: object, fmt: object = 0) -> str | None:
        """``ec_classname(id[, fmt])``: fmt 0 's:c' (default), 1 'a:c', 2 's', 3 'a', 4 'c', 5 's.c', 6 'a.c'."""
        try:
            key = int(class_id) if not isinstance(class_id, str) else int(class_id, 0)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        found = self.names.get(key)
        if found is None:
            return None
        schema, alias, name = found
        forms = {0: f"{schema}:{name}", 1: f"{alias}:{name}", 2: schema, 3: alias, 4: name,
                 5: f"{schema}.{name}", 6: f"{alias}.{name}"}  # fmt: skip
        by_text = {"s:c": 0, "a:c": 1, "s": 2, "a": 3, "c": 4, "s.c": 5, "a.c": 6}
        index = by_text.get(fmt.lower(), -1) if isinstance(fmt, str) else fmt
        return forms.get(index) if isinstance(index, int) else None

    def class_id(self, first: object, second: object = None) -> int | None:
        """``ec_classid('schema.Class')`` or ``ec_classid('schema', 'Class')``; schema name or alias, any case."""
        if not isinstance(first, str):
            return None
        if second is None:
            sep = "." if "." in first else ":"
            schema, _, name = first.partition(sep)
        elif isinstance(second, str):
            schema, name = first, second
        else:
            return None
        s, n = schema.lower(), name.lower()
        for cid, (sn, sa, cn) in self.names.items():
            if s in (sn.lower(), sa.lower()) and cn.lower() == n:
                return cid
        return None


def _classes(conn: sqlite3.Connection, imodel_id: str) -> list[tuple[int, str, str, str, int | None, str]]:
    rows = conn.execute(
        "SELECT class_id, schema_name, schema_alias, class_name, base_class_id, kind FROM im_classes "
        "WHERE imodel_id = ? ORDER BY class_id",
        (imodel_id,),
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else int(r[4]), str(r[5])) for r in rows]


def _create(conn: sqlite3.Connection, meta: MetaClass, rows: Sequence[tuple[object, ...]]) -> None:
    columns = ", ".join(f'"{c}"' for c in ("ECInstanceId", "ECClassId", *(n for n, _ in meta.properties)))
    conn.execute(f"CREATE TEMP TABLE meta_{meta.name} ({columns})")
    marks = ", ".join("?" * (2 + len(meta.properties)))
    conn.executemany(f"INSERT INTO meta_{meta.name} VALUES ({marks})", rows)  # noqa: S608 - fixed names


def install(conn: sqlite3.Connection, imodel_id: str) -> ClassNames:
    """Create the ``meta_*`` temp tables for ``imodel_id`` on ``conn`` and register ``ec_classname``/``ec_classid``."""
    classes = _classes(conn, imodel_id)
    props = conn.execute(
        "SELECT class_id, property_name, property_type FROM im_class_properties WHERE imodel_id = ? "
        "ORDER BY class_id, rowid",
        (imodel_id,),
    ).fetchall()
    names: dict[int, tuple[str, str, str]] = {c[0]: (c[1], c[2], c[3]) for c in classes}
    names.update({cid: (schema, alias, name) for cid, schema, alias, name in _RELATIONSHIPS})
    names.update({m.class_id: (m.schema, m.alias, m.name) for m in META_CLASSES})
    lookup = ClassNames(names)
    conn.create_function("ec_classname", 1, lookup.name, deterministic=True)
    conn.create_function("ec_classname", 2, lookup.name, deterministic=True)
    conn.create_function("ec_classid", 1, lookup.class_id, deterministic=True)
    conn.create_function("ec_classid", 2, lookup.class_id, deterministic=True)

    m = _META_BY_NAME
    schemas = sorted({(c[1], c[2]) for c in classes} | {_META_SCHEMA}, key=lambda s: _SCHEMA_IDS.get(s[0], 0xFF))
    _create(conn, m["ECSchemaDef"], [(_SCHEMA_IDS.get(s, 0xFF), 0x30, s, s, None, a, 1, 0, 0) for s, a in schemas])
    class_rows: list[tuple[object, ...]] = []
    for cid, schema, _alias, name, _base, _kind in classes:
        modifier = 1 if name in _ABSTRACT else 0
        class_rows.append((cid, 0x31, _SCHEMA_IDS.get(schema, 0xFF), name, name, None, 0, modifier))
    for cid, schema, _alias, name in _RELATIONSHIPS:
        class_rows.append((cid, 0x31, _SCHEMA_IDS[schema], name, name, None, 1, 2))
    for meta in META_CLASSES:
        class_rows.append((meta.class_id, 0x31, _SCHEMA_IDS["ECDbMeta"], meta.name, meta.name, None, 0, 2))
    _create(conn, m["ECClassDef"], class_rows)

    prop_rows: list[tuple[object, ...]] = []
    ordinals: dict[int, int] = {}
    declared = [(int(r[0]), str(r[1]), str(r[2])) for r in props]
    declared += [(meta.class_id, n, t if t != "Id" else "Long") for meta in META_CLASSES for n, t in meta.properties]
    for pid, (cid, name, ptype) in enumerate(declared, start=0x1000):
        ordinal = ordinals.get(cid, 0)
        ordinals[cid] = ordinal + 1
        nav = ptype == "Navigation"
        kind = 4 if nav else 0
        primitive = None if nav else _PRIMITIVE.get(ptype, 2305)
        extended = "Json" if ptype == "Json" else "Id" if ptype == "Long" else None
        koq = _KOQ_IDS[UNITS[name][0]] if name in UNITS and ptype == "Double" else None
        rel = NAV_RELATIONSHIPS.get(name) if nav else None
        prop_rows.append((pid, 0x32, cid, name, name, None, False, ordinal, kind, primitive, extended, koq, rel))
    _create(conn, m["ECPropertyDef"], prop_rows)
    koqs = {koq: unit for koq, unit in UNITS.values()}
    _create(
        conn,
        m["KindOfQuantityDef"],
        [(kid, 0x33, _SCHEMA_IDS["BisCore"], koq, koq, None, koqs[koq], 0.0001) for koq, kid in _KOQ_IDS.items()],
    )

    bases: list[tuple[object, ...]] = []
    all_bases: list[tuple[object, ...]] = []
    parent = {c[0]: c[4] for c in classes}
    rel_id = 0x2000
    for cid, *_ in classes:
        if parent[cid] is not None:
            bases.append((rel_id, 0x34, cid, 0x31, parent[cid], 0x31, 0))
            rel_id += 1
        current: int | None = cid
        seen = 0
        while current is not None and seen < 64:  # itself, then each ancestor
            all_bases.append((rel_id, 0x35, cid, 0x31, current, 0x31))
            rel_id += 1
            current, seen = parent.get(current), seen + 1
    _create(conn, m["ClassHasBaseClasses"], bases)
    _create(conn, m["ClassHasAllBaseClasses"], all_bases)
    owns = [(0x3000 + i, 0x36, row[2], 0x30, row[0], 0x31) for i, row in enumerate(class_rows)]
    _create(conn, m["SchemaOwnsClasses"], owns)
    local = [(0x4000 + i, 0x37, row[2], 0x31, row[0], 0x32) for i, row in enumerate(prop_rows)]
    _create(conn, m["ClassOwnsLocalProperties"], local)
    return lookup
