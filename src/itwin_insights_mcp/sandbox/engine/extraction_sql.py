"""Set-based extraction: one group's output rows computed by SQLite in one statement, when the mapping allows it.

`plan_group` turns a group (its translated ECSQL query and its properties) into layered SQL that yields, per element
row, every output value already cast, bounded and in table-column order; `extraction` then only encodes each row as
JSON and writes it in batches. A group whose properties need what this SQL does not express (aspects, navigation
beyond `.Id`, nested JSON members, string formulas, name collisions...) gets `None` and keeps the per-row Python path.

Sameness with the Python path is the contract (tests/unit/test_extraction_sql.py runs both): every value the SQL
cannot produce bit-exactly (decimal text of a JSON real, Python's `str()`/`float()` of odd text, Unicode key
lone surrogates, math.hypot) is handed to a small deterministic Python function registered on the read
connection, which calls the very same helpers the Python path uses. Layers (each a non-flattened subquery, so a
computed value is evaluated once per row):

1. the group's query joined to `im_elements`, exactly as the Python path runs it (same plan, same row order);
2. per-row lookups: each top-level JSON property key (first case-insensitive match), the class's full name;
3. each group property / calculated value cast to its column's dataType;
4. custom calculations, the stored-cell bound (over-long strings become null, flagged in a bit mask) and the
   table's column order.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import formulas

__all__ = ["SqlFunctions", "SqlGroup", "plan_group", "register_functions"]

_MAX_GUARDED = 62  # over-long flags share one signed 64-bit mask
_P = "_x_"  # prefix of every helper column, so none collides with a column of the group's query
_NAV_COLUMNS = ("category_id", "model_id", "parent_id")
_BBOX_KINDS = {
    "BoundingBoxLongestEdgeLength",
    "BoundingBoxIntermediateEdgeLength",
    "BoundingBoxShortestEdgeLength",
    "BoundingBoxDiagonalLength",
    "BoundingBoxLongestFaceDiagonalLength",
    "BoundingBoxIntermediateFaceDiagonalLength",
    "BoundingBoxShortestFaceDiagonalLength",
}
_MEASURES = {"Length": "length", "Area": "area", "Volume": "volume"}


@dataclass(frozen=True)
class SqlFunctions:
    """The Python path's own value helpers, which the SQL calls for the values it cannot compute exactly."""

    cast: Callable[[Any, str], Any]
    scrub: Callable[[str], str]


def register_functions(conn: sqlite3.Connection, fns: SqlFunctions) -> None:
    """Register the `_xs_*` SQL functions on `conn` (the read connection a planned group runs on)."""

    def safe(value: Any) -> Any:
        return fns.scrub(value) if isinstance(value, str) else value

    def cast(value: Any, data_type: str) -> Any:
        return safe(fns.cast(value, data_type))

    def cast_json(text: str | None, data_type: str) -> Any:
        return None if text is None else safe(fns.cast(json.loads(text), data_type))

    conn.create_function("_xs_cast", 2, cast, deterministic=True)
    conn.create_function("_xs_cast_json", 2, cast_json, deterministic=True)
    conn.create_function("_xs_hypot", 2, math.hypot, deterministic=True)
    # The same expression as `calculated_value` (`x**2` is pow(), which SQLite's x * x need not match bit for bit).
    conn.create_function("_xs_diagonal", 3, lambda a, b, c: math.sqrt(a**2 + b**2 + c**2), deterministic=True)


@dataclass
class _Params:
    """Bound parameters, numbered, so an expression may appear several times with the same placeholders."""

    values: list[Any] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"?{len(self.values)}"


@dataclass
class SqlGroup:
    """A planned group: `statement(names)` yields rows `(mask, lx, ly, lz, hx, hy, hz, *values in names order)`.

    The fixed columns come first in every table; in those rows ECClassId holds the class id (the caller maps it to
    `Schema.Class`) and BBoxLow/BBoxHigh are null (the caller formats them from the six box values).
    """

    guarded: list[str]  # column names behind the mask bits, bit 0 first, in the Python path's evaluation order
    booleans: frozenset[str]  # output columns whose 1/0 must be written as true/false
    _query: str
    _params: _Params
    _values: dict[str, str]  # group column name -> SQL over layer 3 (already bounded)

    def statement(self, names: Sequence[str]) -> tuple[str, list[Any]]:
        """The final SELECT for a table whose columns are `names` (columns of other groups are null here)."""
        bbox = ", ".join(f"{_P}b{i}" for i in range(6))
        outputs = ", ".join("NULL" if n in ("BBoxLow", "BBoxHigh") else self._values.get(n, "NULL") for n in names)
        # Every user value is bound; the SQL text is built from fixed fragments and generated names only.
        return f"SELECT {self._values[_MASK]}, {bbox}, {outputs} FROM ({self._query})", self._params.values  # noqa: S608


