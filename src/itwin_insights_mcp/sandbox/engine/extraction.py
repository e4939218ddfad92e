"""Extraction: a mapping's groups and properties evaluated over an iModel into output tables.

Per group: the ECSQL query (translated by `ecsql`) selects elements; each row gets the fixed columns
(ECInstanceId as Id64 hex, ECClassId as `Schema.Class`, UserLabel, BBoxLow/BBoxHigh as JSON in a string), then one
column per property: group properties resolve `ecProperties` in priority order (queried column -> element property
-> the single aspect), calculated properties come from the element's geometry and box, custom calculations are
evaluated in dependency order. Groups sharing a name merge into one table (union of columns). Results are written
per job and mapping into `ex_tables`/`ex_rows`; `ex_latest` points the OData feed at the newest successful output.
"""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..imodels.schema import ELEMENT_COLUMN_PROPERTIES, id64
from . import extraction_sql, formulas
from .ecsql import QueryTranslationError, TranslatedQuery, translate

__all__ = [
    "FIXED_COLUMNS",
    "Budget",
    "ExtractionIssue",
    "LimitExceeded",
    "MappingResult",
    "discard_output",
    "ensure_tables",
    "extract_mapping",
]

FIXED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ECInstanceId", "String"),
    ("ECClassId", "String"),
    ("UserLabel", "String"),
    ("BBoxLow", "String"),
    ("BBoxHigh", "String"),
)

RESULT_SCHEMA = """
CREATE TABLE IF NOT EXISTS ex_tables (
    job_id TEXT NOT NULL, mapping_id TEXT NOT NULL, table_name TEXT NOT NULL,
    columns TEXT NOT NULL, row_count INTEGER NOT NULL,
    PRIMARY KEY (job_id, mapping_id, table_name)
);
CREATE TABLE IF NOT EXISTS ex_rows (
    job_id TEXT NOT NULL, mapping_id TEXT NOT NULL, table_name TEXT NOT NULL, row_no INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, mapping_id, table_name, row_no)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ex_latest (
    mapping_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, changeset_index INTEGER NOT NULL, extracted_on TEXT NOT NULL
);
"""

_BATCH = 5000


def ensure_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(RESULT_SCHEMA)


def extracted_tables(conn: sqlite3.Connection, job_id: str, mapping_id: str) -> dict[str, list[tuple[str, str]]]:
    """The output tables one job wrote for one mapping: name -> [(column, dataType)], in writing order."""
    rows = conn.execute(
        "SELECT table_name, columns FROM ex_tables WHERE job_id = ? AND mapping_id = ? ORDER BY rowid",
        (job_id, mapping_id),
    ).fetchall()
    return {r[0]: [(c[0], c[1]) for c in json.loads(r[1])] for r in rows}


def extracted_rows(conn: sqlite3.Connection, job_id: str, mapping_id: str, table: str) -> Iterator[list[Any]]:
    """The rows of one output table (values in column order), streamed in row order."""
    cursor = conn.execute(
        "SELECT data FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND table_name = ? ORDER BY row_no",
        (job_id, mapping_id, table),
    )
    for (data,) in cursor:
        yield json.loads(data)


@dataclass
class ExtractionIssue:
    """A problem to log: which group, how bad, which category, what to do."""

    level: str
    category: str
    message: str
    context_type: str = "Group"
    context_id: str = ""


@dataclass
class MappingResult:
    """What extracting one mapping produced: tables with row counts, and the issues met."""

    tables: dict[str, int] = field(default_factory=dict)
    issues: list[ExtractionIssue] = field(default_factory=list)


# -- class metadata -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClassInfo:
    class_id: int
    full_name: str
    kind: str
    names: frozenset[str]  # lowercased "schema.class" and "alias.class" of this class and all its bases


