"""Grouping & Mapping v1 adapter: mappings without an iModel in the path, one `Property` for all three column
kinds, extractions with CDM output, and the audit trail.

It shares the domain with Reporting v1: a G&M mapping is a v1 mapping. A G&M `Property` is stored as the v1 kind its
value source gives (`domain.properties.unified_property`), so v1 lists show it as a group property, calculated
property or custom calculation. Its own fields are translated here; nothing of v1's wire is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from ..domain import extractions, groups, mappings, properties
from ..domain.audit import trail
from ..domain.imodels import imodel
from ..errors import SandboxError, conflict, invalid, not_found
from ..store import Record
from ..wire import Call, json_response, offset_page, page_response
from .families import IMODELS

__all__ = ["HANDLERS"]

MAPPINGS = "/datasources/imodel-mappings"  # under the family's base path
CDM_TYPES = {"String": "string", "Double": "double", "Number": "double", "Integer": "int64", "Boolean": "boolean"}


def _mapping(call: Call, mapping_id: str | None = None) -> Record:
    return mappings.mapping(call.store, mapping_id or call.path["mappingId"])


def _group(call: Call) -> tuple[Record, Record]:
    mapping = _mapping(call)
    return mapping, groups.group(call.store, mapping.id, call.path["groupId"], "groupId")


def _property(call: Call) -> tuple[Record, Record, Record]:
    mapping, group = _group(call)
    prop = call.store.get("property", call.path["propertyId"], parent=group.id)
    if prop is None:
        raise not_found("PropertyNotFound", "Property", "propertyId")
    return mapping, group, prop


def _links(call: Call, imodel_id: str, mapping_id: str | None = None, group_id: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {"iModel": call.link(f"/{imodel_id}", IMODELS)}
    if mapping_id:
        links["mapping"] = call.link(f"{MAPPINGS}/{mapping_id}")
    if group_id:
        links["group"] = call.link(f"{MAPPINGS}/{mapping_id}/groups/{group_id}")
    return links


def _mapping_out(call: Call, record: Record) -> dict[str, Any]:
    return {**record.data, "_links": _links(call, record.parent)}


def _group_out(call: Call, mapping: Record, record: Record, *, full: bool = True) -> dict[str, Any]:
    out = {k: record.data.get(k) for k in ("id", "groupName", "description", "query")}
    if full:
        out["metadata"] = record.data.get("metadata", [])
    out["_links"] = _links(call, mapping.parent, mapping.id)
    return out


def _property_out(call: Call, mapping: Record, record: Record) -> dict[str, Any]:
    data = record.data
    kind = data["kind"]
    quantity = data.get("quantityType")
    ec = data.get("ecProperties") or None
    return {
        "id": data["id"],
        "propertyName": data["propertyName"],
        "dataType": "Double" if data.get("dataType") in (None, "Number") else data["dataType"],
        "quantityType": None if quantity in (None, "Undefined") else quantity,
        "ecProperties": [{k: e[k] for k in ("ecSchemaName", "ecClassName", "ecPropertyName")} for e in ec]
        if kind == "group" and ec
        else None,
        "calculatedPropertyType": data.get("type") if kind == "calculated" else data.get("calculatedPropertyType"),
        "formula": data.get("formula"),
        "_links": _links(call, mapping.parent, mapping.id, record.parent),
    }


def _one(key: str, value: dict[str, Any]) -> Response:
    return json_response({key: value})


# -- mappings ----------------------------------------------------------------------------------------------------


def list_mappings(call: Call) -> Response:
    imodel_id = call.query["iModelId"]
    imodel(call.store, imodel_id, "iModelId")
    return page_response(call, "mapping", imodel_id, "mappings", lambda r: _mapping_out(call, r))


def create_mapping(call: Call) -> Response:
    body = call.body
    imodel(call.store, body["iModelId"], "iModelId")
    source = _mapping(call, body["sourceMappingId"]) if body.get("sourceMappingId") else None
    record = mappings.create_mapping(
        call.caller,
        body["iModelId"],
        name=body["mappingName"],
        description=body.get("description"),
        extraction_enabled=body.get("extractionEnabled"),
        default_extraction_enabled=False,
        source=source,
        imodel_target="iModelId",
    )
    return _one("mapping", _mapping_out(call, record))


def update_mapping(call: Call) -> Response:
    body = call.body
    record = mappings.update_mapping(
        call.caller,
        _mapping(call),
        name=body.get("mappingName"),
        description=body.get("description"),
        extraction_enabled=body.get("extractionEnabled"),
    )
    return _one("mapping", _mapping_out(call, record))


def delete_mapping(call: Call) -> Response:
    mappings.delete_mapping(call.caller, _mapping(call))
    return Response(status_code=204)


# -- groups ------------------------------------------------------------------------------------------------------


def list_groups(call: Call) -> Response:
    mapping = _mapping(call)
    full = call.wants_representation
    return page_response(call, "group", mapping.id, "groups", lambda r: _group_out(call, mapping, r, full=full))


def get_group(call: Call) -> Response:
    mapping, group = _group(call)
    return _one("group", _group_out(call, mapping, group))


def _check_metadata(metadata: list[dict[str, Any]]) -> None:
    keys = [str(m.get("key", "")).strip() for m in metadata]
    if any(not k for k in keys) or len(set(keys)) != len(keys):
        raise invalid("metadata keys must be non-blank and unique within the group.", "metadata")


def create_group(call: Call) -> Response:
    body = call.body
    _check_metadata(body.get("metadata", []))
    mapping = _mapping(call)
    source = body.get("source")  # copy the properties of another group; name, query and description are this body's
    source_group = (
        groups.group(call.store, source["mappingId"], source["groupId"], "source.groupId") if source else None
    )
    record = groups.create_group(
        call.caller,
        mapping,
        name=body["groupName"],
        description=body.get("description", ""),
        query=body["query"],
        metadata=body.get("metadata", []),
        source=source_group,
    )
    return _one("group", _group_out(call, mapping, record))


def update_group(call: Call) -> Response:
    body = call.body
    _check_metadata(body.get("metadata", []))
    mapping, group = _group(call)
    record = groups.update_group(
        call.caller,
        mapping,
        group,
        name=body.get("groupName"),
        description=body.get("description"),
        query=body.get("query"),
        metadata=body.get("metadata"),
    )
    return _one("group", _group_out(call, mapping, record))


def delete_group(call: Call) -> Response:
    mapping, group = _group(call)
    groups.delete_group(call.caller, mapping, group)
    return Response(status_code=204)


# -- properties --------------------------------------------------------------------------------------------------


def _property_data(call: Call, mapping: Record, group: Record, existing: Record | None) -> dict[str, Any]:
    """The stored form of a G&M property body (409 PropertyExists on a name clash)."""
    body = call.body
    name = body["propertyName"]
    if properties.name_taken(call.store, group.id, name, existing.id if existing else None):
        raise conflict("PropertyExists", "Property with this 'propertyName' already exists.", "propertyName")
    return properties.unified_property(
        call.store,
        mapping,
        group,
        existing,
        name=name,
        data_type=body["dataType"],
        quantity_type=body.get("quantityType"),
        ec_properties=body.get("ecProperties"),
        calculated_type=body.get("calculatedPropertyType"),
        formula=body.get("formula"),
    )


def list_properties(call: Call) -> Response:
    mapping, group = _group(call)
    return page_response(call, "property", group.id, "properties", lambda r: _property_out(call, mapping, r))


def get_property(call: Call) -> Response:
    mapping, _, prop = _property(call)
    return _one("property", _property_out(call, mapping, prop))


def create_property(call: Call) -> Response:
    mapping, group = _group(call)
    record = properties.add_property(call.caller, mapping, group, _property_data(call, mapping, group, None))
    return _one("property", _property_out(call, mapping, record))


def update_property(call: Call) -> Response:
    mapping, group, prop = _property(call)
    record = properties.replace_property(call.caller, mapping, prop, _property_data(call, mapping, group, prop))
    return _one("property", _property_out(call, mapping, record))


def delete_property(call: Call) -> Response:
    mapping, _, prop = _property(call)
    properties.remove_property(call.caller, mapping, prop)
    return Response(status_code=204)


# -- extractions -------------------------------------------------------------------------------------------------


def _extraction_out(call: Call, job: Record) -> dict[str, Any]:
    data = job.data
    state = data["state"]
    if state == "Succeeded" and data.get("containsIssues"):
        state = "PartiallySucceeded"  # G&M's name for a run where some groups failed [I]
    return {
        "id": job.id,
        "state": state,
        "startedOn": data["startedOn"],
        "_links": {"status": call.link(f"{MAPPINGS}/extractions/{job.id}")},
    }


def run_extraction(call: Call) -> Response:
    body = call.body
    imodel_id = body["iModelId"]
    request: dict[str, Any] = {k: body[k] for k in ("mappings", "changesetId", "ecInstanceIds") if k in body}
    job = extractions.start_extraction(call.caller, call.sandbox.jobs, imodel_id, request, "iModelId")
    return _one("extraction", _extraction_out(call, job))


def _job(call: Call) -> Record:
    job = extractions.job(call.store, call.path["extractionId"])
    if job is None:
        raise not_found("ExtractionNotFound", "Extraction", "extractionId")
    return job


def get_extraction(call: Call) -> Response:
    return _one("extraction", _extraction_out(call, _job(call)))


def list_imodel_extractions(call: Call) -> Response:
    imodel_id = call.query["iModelId"]
    imodel(call.store, imodel_id, "iModelId")
    return page_response(call, "job", imodel_id, "extractions", lambda r: _extraction_out(call, r))


def list_logs(call: Call) -> Response:
    job = _job(call)
    keys = ("state", "dateTime", "contextType", "contextId", "level", "category", "message")
    return page_response(call, "log", job.id, "logs", lambda r: {k: r.data.get(k) for k in keys})


def list_mapping_extractions(call: Call) -> Response:
    mapping = _mapping(call)

    def shape(record: Record) -> dict[str, Any]:
        return {
            **{k: v for k, v in record.data.items() if k != "id"},
            "_links": {"cdm": call.link(f"{MAPPINGS}/{mapping.id}/extractions/{record.data['extractionId']}/cdm")},
        }

    return page_response(call, "mapping_extraction", mapping.id, "extractions", shape)


def _tables(call: Call, mapping: Record, job_id: str) -> dict[str, list[tuple[str, str]]]:
    tables = extractions.output_tables(call.store, job_id, mapping.id)
    if not tables:
        ran = call.store.get("mapping_extraction", job_id, parent=mapping.id)
        reason = (
            "a newer extraction replaced its tables; read the latest one (gm_list_mapping_extractions)"
            if ran
            else "this mapping was not extracted by it"
        )
        raise SandboxError(404, "ExtractionNotFound", f"No CDM for this extraction: {reason}.", "extractionId")
    return tables


def get_cdm(call: Call) -> Response:
    mapping = _mapping(call)
    entities = [
        {
            "$type": "LocalEntity",
            "name": table,
            "attributes": [{"name": name, "dataType": CDM_TYPES.get(kind, "string")} for name, kind in columns],
            "partitions": [{"name": "part00000", "location": f"{table}/part00000.csv"}],
        }
        for table, columns in _tables(call, mapping, call.path["extractionId"]).items()
    ]
    return json_response({"name": "Insights_and_Reporting_Extractor", "version": "1.0", "entities": entities})


def get_cdm_partition(call: Call) -> Response:
    """The partition as CSV without a header row (the CDM's attributes name the columns) [I]."""
    mapping = _mapping(call)
    location = call.query["location"]
    table, _, part = location.partition("/")
    tables = _tables(call, mapping, call.path["extractionId"])
    if table not in tables or part != "part00000.csv":
        raise not_found("PartitionNotFound", "Partition", "location")
    out = io.StringIO()
    writer = csv.writer(out)
    for values in extractions.output_rows(call.store, call.path["extractionId"], mapping.id, table):
        writer.writerow(["" if v is None else v for v in values])
    return Response(out.getvalue(), media_type="text/csv")


def list_audit(call: Call) -> Response:
    imodel_id = call.query["iModelId"]
    imodel(call.store, imodel_id, "iModelId")
    q = call.query
    entries = trail(call.store, imodel_id, path=q.get("path"), after=q.get("after"), before=q.get("before"))
    return offset_page(call, "auditTrailEntries", entries)


HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-mappings": list_mappings,
    "get-mapping": lambda c: _one("mapping", _mapping_out(c, _mapping(c))),
    "create-mapping": create_mapping,
    "update-mapping": update_mapping,
    "delete-mapping": delete_mapping,
    "get-groups": list_groups,
    "get-group": get_group,
    "create-group": create_group,
    "update-group": update_group,
    "delete-group": delete_group,
    "get-properties": list_properties,
    "get-property": get_property,
    "create-property": create_property,
    "update-property": update_property,
    "delete-property": delete_property,
    "run-extraction": run_extraction,
    "get-extraction-status": get_extraction,
    "get-imodel-extractions": list_imodel_extractions,
    "get-extraction-logs": list_logs,
    "get-mapping-extractions": list_mapping_extractions,
    "get-cdm": get_cdm,
    "get-cdm-partition": get_cdm_partition,
    "get-audit-trail": list_audit,
}