def _id64(sql: str) -> str:
    return f"(CASE WHEN {sql} = 0 THEN '0' ELSE printf('0x%x', {sql}) END)"


def _cast_native(v: str, dt: str) -> str:
    """`_cast(v, dt)` for a SQLite value: the common types in SQL, anything else through the Python function."""
    slow = f"_xs_cast({v}, '{dt}')"
    if dt == "String":
        integer, real = f"CAST({v} AS TEXT)", slow  # str(float) is repr(): Python's digits, not SQLite's
        text = v
    elif dt == "Double":
        integer, real = f"CAST({v} AS REAL)", f"(CASE WHEN abs({v}) < 9e999 THEN {v} END)"
        text = slow
    elif dt == "Integer":
        # `_cast` goes through float(): integers beyond 2**53 round and reals truncate, in range only.
        integer = f"(CASE WHEN {v} BETWEEN -9007199254740992 AND 9007199254740992 THEN {v} ELSE {slow} END)"
        real = f"(CASE WHEN {v} > -9.2e18 AND {v} < 9.2e18 THEN CAST({v} AS INTEGER) ELSE {slow} END)"
        text = slow
    else:
        integer, real, text = f"({v} <> 0)", f"({v} <> 0)", slow
    return (
        f"(CASE typeof({v}) WHEN 'null' THEN NULL WHEN 'integer' THEN {integer} WHEN 'real' THEN {real} "
        f"WHEN 'text' THEN {text} ELSE {slow} END)"
    )


_TRUE = {"String": "'true'", "Double": "1.0", "Integer": "1", "Boolean": "1"}
_FALSE = {"String": "'false'", "Double": "0.0", "Integer": "0", "Boolean": "0"}


def _cast_json(p: str, dt: str) -> str:
    """`_cast(json.loads(p), dt)` for the JSON text `p` of a non-null value: strings, integers and booleans in SQL."""
    slow = f"_xs_cast_json({p}, '{dt}')"
    value = f"json_extract({p}, '$')"
    text = value if dt == "String" else slow
    integer = f"(CASE WHEN typeof({value}) = 'integer' THEN {_cast_native(value, dt)} ELSE {slow} END)"
    return (
        f"(CASE WHEN {p} IS NULL THEN NULL WHEN instr({p}, '\\u') > 0 THEN {slow} ELSE (CASE json_type({p}) "
        f"WHEN 'text' THEN {text} WHEN 'integer' THEN {integer} WHEN 'true' THEN {_TRUE[dt]} "
        f"WHEN 'false' THEN {_FALSE[dt]} ELSE {slow} END) END)"
    )


def _cast_dt(data_type: str) -> str:
    """The branch of `_cast` a dataType takes (anything unknown is cast like a String)."""
    if data_type in ("Double", "Number"):
        return "Double"
    return data_type if data_type in ("Integer", "Boolean") else "String"