def _classes(conn: sqlite3.Connection, imodel_id: str) -> dict[int, _ClassInfo]:
    rows = conn.execute(
        "SELECT class_id, schema_name, schema_alias, class_name, base_class_id, kind FROM im_classes "
        "WHERE imodel_id = ?",
        (imodel_id,),
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    infos: dict[int, _ClassInfo] = {}
    for class_id, schema, _alias, name, _, kind in rows:
        names: set[str] = set()
        current: int | None = class_id
        while current is not None and current in by_id:
            row = by_id[current]
            names.add(f"{row[1]}.{row[3]}".lower())
            names.add(f"{row[2]}.{row[3]}".lower())
            current = row[4]
        infos[class_id] = _ClassInfo(class_id, f"{schema}.{name}", kind, frozenset(names))
    return infos


# -- value helpers ------------------------------------------------------------------------------------------------


def _cast(value: Any, data_type: str) -> Any:
    """Cast a resolved value to the column's dataType; values that cannot convert become null."""
    if value is None:
        return None
    try:
        if data_type in ("Double", "Number"):
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            result = float(value)
            return result if math.isfinite(result) else None
        if data_type == "Integer":
            if isinstance(value, str) and value.lower().startswith("0x"):
                number = int(value, 16)
            else:
                number = int(float(value)) if not isinstance(value, bool) else int(value)
            return number if -(1 << 63) <= number < (1 << 63) else None  # Edm.Int64
        if data_type == "Boolean":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no", ""):
                    return False
                return None
            return bool(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _member(value: Any, path: Sequence[str]) -> Any:
    """Walk JSON members case-insensitively (JSON-string properties are parsed on the way)."""
    for part in path:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.lower() == part.lower()), None)
        if key is None:
            return None
        value = value[key]
    return value


@dataclass
class _Element:
    """One element row as the resolver sees it."""

    id: int
    class_id: int
    columns: dict[str, Any]  # code_value, user_label, category_id, model_id, parent_id
    props: dict[str, Any]
    bbox: tuple[float | None, ...]
    length: float | None
    area: float | None
    volume: float | None


class _Resolver:
    """Resolves ecProperties entries for elements of one iModel (with a small cache of navigation targets)."""

    def __init__(self, conn: sqlite3.Connection, imodel_id: str, classes: dict[int, _ClassInfo]) -> None:
        self._conn = conn
        self._imodel = imodel_id
        self._classes = classes
        self._targets: dict[int, _Element | None] = {}
        self._aspect_class_names = {c.full_name.lower() for c in classes.values() if c.kind == "aspect"}
        self._aspect_names_by_lower: dict[str, set[int]] = {}
        for info in classes.values():
            if info.kind == "aspect":
                for name in info.names:
                    self._aspect_names_by_lower.setdefault(name, set()).add(info.class_id)

    def element(self, element_id: int) -> _Element | None:
        if element_id in self._targets:
            return self._targets[element_id]
        row = self._conn.execute(
            f"SELECT {_ELEMENT_SELECT} FROM im_elements e WHERE e.imodel_id = ? AND e.id = ?",  # noqa: S608 - constant columns
            (self._imodel, element_id),
        ).fetchone()
        element = _element_from(row, 0) if row else None
        if len(self._targets) < 10_000:
            self._targets[element_id] = element
        return element

    def element_property(self, element: _Element, path: Sequence[str]) -> tuple[bool, Any]:
        """(found, value) of a dotted property path on an element."""
        head, rest = path[0], path[1:]
        lowered = head.lower()
        column = next((c for p, c in ELEMENT_COLUMN_PROPERTIES.items() if p.lower() == lowered), None)
        if column is not None:
            value = element.columns.get(column)
            if column in ("category_id", "model_id", "parent_id"):
                if not rest:
                    return True, id64(value) if value is not None else None
                if rest[0].lower() == "id":
                    return True, id64(value) if value is not None else None
                target = self.element(value) if value is not None else None
                return (True, None) if target is None else self.element_property(target, rest)
            return (True, value) if not rest else (True, _member(value, rest))
        if lowered == "ecinstanceid":
            return True, id64(element.id)
        if lowered == "ecclassid":
            return True, self._classes[element.class_id].full_name
        key = next((k for k in element.props if k.lower() == lowered), None)
        if key is None:
            return False, None
        value = element.props[key]
        return True, (_member(value, rest) if rest else value)

    def is_aspect_class(self, schema: str, name: str) -> bool:
        return f"{schema}.{name}".lower() in self._aspect_names_by_lower

    def aspect_property(self, element_id: int, schema: str, name: str, path: Sequence[str]) -> Any:
        """The property of the element's aspect of that class (with subclasses), only if exactly one exists."""
        class_ids = self._aspect_names_by_lower.get(f"{schema}.{name}".lower(), set())
        if not class_ids:
            return None
        marks = ",".join("?" * len(class_ids))
        rows = self._conn.execute(
            # Only placeholders are interpolated; the values are bound.
            f"SELECT props FROM im_aspects WHERE imodel_id = ? AND element_id = ? AND class_id IN ({marks}) LIMIT 2",  # noqa: S608
            (self._imodel, element_id, *sorted(class_ids)),
        ).fetchall()
        if len(rows) != 1:
            return None
        return _member(json.loads(rows[0][0]), path)


