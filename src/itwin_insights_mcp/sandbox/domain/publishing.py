"""What a report publishes: one entity set per linked mapping x output table (`{mappingName}_{tableName}`) and one
per aggregation table of its linked table sets (`{tableSetName}_{tableName}`), always from the mapping's latest
successful run. Mappings never extracted publish nothing yet. Aggregation tables (GroupBy, Count, Sum) are computed
from their source table when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import not_found
from ..store import Store
from .extractions import latest_run, output_rows, output_tables

__all__ = ["EntitySet", "aggregate", "entity_page", "entity_sets", "published_report"]


@dataclass
class EntitySet:
    """One published table of a report."""

    name: str
    display_name: str
    manifest_id: str
    mapping_id: str
    source_table: str
    columns: list[tuple[str, str]]
    aggregation: list[dict[str, Any]] | None = None  # aggregation properties, for aggregation tables
    key: list[str] = field(default_factory=list)


def published_report(store: Store, report_id: str) -> str:
    """The id of a live report; 404 SchemaNotFound (the feed's wording) otherwise."""
    report = store.get("report", report_id)
    if report is None or report.data.get("deleted"):
        raise not_found("SchemaNotFound", "Schema", "reportId")
    return report.id


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate.lower())
    return candidate


def _aggregation_columns(source: list[tuple[str, str]], props: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    types = {name.lower(): kind for name, kind in source}
    columns = []
    for prop in props:
        if prop["type"] == "GroupBy":
            columns.append((prop["propertyName"], types.get(prop["sourcePropertyName"].lower(), "String")))
        elif prop["type"] == "Count":
            columns.append((prop["propertyName"], "Integer"))
        else:
            columns.append((prop["propertyName"], "Double"))
    return columns


def entity_sets(store: Store, report_id: str) -> list[EntitySet]:
    """Every table the report publishes right now, in a stable order."""
    taken: set[str] = set()
    sets: list[EntitySet] = []
    for link in store.children("report_mapping", report_id):
        mapping = store.get("mapping", link.id)
        job_id = latest_run(store, link.id)
        if mapping is None or job_id is None:
            continue
        for table_name, columns in output_tables(store, job_id, link.id).items():
            name = _unique(f"{mapping.data['mappingName']}_{table_name}", taken)
            sets.append(EntitySet(name, table_name, job_id, link.id, table_name, columns, key=["ECInstanceId"]))
    for link in store.children("report_aggregation", report_id):
        table_set = store.get("table_set", link.id)
        if table_set is None:
            continue
        mapping_id = table_set.parent
        job_id = latest_run(store, mapping_id)
        if job_id is None:
            continue
        source_tables = {name.lower(): (name, cols) for name, cols in output_tables(store, job_id, mapping_id).items()}
        for table in store.children("agg_table", table_set.id):
            source = source_tables.get(table.data["sourceTableName"].lower())
            props = [p.data for p in store.children("agg_property", table.id)]
            if source is None or not props:
                continue
            columns = _aggregation_columns(source[1], props)
            # No Key: GroupBy values may be null, and Bentley's own metadata declares none.
            name = _unique(f"{table_set.data['tableSetName']}_{table.data['tableName']}", taken)
            sets.append(EntitySet(name, table.data["tableName"], job_id, mapping_id, source[0], columns, props))
    return sets


def _source_rows(store: Store, entity: EntitySet) -> Iterator[dict[str, Any]]:
    columns = output_tables(store, entity.manifest_id, entity.mapping_id).get(entity.source_table, [])
    names = [name for name, _ in columns]
    for values in output_rows(store, entity.manifest_id, entity.mapping_id, entity.source_table):
        yield dict(zip(names, values, strict=False))


def aggregate(rows: Iterator[dict[str, Any]], props: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """GroupBy / Count / Sum over rows: one output row per distinct GroupBy tuple, in order of first appearance."""
    lowered = [(p, p["sourcePropertyName"].lower()) for p in props]
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        values = {k.lower(): v for k, v in row.items()}
        key = tuple(values.get(src) for p, src in lowered if p["type"] == "GroupBy")
        out = groups.get(key)
        if out is None:
            out = {}
            for p, src in lowered:
                out[p["propertyName"]] = (
                    values.get(src) if p["type"] == "GroupBy" else (0 if p["type"] == "Count" else None)
                )
            groups[key] = out
        for p, src in lowered:
            value = values.get(src)
            if p["type"] == "Count" and value is not None:
                out[p["propertyName"]] += 1
            elif p["type"] == "Sum" and isinstance(value, int | float) and not isinstance(value, bool):
                out[p["propertyName"]] = (out[p["propertyName"]] or 0.0) + float(value)
    return list(groups.values())


def entity_page(store: Store, entity: EntitySet, start: int, size: int) -> tuple[list[dict[str, Any]], bool]:
    """Rows `start`..`start + size` of a published table, and whether more follow."""
    names = [c[0] for c in entity.columns]
    if entity.aggregation is not None:
        all_rows = aggregate(_source_rows(store, entity), entity.aggregation)
        return all_rows[start : start + size], len(all_rows) > start + size
    raw = store.conn.execute(
        "SELECT data FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND table_name = ? AND row_no >= ? "
        "ORDER BY row_no LIMIT ?",
        (entity.manifest_id, entity.mapping_id, entity.source_table, start, size + 1),
    ).fetchall()
    return [dict(zip(names, json.loads(r[0]), strict=False)) for r in raw[:size]], len(raw) > size