@dataclass
class _Planner:
    """Builds the layers for one group; `fail()` anywhere means the group stays on the Python path."""

    imodel_id: str
    class_names: Mapping[int, frozenset[str]]
    aspect_names: frozenset[str]
    element_columns: Mapping[str, str]
    queried: Mapping[str, str]  # lowered name -> the query's column name
    params: _Params = field(default_factory=_Params)
    prop_keys: dict[str, str] = field(default_factory=dict)  # lowered JSON key -> layer-2 column
    uses_class: bool = False  # a property reads ECClassId: layer 2 looks the class name up

    def group_property(self, prop: Mapping[str, Any]) -> str | None:
        """SQL over layer 2 for a group property: its ecProperties in priority order, cast to its dataType."""
        dt = _cast_dt(prop["dataType"])
        branches: list[str] = []
        for entry in prop["ecProperties"]:
            schema, cls, path = entry["ecSchemaName"], entry["ecClassName"], entry["ecPropertyName"].split(".")
            wildcard = schema == "*" or cls == "*"
            qualified = f"{schema}.{cls}".lower()
            if not wildcard and qualified in self.aspect_names:
                return None
            condition = "1"
            if not wildcard:
                ids = sorted(i for i, names in self.class_names.items() if qualified in names)
                condition = f"{_P}cls IN ({', '.join(str(i) for i in ids)})" if ids else "0"
            lowered = ".".join(path).lower()
            if lowered in self.queried:
                q = f'"{self.queried[lowered]}"'
                branches.append(f"WHEN {condition} AND {q} IS NOT NULL THEN {_cast_native(q, dt)}")
            found = self.element_property(path, dt)
            if found is None:
                return None
            present, value = found
            branches.append(f"WHEN {condition} AND {present} THEN {value}")
        return f"(CASE {' '.join(branches)} ELSE NULL END)" if branches else "NULL"

    def element_property(self, path: Sequence[str], dt: str) -> tuple[str, str] | None:
        """(SQL "found and not null", SQL cast value) of a property path on the element, as `_Resolver` reads it."""
        head, rest = path[0], [p.lower() for p in path[1:]]
        lowered = head.lower()
        column = next((c for p, c in self.element_columns.items() if p.lower() == lowered), None)
        if column is not None:
            source = f"{_P}{column}"
            if column in _NAV_COLUMNS:
                if rest not in ([], ["id"]):
                    return None  # a navigation target's own property: the Python path follows it
                text = _id64(source)
                return f"{source} IS NOT NULL", text if dt == "String" else f"_xs_cast({text}, '{dt}')"
            return None if rest else (f"{source} IS NOT NULL", _cast_native(source, dt))
        if lowered == "ecinstanceid":
            text = _id64(f"{_P}id")
            return "1", text if dt == "String" else f"_xs_cast({text}, '{dt}')"
        if lowered == "ecclassid":
            self.uses_class = True
            return f"{_P}class IS NOT NULL", _cast_native(f"{_P}class", dt)
        if rest or not lowered.isascii():
            return None  # nested members and non-ASCII keys: the Python path walks them
        name = self.prop_keys.setdefault(lowered, f"{_P}k{len(self.prop_keys)}")
        return f"{name} IS NOT NULL", _cast_json(name, dt)

    def key_lookups(self) -> str:
        """Layer-2 columns: the JSON text of each top-level key's value (first case-insensitive match, not null).

        `json_each` decodes escaped keys; SQLite's lower() folds ASCII only, which equals Python's str.lower() on
        an ASCII target except for one character: KELVIN SIGN (U+212A) lowers to "k", so it is folded first.
        """
        props = f"{_P}props"
        parts = []
        for lowered, name in self.prop_keys.items():
            key = "replace(key, char(8490), 'k')" if "k" in lowered else "key"
            parts.append(
                f"(SELECT CASE WHEN type <> 'null' THEN {props} -> fullkey END "  # noqa: S608 - generated names
                f"FROM json_each(NULLIF({props}, '')) WHERE lower({key}) = {self.params.bind(lowered)} LIMIT 1) "
                f"AS {name}"
            )
        return "".join(f", {p}" for p in parts)


def _calculated(kind: str) -> str | None:
    """SQL over layer 2 for a calculated property, as `calculated_value` computes it."""
    if kind in _MEASURES:
        return f"{_P}{_MEASURES[kind]}"
    if kind not in _BBOX_KINDS:
        return "NULL"
    dx, dy, dz = (f"abs(CAST({_P}b{i + 3} AS REAL) - CAST({_P}b{i} AS REAL))" for i in range(3))
    longest, shortest = f"max({dx}, {dy}, {dz})", f"min({dx}, {dy}, {dz})"
    middle = f"max(min({dx}, {dy}), min(max({dx}, {dy}), {dz}))"
    value = {
        "BoundingBoxLongestEdgeLength": longest,
        "BoundingBoxIntermediateEdgeLength": middle,
        "BoundingBoxShortestEdgeLength": shortest,
        "BoundingBoxDiagonalLength": f"_xs_diagonal({longest}, {middle}, {shortest})",
        "BoundingBoxLongestFaceDiagonalLength": f"_xs_hypot({longest}, {middle})",
        "BoundingBoxIntermediateFaceDiagonalLength": f"_xs_hypot({longest}, {shortest})",
        "BoundingBoxShortestFaceDiagonalLength": f"_xs_hypot({middle}, {shortest})",
    }[kind]
    nulls = " OR ".join(f"{_P}b{i} IS NULL" for i in range(6))
    return f"(CASE WHEN {nulls} THEN NULL ELSE {value} END)"