_ELEMENT_SELECT = (
    "e.id, e.class_id, e.code_value, e.user_label, e.category_id, e.model_id, e.parent_id, e.bbox_low_x, "
    "e.bbox_low_y, e.bbox_low_z, e.bbox_high_x, e.bbox_high_y, e.bbox_high_z, e.length, e.area, e.volume, e.props"
)
_ELEMENT_WIDTH = 17


def _element_from(row: Sequence[Any], offset: int) -> _Element:
    r = row[offset : offset + _ELEMENT_WIDTH]
    return _Element(
        id=r[0],
        class_id=r[1],
        columns={"code_value": r[2], "user_label": r[3], "category_id": r[4], "model_id": r[5], "parent_id": r[6]},
        props=json.loads(r[16]) if r[16] else {},
        bbox=tuple(r[7:13]),
        length=r[13],
        area=r[14],
        volume=r[15],
    )


# -- calculated properties ----------------------------------------------------------------------------------------


def calculated_value(kind: str, element: _Element) -> float | None:
    """The 10 calculated property types from the element's measures and axis-aligned bounding box."""
    if kind == "Length":
        return element.length
    if kind == "Area":
        return element.area
    if kind == "Volume":
        return element.volume
    if any(v is None for v in element.bbox):
        return None
    lx, ly, lz, hx, hy, hz = (float(v) for v in element.bbox if v is not None)
    shortest, middle, longest = sorted((abs(hx - lx), abs(hy - ly), abs(hz - lz)))
    values = {
        "BoundingBoxLongestEdgeLength": longest,
        "BoundingBoxIntermediateEdgeLength": middle,
        "BoundingBoxShortestEdgeLength": shortest,
        "BoundingBoxDiagonalLength": math.sqrt(longest**2 + middle**2 + shortest**2),
        "BoundingBoxLongestFaceDiagonalLength": math.hypot(longest, middle),
        "BoundingBoxIntermediateFaceDiagonalLength": math.hypot(longest, shortest),
        "BoundingBoxShortestFaceDiagonalLength": math.hypot(middle, shortest),
    }
    return values.get(kind)


def _bbox_json(values: Sequence[float | None]) -> str | None:
    if any(v is None for v in values):
        return None
    x, y, z = values
    return json.dumps({"x": x, "y": y, "z": z}, separators=(",", ":"))


# -- one group ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    data_type: str


ColumnFn = Callable[[_Element, Mapping[str, Any], dict[str, Any]], Any]


def _group_property_fn(prop: Mapping[str, Any], resolver: _Resolver, classes: dict[int, _ClassInfo]) -> ColumnFn:
    entries = [(e["ecSchemaName"], e["ecClassName"], e["ecPropertyName"].split(".")) for e in prop["ecProperties"]]
    data_type = prop["dataType"]

    def value(element: _Element, queried: Mapping[str, Any], row: dict[str, Any]) -> Any:
        names = classes[element.class_id].names if element.class_id in classes else frozenset()
        for schema, cls, path in entries:
            wildcard = schema == "*" or cls == "*"
            if not wildcard and resolver.is_aspect_class(schema, cls):
                found = resolver.aspect_property(element.id, schema, cls, path)
                if found is not None:
                    return _cast(found, data_type)
                continue
            if not wildcard and f"{schema}.{cls}".lower() not in names:
                continue
            lowered = ".".join(path).lower()
            if lowered in queried and queried[lowered] is not None:
                return _cast(queried[lowered], data_type)
            found_it, found = resolver.element_property(element, path)
            if found_it and found is not None:
                return _cast(found, data_type)
        return None

    return value


def _calculated_fn(kind: str) -> ColumnFn:
    def value(element: _Element, queried: Mapping[str, Any], row: dict[str, Any]) -> Any:
        return calculated_value(kind, element)

    return value


