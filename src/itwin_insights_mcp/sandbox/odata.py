"""The OData v4 feed of a report: service document, `$metadata` (EDMX) and entity pages with `?sequence=N`.

A report publishes one entity set per linked mapping x output table (`{mappingName}_{tableName}`, display name =
the group name) and one per aggregation table of its linked table sets (`{tableSetName}_{tableName}`), always from
the latest successful extraction of the mapping. Mappings never extracted publish nothing yet. Aggregation tables
(GroupBy, Count, Sum) are computed from their source table when read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.responses import Response

from .engine.extraction import extracted_rows, extracted_tables
from .http import MAX_SEQ, Call, json_response, not_found

__all__ = ["EDM_TYPES", "ODATA_HANDLERS", "EntitySet", "entity_sets"]

REGION = "EUS"
EDM_TYPES = {
    "String": "Edm.String",
    "Double": "Edm.Double",
    "Number": "Edm.Double",
    "Integer": "Edm.Int64",
    "Boolean": "Edm.Boolean",
}
RP = "/insights/reporting"


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


def _latest(call: Call, mapping_id: str) -> str | None:
    row = call.store.conn.execute("SELECT job_id FROM ex_latest WHERE mapping_id = ?", (mapping_id,)).fetchone()
    return str(row[0]) if row else None


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


def entity_sets(call: Call, report_id: str) -> list[EntitySet]:
    """Every table the report publishes right now, in a stable order."""
    store = call.store
    taken: set[str] = set()
    sets: list[EntitySet] = []
    for link in store.children("report_mapping", report_id):
        mapping = store.get("mapping", link.id)
        job_id = _latest(call, link.id)
        if mapping is None or job_id is None:
            continue
        for table_name, columns in extracted_tables(call.store.conn, job_id, link.id).items():
            name = _unique(f"{mapping.data['mappingName']}_{table_name}", taken)
            sets.append(EntitySet(name, table_name, job_id, link.id, table_name, columns, key=["ECInstanceId"]))
    for link in store.children("report_aggregation", report_id):
        table_set = store.get("table_set", link.id)
        if table_set is None:
            continue
        mapping_id = table_set.parent
        job_id = _latest(call, mapping_id)
        if job_id is None:
            continue
        source_tables = {
            name.lower(): (name, cols) for name, cols in extracted_tables(call.store.conn, job_id, mapping_id).items()
        }
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


def _report_or_schema_not_found(call: Call) -> str:
    report = call.store.get("report", call.path["reportId"])
    if report is None or report.data.get("deleted"):
        raise not_found("SchemaNotFound", "Schema", "reportId")
    return report.id


def odata_service(call: Call) -> Response:
    report_id = _report_or_schema_not_found(call)
    base = f"{call.base_url}{RP}/odata/{report_id}"
    value = [{"name": s.name, "url": f"{REGION}/{s.manifest_id}/{s.name}"} for s in entity_sets(call, report_id)]
    return json_response({"@odata.context": f"{base}/$metadata", "value": value})


def metadata_xml(sets: Sequence[EntitySet]) -> str:
    """EDMX 4.0 in the shape the service returns: types in `Insights_and_Reporting_Extractor`, container `Default`."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>',
        '<Schema Namespace="Bentley.iTwin.Reporting" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        '<Term Name="DisplayName" Type="Edm.String"/></Schema>',
        '<Schema Namespace="Insights_and_Reporting_Extractor" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for s in sets:
        parts.append(f"<EntityType Name={quoteattr(s.name)}>")
        if s.key:
            parts.append("<Key>" + "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in s.key) + "</Key>")
        for name, kind in s.columns:
            nullable = ' Nullable="false"' if name in s.key else ""
            parts.append(
                f"<Property Name={quoteattr(name)} Type={quoteattr(EDM_TYPES.get(kind, 'Edm.String'))}{nullable}/>"
            )
        parts.append("</EntityType>")
    parts.append("</Schema>")
    parts.append(
        '<Schema Namespace="Default" xmlns="http://docs.oasis-open.org/odata/ns/edm"><EntityContainer Name="Container">'
    )
    for s in sets:
        parts.append(
            f"<EntitySet Name={quoteattr(s.name)} "
            f"EntityType={quoteattr('Insights_and_Reporting_Extractor.' + s.name)}>"
            f'<Annotation Term="Bentley.iTwin.Reporting.DisplayName" String={quoteattr(s.display_name)}/>'
            "</EntitySet>"
        )
    parts.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "".join(parts)


def odata_metadata(call: Call) -> Response:
    report_id = _report_or_schema_not_found(call)
    return Response(metadata_xml(entity_sets(call, report_id)), media_type="application/xml")


def _source_rows(call: Call, entity: EntitySet) -> Iterator[dict[str, Any]]:
    conn = call.store.conn
    columns = extracted_tables(conn, entity.manifest_id, entity.mapping_id).get(entity.source_table, [])
    names = [name for name, _ in columns]
    for values in extracted_rows(conn, entity.manifest_id, entity.mapping_id, entity.source_table):
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


def odata_entity(call: Call) -> Response:
    report_id = _report_or_schema_not_found(call)
    name = call.path["entityType"]
    entity = next(
        (
            s
            for s in entity_sets(call, report_id)
            if s.name == name and s.manifest_id == call.path["manifestId"] and call.path["region"] == REGION
        ),
        None,
    )
    if entity is None:
        raise not_found("EntityNotFound", "Entity", "entityType")
    sequence = int(call.query.get("sequence", 0))
    size = call.sandbox.odata_page_size
    if not 0 <= sequence <= MAX_SEQ // size:
        raise call.invalid(
            f"sequence must be a page number from 0 to {MAX_SEQ // size}; follow @odata.nextLink.", "sequence"
        )
    names = [c[0] for c in entity.columns]
    if entity.aggregation is not None:
        all_rows = aggregate(_source_rows(call, entity), entity.aggregation)
        page = all_rows[sequence * size : (sequence + 1) * size]
        more = len(all_rows) > (sequence + 1) * size
    else:
        raw = call.store.conn.execute(
            "SELECT data FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND table_name = ? AND row_no >= ? "
            "ORDER BY row_no LIMIT ?",
            (entity.manifest_id, entity.mapping_id, entity.source_table, sequence * size, size + 1),
        ).fetchall()
        page = [dict(zip(names, json.loads(r[0]), strict=False)) for r in raw[:size]]
        more = len(raw) > size
    base = f"{call.base_url}{RP}/odata/{report_id}"
    body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{entity.name}", "value": page}
    if more:
        version = call.request.query_params.get("api-version")  # kept, so a client without headers can follow it
        suffix = f"&api-version={version}" if version in ("v1", "v2") else ""
        body["@odata.nextLink"] = f"{base}/{REGION}/{entity.manifest_id}/{entity.name}?sequence={sequence + 1}{suffix}"
    return json_response(body)


ODATA_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "odata": odata_service,
    "odata-metadata": odata_metadata,
    "odata-entity": odata_entity,
}