_ELEMENT = (
    ("id", "id"),
    ("cls", "class_id"),
    ("code_value", "code_value"),
    ("user_label", "user_label"),
    ("category_id", "category_id"),
    ("model_id", "model_id"),
    ("parent_id", "parent_id"),
    *(
        (f"b{i}", c)
        for i, c in enumerate(("bbox_low_x", "bbox_low_y", "bbox_low_z", "bbox_high_x", "bbox_high_y", "bbox_high_z"))
    ),
    ("length", "length"),
    ("area", "area"),
    ("volume", "volume"),
    ("props", "props"),
)


def plan_group(
    *,
    translated_sql: str,
    translated_params: Sequence[Any],
    query_columns: Sequence[str],
    sql_columns: Sequence[str],
    imodel_id: str,
    props: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    custom_order: Sequence[str],
    parsed: Mapping[str, formulas.Formula],
    class_names: Mapping[int, frozenset[str]],
    aspect_names: frozenset[str],
    element_columns: Mapping[str, str],
    fixed: Sequence[str],
    ecinstance_filter: set[int] | None,
    max_cell_bytes: int,
) -> SqlGroup | None:
    """The SQL plan of one group, or None when one of its columns needs the per-row Python path."""
    names = [*fixed, *(name for name, _ in columns)]
    if len({n.casefold() for n in names}) != len(names) or len({n.lower() for n in names}) != len(names):
        return None  # a property shadowing another column: the row dict's overwrite order decides, keep Python
    lowered_columns = [c.lower() for c in sql_columns]
    if len(set(lowered_columns)) != len(sql_columns) or any(c.startswith(_P) or '"' in c for c in lowered_columns):
        return None  # the query's own columns could not be named unambiguously
    by_lower = {c.lower(): c for c in sql_columns}
    planner = _Planner(
        imodel_id,
        class_names,
        aspect_names,
        element_columns,
        {n.lower(): by_lower[n.lower()] for n in query_columns if n.lower() in by_lower},
        # The translator numbers its placeholders ?1..?k in this order; ours continue after them.
        _Params(list(translated_params)),
    )
    layer3_columns = _property_columns(planner, props, columns)
    if layer3_columns is None or len(layer3_columns.guarded) > _MAX_GUARDED:
        return None
    if not _custom_columns(planner.params, layer3_columns, custom_order, parsed):
        return None
    query = _layers(planner, translated_sql, imodel_id, layer3_columns.sql, ecinstance_filter)
    return SqlGroup(
        layer3_columns.guarded,
        frozenset(layer3_columns.booleans),
        query,
        planner.params,
        _bounded(layer3_columns, planner.params.bind(max_cell_bytes)),
    )


@dataclass
class _Columns:
    """The group's columns as SQL: layer-3 expressions, then references usable in layer 4."""

    sql: dict[str, str] = field(default_factory=dict)  # group/calculated column -> expression over layer 2
    refs: dict[str, str] = field(default_factory=dict)  # every column -> its SQL in layer 4
    numeric: dict[str, str] = field(default_factory=dict)  # casefolded name -> SQL, for formulas (float|int|null)
    booleans: set[str] = field(default_factory=set)
    guarded: list[str] = field(default_factory=lambda: ["UserLabel"])