def _formula_fn(formula: formulas.Formula, random_value: float) -> ColumnFn:
    compiled = formula.compile(random_value=random_value)

    def value(element: _Element, queried: Mapping[str, Any], row: dict[str, Any]) -> Any:
        return compiled(row)

    return value


def _columns_for(
    group_props: Sequence[Mapping[str, Any]], resolver: _Resolver, classes: dict[int, _ClassInfo], table_seed: str
) -> tuple[list[_Column], list[tuple[str, ColumnFn]]]:
    """Output columns and the functions computing them, custom calculations last in dependency order."""
    columns: list[_Column] = []
    fns: list[tuple[str, ColumnFn]] = []
    custom: dict[str, str] = {}
    custom_types: dict[str, str] = {}
    types: dict[str, str | None] = {}
    for prop in group_props:
        name = prop["propertyName"]
        if prop["kind"] == "group":
            data_type = "Double" if prop["dataType"] == "Number" else prop["dataType"]
            columns.append(_Column(name, data_type))
            fns.append((name, _group_property_fn(prop, resolver, classes)))
            types[name] = data_type
        elif prop["kind"] == "calculated":
            columns.append(_Column(name, "Double"))
            fns.append((name, _calculated_fn(prop["type"])))
            types[name] = "Double"
        else:
            custom[name] = prop["formula"]
            custom_types[name] = prop.get("dataType") or "Double"
    if custom:
        inferred = formulas.check(custom, types)
        random_value = random.Random(table_seed).random()  # noqa: S311 - `random()` is constant per output table
        for name in formulas.evaluation_order(custom):
            parsed = formulas.parse(custom[name])
            columns.append(_Column(name, str(inferred.get(name, custom_types[name]))))
            fns.append((name, _formula_fn(parsed, random_value)))
    return columns, fns


def _group_rows(
    conn: sqlite3.Connection,
    imodel_id: str,
    group: Mapping[str, Any],
    props: Sequence[Mapping[str, Any]],
    classes: dict[int, _ClassInfo],
    resolver: _Resolver,
    ecinstance_filter: set[int] | None,
    guard: _CellGuard,
    budget: Budget,
    set_based: bool,
) -> tuple[list[_Column], Encoder]:
    """The group's columns and the function that streams its rows, JSON-encoded in a table's column order.

    Set-based when `extraction_sql` can plan every column (SQLite computes the values; Python only encodes), else
    per row in Python. Both give the same rows in the same order; nothing runs until the encoder is iterated.
    """
    translated = translate(group["query"], imodel_id, conn)
    columns, fns = _columns_for(props, resolver, classes, f"{imodel_id}/{group['groupName']}")
    if set_based:
        plan = _plan(translated, imodel_id, props, columns, classes, ecinstance_filter, guard.max_bytes)
        if plan is not None:
            return columns, _sql_encoder(conn, plan, guard, budget, classes)
    queried_names = [c.lower() for c in translated.columns]
    sql = (
        # The inner query is generated by the ECSQL translator with every user literal bound as a parameter.
        f"SELECT q.*, {_ELEMENT_SELECT} FROM ({translated.sql}) q "  # noqa: S608
        "JOIN im_elements e ON e.imodel_id = ? AND e.id = q.ECInstanceId"
    )
    params = (*translated.params, imodel_id)

    def rows() -> Iterator[dict[str, Any]]:
        cursor = conn.execute(sql, params)
        width = len(cursor.description) - _ELEMENT_WIDTH
        names = [d[0].lower() for d in cursor.description[:width]]
        for raw in cursor:
            element = _element_from(raw, width)
            if ecinstance_filter is not None and element.id not in ecinstance_filter:
                continue
            queried = {n: raw[i] for i, n in enumerate(names) if n in queried_names}
            info = classes.get(element.class_id)
            row: dict[str, Any] = {
                "ECInstanceId": id64(element.id),
                "ECClassId": info.full_name if info else None,
                "UserLabel": guard.bound("UserLabel", element.columns["user_label"]),
                "BBoxLow": _bbox_json(element.bbox[0:3]),
                "BBoxHigh": _bbox_json(element.bbox[3:6]),
            }
            for name, fn in fns:
                row[name] = guard.bound(name, fn(element, queried, row))
            yield row

    def encoded(names: Sequence[str]) -> Iterator[str]:
        for row in rows():
            budget.check()
            yield _encode([row.get(n) for n in names])

    return columns, encoded


