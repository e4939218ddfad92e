"""OData v4 adapter (Reporting v1 and v2): service document, `$metadata` (EDMX) and entity pages (`?sequence=N`).

What a report publishes is the domain's (`domain.publishing`); this module writes it as OData.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.responses import Response

from ..domain.publishing import EntitySet, entity_page, entity_sets, published_report
from ..errors import not_found
from ..wire import MAX_SEQ, Call, json_response

__all__ = ["EDM_TYPES", "HANDLERS", "metadata_xml"]

REGION = "EUS"
EDM_TYPES = {
    "String": "Edm.String",
    "Double": "Edm.Double",
    "Number": "Edm.Double",
    "Integer": "Edm.Int64",
    "Boolean": "Edm.Boolean",
}


def odata_service(call: Call) -> Response:
    report_id = published_report(call.store, call.path["reportId"])
    base = call.url(f"/odata/{report_id}")
    sets = entity_sets(call.store, report_id)
    value = [{"name": s.name, "url": f"{REGION}/{s.manifest_id}/{s.name}"} for s in sets]
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
    report_id = published_report(call.store, call.path["reportId"])
    return Response(metadata_xml(entity_sets(call.store, report_id)), media_type="application/xml")


def odata_entity(call: Call) -> Response:
    report_id = published_report(call.store, call.path["reportId"])
    name = call.path["entityType"]
    entity = next(
        (
            s
            for s in entity_sets(call.store, report_id)
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
    page, more = entity_page(call.store, entity, sequence * size, size)
    base = call.url(f"/odata/{report_id}")
    body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{entity.name}", "value": page}
    if more:
        version = call.request.query_params.get("api-version")  # kept, so a client without headers can follow it
        suffix = f"&api-version={version}" if version in ("v1", "v2") else ""
        body["@odata.nextLink"] = f"{base}/{REGION}/{entity.manifest_id}/{entity.name}?sequence={sequence + 1}{suffix}"
    return json_response(body)


HANDLERS: dict[str, Callable[[Call], Response]] = {
    "odata": odata_service,
    "odata-metadata": odata_metadata,
    "odata-entity": odata_entity,
}