def _property_columns(
    planner: _Planner, props: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> _Columns | None:
    """Group and calculated properties (in column order) as layer-3 columns `_x_v<i>`."""
    kinds = {p["propertyName"]: p for p in props}
    out = _Columns()
    for index, (name, _) in enumerate(columns):
        prop, ref = kinds[name], f"{_P}v{index}"
        if prop["kind"] == "group":
            sql = planner.group_property(prop)
            dt = _cast_dt(prop["dataType"])
            if dt == "String":
                out.guarded.append(name)
            elif dt == "Boolean":
                out.booleans.add(name)
            else:
                out.numeric[name.casefold()] = ref
        elif prop["kind"] == "calculated":
            sql = _calculated(prop["type"])
            out.numeric[name.casefold()] = ref
        else:
            continue
        if sql is None:
            return None
        out.sql[ref] = sql
        out.refs[name] = ref
    return out


def _custom_columns(
    params: _Params, cols: _Columns, order: Sequence[str], parsed: Mapping[str, formulas.Formula]
) -> bool:
    """Custom calculations in evaluation order as layer-4 SQL (referenced columns inlined); False if one cannot."""
    for name in order:
        available = dict(cols.numeric)  # what the row holds when this formula runs

        def column(ref: str, available: Mapping[str, str] = available) -> str | None:
            return available.get(ref.casefold())

        compiled = formulas.to_sql(parsed[name], column, params.bind)
        if compiled is None:
            return False
        sql, boolean = compiled
        if boolean:
            cols.booleans.add(name)
        else:
            cols.numeric[name.casefold()] = f"({sql})"
        cols.refs[name] = f"({sql})"
    return True


def _layers(
    planner: _Planner,
    translated_sql: str,
    imodel_id: str,
    property_sql: Mapping[str, str],
    ecinstance_filter: set[int] | None,
) -> str:
    """Layers 1 to 3 (see the module docstring); every user value is bound, names are generated."""
    params = planner.params
    element = ", ".join(f"e.{c} AS {_P}{a}" for a, c in _ELEMENT)
    # Layer 1: the Python path's join, unchanged, with the element's columns under helper names.
    layer1 = (
        f"SELECT q.*, {element} FROM ({translated_sql}) q "  # noqa: S608 - translator output, literals bound
        f"JOIN im_elements e ON e.imodel_id = {params.bind(imodel_id)} AND e.id = q.ECInstanceId"
    )
    class_name = "NULL"
    if planner.uses_class:
        class_name = (
            f"(SELECT schema_name || '.' || class_name FROM im_classes "  # noqa: S608 - generated, values bound
            f"WHERE imodel_id = {params.bind(imodel_id)} AND class_id = l1.{_P}cls)"
        )
    lookups = planner.key_lookups()
    layer2 = f"SELECT l1.*, {class_name} AS {_P}class{lookups} FROM ({layer1}) l1 LIMIT -1 OFFSET 0"  # noqa: S608
    where = ""
    if ecinstance_filter is not None:
        ids = params.bind(json.dumps(sorted(ecinstance_filter)))
        where = f" WHERE {_P}id IN (SELECT value FROM json_each({ids}))"  # noqa: S608 - a bound parameter
    box = ", ".join(f"{_P}b{i}" for i in range(6))
    values = "".join(f", {sql} AS {ref}" for ref, sql in property_sql.items())
    return (
        f"SELECT {_id64(f'{_P}id')} AS {_P}iid, {_P}cls, {_P}user_label, {box}{values} "  # noqa: S608 - generated
        f"FROM ({layer2}){where} LIMIT -1 OFFSET 0"
    )


def _bounded(cols: _Columns, limit: str) -> dict[str, str]:
    """Layer-4 outputs: over-long strings become null, each flagged in the mask (bit i = `cols.guarded[i]`)."""
    # ECClassId leaves as the class id: the encoder names it from the class table it already holds.
    out: dict[str, str] = {"ECInstanceId": f"{_P}iid", "ECClassId": f"{_P}cls"}
    flags: list[str] = []
    for name in cols.guarded:
        source = f"{_P}user_label" if name == "UserLabel" else cols.refs[name]
        over = f"(typeof({source}) = 'text' AND length(CAST({source} AS BLOB)) > {limit})"
        flags.append(f"({over} << {len(flags)})")
        out[name] = f"(CASE WHEN {over} THEN NULL ELSE {source} END)"
    for name, sql in cols.refs.items():
        out.setdefault(name, sql)
    out[_MASK] = " + ".join(flags)
    return out


_MASK = "\0mask"  # key of the mask expression among the output columns (no property name holds a NUL)