Encoder = Callable[[Sequence[str]], Iterator[str]]
_encode = json.JSONEncoder(separators=(",", ":")).encode  # what json.dumps(..., separators=(",", ":")) builds


def _plan(
    translated: TranslatedQuery,
    imodel_id: str,
    props: Sequence[Mapping[str, Any]],
    columns: Sequence[_Column],
    classes: dict[int, _ClassInfo],
    ecinstance_filter: set[int] | None,
    max_cell_bytes: int,
) -> extraction_sql.SqlGroup | None:
    custom = {p["propertyName"]: p["formula"] for p in props if p["kind"] not in ("group", "calculated")}
    order = formulas.evaluation_order(custom) if custom else []
    return extraction_sql.plan_group(
        translated_sql=translated.sql,
        translated_params=translated.params,
        query_columns=translated.columns,
        sql_columns=translated.sql_columns,
        imodel_id=imodel_id,
        props=props,
        columns=[(c.name, c.data_type) for c in columns],
        custom_order=order,
        parsed={name: formulas.parse(custom[name]) for name in order},
        class_names={c.class_id: c.names for c in classes.values()},
        aspect_names=frozenset(n for c in classes.values() if c.kind == "aspect" for n in c.names),
        element_columns=ELEMENT_COLUMN_PROPERTIES,
        fixed=[n for n, _ in FIXED_COLUMNS],
        ecinstance_filter=ecinstance_filter,
        max_cell_bytes=max_cell_bytes,
    )


def _sql_encoder(
    conn: sqlite3.Connection,
    plan: extraction_sql.SqlGroup,
    guard: _CellGuard,
    budget: Budget,
    classes: dict[int, _ClassInfo],
) -> Encoder:
    """Stream a planned group: SQLite yields the values; Python adds the box JSON, true/false, counts, encodes."""

    def encoded(names: Sequence[str]) -> Iterator[str]:
        sql, params = plan.statement(names)
        booleans = [i for i, n in enumerate(names) if n in plan.booleans]
        guarded = list(enumerate(plan.guarded))
        nulled = guard.nulled
        class_names = {c.class_id: c.full_name for c in classes.values()}

        def encode() -> Iterator[list[str]]:
            for rows in _batches(conn, sql, params):
                batch = []
                for row in rows:
                    if row[0]:
                        for bit, name in guarded:
                            if row[0] >> bit & 1:
                                nulled[name] = nulled.get(name, 0) + 1
                    values = list(row[7:])
                    values[1] = class_names.get(values[1])
                    values[3] = _bbox_fast(row[1], row[2], row[3])
                    values[4] = _bbox_fast(row[4], row[5], row[6])
                    for i in booleans:
                        if values[i] is not None:
                            values[i] = bool(values[i])
                    batch.append(_encode(values))
                yield batch

        for batch in encode():
            budget.check()
            yield from batch

    return encoded


_FETCH = 1000  # rows per fetch (and per limit check between rows)


