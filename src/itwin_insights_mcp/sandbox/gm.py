"""Handlers for Grouping & Mapping v1: mappings without an iModel in the path, one `Property` for all three column
kinds, extractions with CDM output, and the audit trail.

It shares the store with Reporting v1: a G&M mapping is a v1 mapping. A G&M `Property` is stored as the v1 kind its
value source gives (precedence ecProperties -> calculatedPropertyType -> formula; none is a placeholder group
property that is always null), so v1 lists show it as a group property, calculated property or custom calculation.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from .audit import audit
from .engine.extraction import extracted_rows, extracted_tables
from .http import Call, SandboxError, json_response, not_found, offset_page, page_response
from .reporting import (
    CALCULATED_QUANTITY,
    _check_formulas,
    _delete_group_tree,
    _imodel,
    _property_path,
    _touch,
    check_run_request,
    copy_group,
    copy_groups,
    delete_mapping_tree,
    update_mapping_record,
)
from .store import Record

__all__ = ["GM_HANDLERS"]

GM = "/grouping-and-mapping/datasources/imodel-mappings"
CDM_TYPES = {"String": "string", "Double": "double", "Number": "double", "Integer": "int64", "Boolean": "boolean"}


def _mapping(call: Call, mapping_id: str | None = None) -> Record:
    record = call.store.get("mapping", mapping_id or call.path["mappingId"])
    if record is None:
        raise not_found("MappingNotFound", "Mapping", "mappingId")
    return record


def _group(call: Call) -> tuple[Record, Record]:
    mapping = _mapping(call)
    group = call.store.get("group", call.path["groupId"], parent=mapping.id)
    if group is None:
        raise not_found("GroupNotFound", "Group", "groupId")
    return mapping, group


def _property(call: Call) -> tuple[Record, Record, Record]:
    mapping, group = _group(call)
    prop = call.store.get("property", call.path["propertyId"], parent=group.id)
    if prop is None:
        raise not_found("PropertyNotFound", "Property", "propertyId")
    return mapping, group, prop


def _links(call: Call, imodel_id: str, mapping_id: str | None = None, group_id: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {"iModel": call.href(f"/imodels/{imodel_id}")}
    if mapping_id:
        links["mapping"] = call.href(f"{GM}/{mapping_id}")
    if group_id:
        links["group"] = call.href(f"{GM}/{mapping_id}/groups/{group_id}")
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
    _imodel(call, imodel_id, "iModelId")
    return page_response(call, "mapping", imodel_id, "mappings", lambda r: _mapping_out(call, r))


def create_mapping(call: Call) -> Response:
    body = call.body
    imodel_id = body["iModelId"]
    with call.store.transaction():
        _imodel(call, imodel_id, "iModelId")
        source = _mapping(call, body["sourceMappingId"]) if body.get("sourceMappingId") else None
        base: dict[str, Any] = {"description": "", "extractionEnabled": False, **(source.data if source else {})}
        data: dict[str, Any] = {
            **base,
            "id": str(uuid.uuid4()),
            "mappingName": body["mappingName"],
            **{k: body[k] for k in ("description", "extractionEnabled") if k in body},
            **call.created(),
        }
        record = call.store.insert("mapping", imodel_id, data)
        if source is not None:
            copy_groups(call.store, source.id, record.id, imodel_id)
        audit(call, imodel_id, f"mappings/{record.id}", "Create", None, data)
    return _one("mapping", _mapping_out(call, record))


def update_mapping(call: Call) -> Response:
    with call.store.transaction():
        record = update_mapping_record(call, _mapping(call))
    return _one("mapping", _mapping_out(call, record))


def delete_mapping(call: Call) -> Response:
    with call.store.transaction():
        delete_mapping_tree(call, _mapping(call))
    return Response(status_code=204)


# -- groups ------------------------------------------------------------------------------------------------------


def list_groups(call: Call) -> Response:
    mapping = _mapping(call)
    full = "return=representation" in call.request.headers.get("prefer", "").replace(" ", "").lower()
    return page_response(call, "group", mapping.id, "groups", lambda r: _group_out(call, mapping, r, full=full))


def get_group(call: Call) -> Response:
    mapping, group = _group(call)
    return _one("group", _group_out(call, mapping, group))


def _check_metadata(call: Call, metadata: list[dict[str, Any]]) -> None:
    keys = [str(m.get("key", "")).strip() for m in metadata]
    if any(not k for k in keys) or len(set(keys)) != len(keys):
        raise call.invalid("metadata keys must be non-blank and unique within the group.", "metadata")


def create_group(call: Call) -> Response:
    body = call.body
    _check_metadata(call, body.get("metadata", []))
    with call.store.transaction():
        mapping = _mapping(call)
        fields = {
            "groupName": body["groupName"],
            "description": body.get("description", ""),
            "query": body["query"],
            "metadata": body.get("metadata", []),
        }
        source = body.get("source")
        if source:  # copy the properties of another group; name, query and description come from this body
            source_group = call.store.get("group", source["groupId"], parent=source["mappingId"])
            if source_group is None:
                raise not_found("GroupNotFound", "Group", "source.groupId")
            record = copy_group(call.store, source_group, mapping.id, mapping.parent, fields)
        else:
            record = call.store.insert("group", mapping.id, {"id": str(uuid.uuid4()), **fields})
        _touch(call, mapping)
        audit(call, mapping.parent, f"mappings/{mapping.id}/groups/{record.id}", "Create", None, record.data)
    return _one("group", _group_out(call, mapping, record))


def update_group(call: Call) -> Response:
    _check_metadata(call, call.body.get("metadata", []))
    with call.store.transaction():
        mapping, group = _group(call)
        record = call.store.update(group, {**group.data, **call.body})
        _touch(call, mapping)
        audit(call, mapping.parent, f"mappings/{mapping.id}/groups/{group.id}", "Update", group.data, record.data)
    return _one("group", _group_out(call, mapping, record))


def delete_group(call: Call) -> Response:
    with call.store.transaction():
        mapping, group = _group(call)
        _delete_group_tree(call, group)
        _touch(call, mapping)
        audit(call, mapping.parent, f"mappings/{mapping.id}/groups/{group.id}", "Delete", group.data, None)
    return Response(status_code=204)


# -- properties --------------------------------------------------------------------------------------------------


def _property_data(call: Call, mapping: Record, group: Record, existing: Record | None) -> dict[str, Any]:
    """The stored form of a G&M property body: the v1 kind its value source gives, plus every field given."""
    body = call.body
    name = body["propertyName"]
    for other in call.store.children("property", group.id):
        if (existing is None or other.id != existing.id) and other.data["propertyName"].lower() == name.lower():
            raise SandboxError(
                409, "PropertyExists", "Property with this 'propertyName' already exists.", "propertyName"
            )
    ec = [{**e, "ecPropertyType": body["dataType"]} for e in body.get("ecProperties") or []]
    kind = (
        "group"
        if ec
        else "calculated"
        if body.get("calculatedPropertyType")
        else ("custom" if body.get("formula") else "group")
    )
    data: dict[str, Any] = {
        "id": existing.id if existing else str(uuid.uuid4()),
        "kind": kind,
        "propertyName": name,
        "dataType": body["dataType"],
        "quantityType": body.get("quantityType") or "Undefined",
        "ecProperties": ec,
        "calculatedPropertyType": body.get("calculatedPropertyType"),
        "formula": body.get("formula"),
        "imodelId": mapping.parent,
        "mappingId": mapping.id,
    }
    if kind == "calculated":
        data["type"] = body["calculatedPropertyType"]
        data["quantityType"] = body.get("quantityType") or CALCULATED_QUANTITY.get(data["type"], "Distance")
    if kind == "custom":
        _check_formulas(call, group, name, body["formula"], existing.id if existing else None)
    return data


def list_properties(call: Call) -> Response:
    mapping, group = _group(call)
    return page_response(call, "property", group.id, "properties", lambda r: _property_out(call, mapping, r))


def get_property(call: Call) -> Response:
    mapping, _, prop = _property(call)
    return _one("property", _property_out(call, mapping, prop))


def create_property(call: Call) -> Response:
    with call.store.transaction():
        mapping, group = _group(call)
        data = _property_data(call, mapping, group, None)
        record = call.store.insert("property", group.id, data)
        _touch(call, mapping)
        audit(call, mapping.parent, _property_path(record), "Create", None, data)
    return _one("property", _property_out(call, mapping, record))


def update_property(call: Call) -> Response:
    with call.store.transaction():
        mapping, group, prop = _property(call)
        data = _property_data(call, mapping, group, prop)
        record = call.store.update(prop, data)
        _touch(call, mapping)
        audit(call, mapping.parent, _property_path(record), "Update", prop.data, data)
    return _one("property", _property_out(call, mapping, record))


def delete_property(call: Call) -> Response:
    with call.store.transaction():
        mapping, _, prop = _property(call)
        call.store.delete(prop)
        _touch(call, mapping)
        audit(call, mapping.parent, _property_path(prop), "Delete", prop.data, None)
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
        "_links": {"status": call.href(f"{GM}/extractions/{job.id}")},
    }


def run_extraction(call: Call) -> Response:
    body = call.body
    imodel_id = body["iModelId"]
    with call.store.transaction():
        check_run_request(call, imodel_id, body, "iModelId")
        request: dict[str, Any] = {k: body[k] for k in ("mappings", "changesetId", "ecInstanceIds") if k in body}
        job = call.sandbox.jobs.enqueue(imodel_id, request, call.user_email)
    call.sandbox.jobs.start(job.id)
    return _one("extraction", _extraction_out(call, job))


def _job(call: Call) -> Record:
    job = call.store.get("job", call.path["extractionId"])
    if job is None:
        raise not_found("ExtractionNotFound", "Extraction", "extractionId")
    return job


def get_extraction(call: Call) -> Response:
    return _one("extraction", _extraction_out(call, _job(call)))


def list_imodel_extractions(call: Call) -> Response:
    imodel_id = call.query["iModelId"]
    _imodel(call, imodel_id, "iModelId")
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
            "_links": {"cdm": call.href(f"{GM}/{mapping.id}/extractions/{record.data['extractionId']}/cdm")},
        }

    return page_response(call, "mapping_extraction", mapping.id, "extractions", shape)


def _tables(call: Call, mapping: Record, job_id: str) -> dict[str, list[tuple[str, str]]]:
    tables = extracted_tables(call.store.conn, job_id, mapping.id)
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
    for values in extracted_rows(call.store.conn, call.path["extractionId"], mapping.id, table):
        writer.writerow(["" if v is None else v for v in values])
    return Response(out.getvalue(), media_type="text/csv")


def list_audit(call: Call) -> Response:
    imodel_id = call.query["iModelId"]
    _imodel(call, imodel_id, "iModelId")
    path = call.query.get("path")
    after, before = call.query.get("after"), call.query.get("before")
    entries = []
    for record in call.store.children("audit", imodel_id):
        entry = record.data
        if path and not entry["path"].startswith(path.strip("/")):
            continue
        if (after and entry["timestamp"] <= after) or (before and entry["timestamp"] >= before):
            continue
        entries.append(entry)
    return offset_page(call, "auditTrailEntries", entries)


GM_HANDLERS: dict[str, Callable[[Call], Response]] = {
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