def _batches(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Iterator[list[Any]]:
    cursor = conn.execute(sql, params)
    try:
        while rows := cursor.fetchmany(_FETCH):
            yield rows
    finally:
        cursor.close()


_BBOX = '{{"x":{!r},"y":{!r},"z":{!r}}}'.format


def _bbox_fast(x: Any, y: Any, z: Any) -> str | None:
    """`_bbox_json((x, y, z))`, formatted directly when all three are finite numbers (repr is json's float form)."""
    text: str = _BBOX(x, y, z)
    # "None", "inf" and "nan" all hold an "n"; a finite number's repr never does.
    return _bbox_json((x, y, z)) if "n" in text else text


# -- limits -------------------------------------------------------------------------------------------------------


class LimitExceeded(Exception):
    """A resource limit tripped. `scope` "group": that group fails alone; "job": the whole extraction ends."""

    def __init__(self, scope: str, message: str) -> None:
        super().__init__(message)
        self.scope = scope
        self.message = message


class Budget:
    """The limits one extraction runs under, and the step counter and clocks that enforce them.

    The same object is SQLite's progress handler on the extraction's read connection (`progress`), so a query that
    never returns a row is stopped as surely as a slow Python loop (`check`).
    """

    # SQLite VM instructions between two progress calls (each a Python call; 10,000 steps are well under a ms).
    STEP_GRANULARITY = 10_000

    def __init__(
        self,
        *,
        group_steps: int,
        group_seconds: float,
        job_seconds: float,
        cancelled: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.group_steps = group_steps
        self.group_seconds = group_seconds
        self.job_seconds = job_seconds
        self._cancelled = cancelled
        self._job_deadline = time.monotonic() + job_seconds
        self._group_deadline = self._job_deadline
        self._steps = 0

    def start_group(self) -> None:
        """Reset the per-group counters: each group gets its own step and time allowance."""
        self._steps = 0
        self._group_deadline = min(time.monotonic() + self.group_seconds, self._job_deadline)

    def tripped(self) -> LimitExceeded | None:
        """The limit that is exceeded right now, if any (job-wide limits first)."""
        reason = self._cancelled()
        if reason is not None:
            return LimitExceeded("job", reason)
        now = time.monotonic()
        if now > self._job_deadline:
            return LimitExceeded(
                "job",
                f"The extraction exceeded its time limit of {self.job_seconds:g} s "
                "(INSIGHTS_SANDBOX_EXTRACTION_SECONDS) and was stopped; make the group queries more selective.",
            )
        if now > self._group_deadline:
            return LimitExceeded(
                "group",
                f"the group took longer than its limit of {self.group_seconds:g} s "
                "(INSIGHTS_SANDBOX_GROUP_SECONDS); make its query more selective.",
            )
        if self.group_steps and self._steps > self.group_steps:
            return LimitExceeded(
                "group",
                f"the group query exceeded its cost limit of {self.group_steps} SQLite steps "
                "(INSIGHTS_SANDBOX_GROUP_QUERY_STEPS); make it more selective (avoid self-joins without a "
                "condition that limits them).",
            )
        return None

    def progress(self) -> int:
        """SQLite progress handler: a non-zero answer interrupts the running statement."""
        self._steps += self.STEP_GRANULARITY
        return 1 if self.tripped() is not None else 0

    def check(self) -> None:
        """Raise the exceeded limit, if any (called between rows)."""
        exceeded = self.tripped()
        if exceeded is not None:
            raise exceeded


def unlimited() -> Budget:
    """A budget that never trips (for callers that bring no limits)."""
    return Budget(group_steps=0, group_seconds=math.inf, job_seconds=1e12)


_SURROGATES = re.compile("[\ud800-\udfff]")


def _utf8_safe(text: str) -> str:
    """`text` with any lone UTF-16 surrogate replaced by U+FFFD, so it can always be sent as UTF-8 JSON."""
    if _SURROGATES.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@dataclass
class _CellGuard:
    """Applies the stored-cell byte limit: an over-long string becomes null, counted per column for one Warning."""

    max_bytes: int
    nulled: dict[str, int] = field(default_factory=dict)

    def bound(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = _utf8_safe(value)
        if len(value) * 4 > self.max_bytes and len(value.encode("utf-8")) > self.max_bytes:
            self.nulled[name] = self.nulled.get(name, 0) + 1
            return None
        return value

    def issues(self, group: Mapping[str, Any]) -> list[ExtractionIssue]:
        return [
            ExtractionIssue(
                "Warning",
                "GroupQuery",
                f"Group '{group['groupName']}': column '{name}' computed {count} value(s) longer than "
                f"{self.max_bytes} bytes (INSIGHTS_SANDBOX_MAX_CELL_BYTES); they are stored as null.",
                "Group",
                group["id"],
            )
            for name, count in self.nulled.items()
        ]


_SQL_FUNCTIONS = extraction_sql.SqlFunctions(cast=_cast, scrub=_utf8_safe)


# -- writing rows -------------------------------------------------------------------------------------------------


def _insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """One short write transaction per batch, so other writers wait milliseconds, not the whole extraction."""
    if not rows:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT OR REPLACE INTO ex_rows VALUES (?, ?, ?, ?, ?)", rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    rows.clear()


def delete_rows(conn: sqlite3.Connection, job_id: str, mapping_id: str, table: str, *, from_row: int = 0) -> None:
    """Delete one output table's rows from `from_row` on, in batches (each its own short transaction)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "DELETE FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND table_name = ? AND row_no >= ? "
                "AND row_no < ?",
                (job_id, mapping_id, table, from_row, from_row + _BATCH),
            )
            more = conn.execute(
                "SELECT 1 FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND table_name = ? AND row_no >= ? LIMIT 1",
                (job_id, mapping_id, table, from_row + _BATCH),
            ).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        del cur
        if more is None:
            return
        from_row += _BATCH


def discard_output(conn: sqlite3.Connection, job_id: str, mapping_id: str | None = None) -> None:
    """Remove the rows and tables one job wrote (all its mappings, or one), batch by batch; never what is published.

    Used for failed jobs and superseded outputs; an output `ex_latest` still points at is kept.
    """
    published = {r[0] for r in conn.execute("SELECT mapping_id FROM ex_latest WHERE job_id = ?", (job_id,))}
    outputs = conn.execute("SELECT DISTINCT mapping_id, table_name FROM ex_rows WHERE job_id = ?", (job_id,))
    for mapping, table in outputs.fetchall():
        if mapping not in published and mapping_id in (None, mapping):
            delete_rows(conn, job_id, mapping, table)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for mapping, table in conn.execute(
            "SELECT mapping_id, table_name FROM ex_tables WHERE job_id = ?", (job_id,)
        ).fetchall():
            if mapping not in published and mapping_id in (None, mapping):
                conn.execute(
                    "DELETE FROM ex_tables WHERE job_id = ? AND mapping_id = ? AND table_name = ?",
                    (job_id, mapping, table),
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- one mapping --------------------------------------------------------------------------------------------------


def _group_issue(group: Mapping[str, Any], category: str, reason: str) -> ExtractionIssue:
    return ExtractionIssue("Error", category, f"Group '{group['groupName']}': {reason}", "Group", group["id"])


def _failure(exc: BaseException, budget: Budget) -> tuple[str, str]:
    """(category, reason) for a group that failed with `exc`; a tripped job-wide limit is raised instead."""
    exceeded = exc if isinstance(exc, LimitExceeded) else None
    if isinstance(exc, sqlite3.OperationalError) and "interrupt" in str(exc).lower():
        exceeded = budget.tripped()
    if exceeded is not None:
        if exceeded.scope == "job":
            raise exceeded
        return "GroupQuery", exceeded.message
    if isinstance(exc, QueryTranslationError):
        return "QueryTranslation", str(exc)
    if isinstance(exc, formulas.FormulaError):
        return "GroupQuery", str(exc)
    if isinstance(exc, sqlite3.Error):
        return "QueryExecution", str(exc)
    if isinstance(exc, RecursionError):
        return "GroupQuery", "the group is too complex to evaluate (too deeply nested); simplify its query."
    return "GroupQuery", f"the group could not be evaluated ({type(exc).__name__})."


def extract_mapping(
    conn: sqlite3.Connection,
    *,
    job_id: str,
    imodel_id: str,
    mapping_id: str,
    groups: Sequence[Mapping[str, Any]],
    properties: Mapping[str, Sequence[Mapping[str, Any]]],
    ecinstance_ids: Sequence[str] | None = None,
    read: sqlite3.Connection | None = None,
    budget: Budget | None = None,
    max_cell_bytes: int = 65_536,
    set_based: bool = True,
) -> MappingResult:
    """Evaluate every group of a mapping and write its output tables for `job_id` (unpublished until the caller
    points `ex_latest` at them).

    Queries run on `read` (a connection of their own, under `budget`'s progress handler) and rows are written to
    `conn` in short batch transactions, so the store's write lock is never held while a group computes. A group that
    fails (bad query, limit, evaluation error) fails alone: its rows are removed and an Error names it and the
    reason; a job-wide limit raises `LimitExceeded`. `set_based=False` forces the per-row Python path for every
    group (the reference the set-based path is tested against).
    """
    read = read or conn
    budget = budget or unlimited()
    ensure_tables(conn)
    read.set_progress_handler(budget.progress, Budget.STEP_GRANULARITY)
    try:
        return _extract(
            conn,
            read,
            budget,
            max_cell_bytes,
            job_id,
            imodel_id,
            mapping_id,
            groups,
            properties,
            ecinstance_ids,
            set_based,
        )
    finally:
        read.set_progress_handler(None, 0)


def _extract(
    conn: sqlite3.Connection,
    read: sqlite3.Connection,
    budget: Budget,
    max_cell_bytes: int,
    job_id: str,
    imodel_id: str,
    mapping_id: str,
    groups: Sequence[Mapping[str, Any]],
    properties: Mapping[str, Sequence[Mapping[str, Any]]],
    ecinstance_ids: Sequence[str] | None,
    set_based: bool,
) -> MappingResult:
    if set_based:
        extraction_sql.register_functions(read, _SQL_FUNCTIONS)
    classes = _classes(read, imodel_id)
    resolver = _Resolver(read, imodel_id, classes)
    id_filter = {int(i, 16) for i in ecinstance_ids} if ecinstance_ids else None
    result = MappingResult()
    by_table: dict[str, list[Mapping[str, Any]]] = {}
    for group in groups:
        by_table.setdefault(group["groupName"], []).append(group)

    for table_name, members in by_table.items():
        table_columns: list[_Column] = [_Column(n, t) for n, t in FIXED_COLUMNS]
        delete_rows(conn, job_id, mapping_id, table_name)
        prepared: list[tuple[Mapping[str, Any], Encoder, _CellGuard]] = []
        for group in members:
            budget.start_group()
            guard = _CellGuard(max_cell_bytes)
            try:
                columns, rows = _group_rows(
                    read,
                    imodel_id,
                    group,
                    properties.get(group["id"], ()),
                    classes,
                    resolver,
                    id_filter,
                    guard,
                    budget,
                    set_based,
                )
            except Exception as exc:  # a bad group fails alone, whatever went wrong
                result.issues.append(_group_issue(group, *_failure(exc, budget)))
                continue
            for column in columns:
                if all(c.name.lower() != column.name.lower() for c in table_columns):
                    table_columns.append(column)
            prepared.append((group, rows, guard))
        names = [c.name for c in table_columns]
        written, succeeded = 0, 0
        pending: list[tuple[Any, ...]] = []
        for group, rows, guard in prepared:
            budget.start_group()
            first_row = written
            try:
                for values in rows(names):
                    pending.append((job_id, mapping_id, table_name, written, values))
                    written += 1
                    if len(pending) >= _BATCH:
                        _insert_rows(conn, pending)
                _insert_rows(conn, pending)
            except Exception as exc:  # a bad group fails alone; its partial rows go
                pending.clear()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                delete_rows(conn, job_id, mapping_id, table_name, from_row=first_row)
                written = first_row
                result.issues.append(_group_issue(group, *_failure(exc, budget)))
                continue
            succeeded += 1
            result.issues.extend(guard.issues(group))
        if not succeeded:  # every group of this table failed: publish nothing rather than an empty table
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO ex_tables VALUES (?, ?, ?, ?, ?)",
                (job_id, mapping_id, table_name, json.dumps([[c.name, c.data_type] for c in table_columns]), written),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        result.tables[table_name] = written
    return result


def merge_previous_rows(
    conn: sqlite3.Connection,
    *,
    job_id: str,
    previous_job_id: str,
    mapping_id: str,
    replaced: Sequence[str],
    tables: dict[str, int],
) -> None:
    """Carry the previous output's rows of instances not in `replaced` into this job's tables (caller's tx)."""
    skip = {i.lower() for i in replaced}
    new_tables = extracted_tables(conn, job_id, mapping_id)
    old_tables = extracted_tables(conn, previous_job_id, mapping_id)
    for table_name in list(tables):
        if table_name not in new_tables or table_name not in old_tables:
            continue
        new_names = [name for name, _ in new_tables[table_name]]
        position = {name: i for i, (name, _) in enumerate(old_tables[table_name])}
        row_no = tables[table_name]
        carried = []
        for values in list(extracted_rows(conn, previous_job_id, mapping_id, table_name)):
            if str(values[0]).lower() in skip:
                continue
            remapped = [values[position[n]] if n in position else None for n in new_names]
            carried.append((job_id, mapping_id, table_name, row_no, json.dumps(remapped, separators=(",", ":"))))
            row_no += 1
        conn.executemany("INSERT INTO ex_rows VALUES (?, ?, ?, ?, ?)", carried)
        conn.execute(
            "UPDATE ex_tables SET row_count = ? WHERE job_id = ? AND mapping_id = ? AND table_name = ?",
            (row_no, job_id, mapping_id, table_name),
        )
        tables[table_name] = row_no
