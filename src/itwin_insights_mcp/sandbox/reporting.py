"""Handlers for Reporting v1: mappings, groups, the three property kinds, extraction, reports, aggregations.

Each handler gets a validated `Call` and answers exactly as the reference describes: wrapper keys, 200 on create,
204 on delete, `_links` built from the request's own base URL, and the documented error codes. Writes run inside
one transaction. OData handlers live in `odata.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from .audit import audit
from .engine.formulas import FormulaError, check
from .http import Call, SandboxError, json_response, not_found, page_response
from .odata import ODATA_HANDLERS
from .store import Record, Store, now_iso

__all__ = ["REPORTING_HANDLERS"]

RP = "/insights/reporting"


@dataclass(frozen=True)
class PropertyKind:
    """How one of the three v1 column kinds is named on the wire and in errors."""

    single_key: str
    list_key: str
    path_param: str
    label: str
    not_found: str
    exists_code: str
    exists_message: str
    not_found_target: str  # the 404's target as the Swagger's examples give it


PROPERTY_KINDS = {
    "group": PropertyKind(
        "property",
        "properties",
        "propertyId",
        "GroupProperty",
        "GroupPropertyNotFound",
        "GroupPropertyExists",
        "GroupProperty with this 'displayName' already exists.",
        "id",
    ),
    "calculated": PropertyKind(
        "property",
        "properties",
        "propertyId",
        "CalculatedProperty",
        "CalculatedPropertyNotFound",
        "CalculatedPropertyExists",
        "CalculatedProperty with this 'propertyName' already exists.",
        "propertyId",
    ),
    "custom": PropertyKind(
        "customCalculation",
        "customCalculations",
        "customCalculationId",
        "CustomCalculation",
        "CustomCalculationNotFound",
        "CustomCalculationExists",
        "CustomCalculation with this 'propertyName' already exists.",
        "customCalculationId",
    ),
}
CALCULATED_QUANTITY = {"Length": "Distance", "Area": "Area", "Volume": "Volume"}  # BoundingBox* -> Distance [I]


def _no_content() -> Response:
    return Response(status_code=204)


def _mapping_url(call: Call, imodel_id: str, mapping_id: str) -> str:
    return f"{call.base_url}{RP}/datasources/imodels/{imodel_id}/mappings/{mapping_id}"


# -- lookups (each raises the API's 404) ------------------------------------------------------------------------


def _imodel(call: Call, imodel_id: str, target: str = "imodelId") -> dict[str, Any]:
    imodel = call.store.imodel(imodel_id)
    if imodel is None:
        raise not_found("iModelNotFound", "iModel", target)
    return imodel


def _mapping(call: Call, target: str = "id") -> Record:
    """The mapping in the path; an unknown iModel is named first (404 iModelNotFound), as on every v1 route."""
    mapping = call.store.get("mapping", call.path["mappingId"], parent=call.path["imodelId"])
    if mapping is None:
        _imodel(call, call.path["imodelId"])
        raise not_found("MappingNotFound", "Mapping", target)
    return mapping


def _group(call: Call) -> Record:
    mapping = _mapping(call)
    group = call.store.get("group", call.path["groupId"], parent=mapping.id)
    if group is None:
        raise not_found("GroupNotFound", "Group")
    return group


def _property(call: Call, kind: str) -> Record:
    group = _group(call)
    spec = PROPERTY_KINDS[kind]
    prop = call.store.get("property", call.path[spec.path_param], parent=group.id)
    if prop is None or prop.data.get("kind") != kind:
        raise not_found(spec.not_found, spec.label, spec.not_found_target)
    return prop


def _report(call: Call, *, allow_deleted: bool = True) -> Record:
    report = call.store.get("report", call.path["reportId"])
    if report is None or (not allow_deleted and report.data.get("deleted")):
        raise not_found("ReportNotFound", "Report")
    return report


def _find_mapping(call: Call, mapping_id: str, target: str) -> Record:
    mapping = call.store.get("mapping", mapping_id)
    if mapping is None:
        raise not_found("MappingNotFound", "Mapping", target)
    return mapping


def _table_set(call: Call, set_id: str | None = None, target: str = "aggregationTableSetId") -> Record:
    record = call.store.get("table_set", set_id or call.path["aggregationTableSetId"])
    if record is None:
        raise not_found("AggregationTableSetNotFound", "Aggregation Table Set", target)
    return record


def _agg_table(call: Call) -> Record:
    table_set = _table_set(call)
    table = call.store.get("agg_table", call.path["aggregationTableId"], parent=table_set.id)
    if table is None:
        raise not_found("AggregationTableNotFound", "Aggregation Table", "aggregationTableId")
    return table


def _agg_property(call: Call) -> Record:
    table = _agg_table(call)
    prop = call.store.get("agg_property", call.path["aggregationPropertyId"], parent=table.id)
    if prop is None:
        raise not_found("AggregationPropertyNotFound", "Aggregation Property", "aggregationPropertyId")
    return prop


# -- shapes (stored data + `_links`) ------------------------------------------------------------------------------


def _mapping_out(call: Call, record: Record) -> dict[str, Any]:
    return {**record.data, "_links": {"imodel": call.href(f"/imodels/{record.parent}")}}


def _group_out(call: Call, record: Record) -> dict[str, Any]:
    return {k: record.data[k] for k in ("id", "groupName", "description", "query")}


def _property_out(call: Call, record: Record) -> dict[str, Any]:
    data = record.data
    kind = data["kind"]
    if kind == "group":
        return {k: data[k] for k in ("id", "propertyName", "dataType", "quantityType", "ecProperties")}
    imodel_id, mapping_id, group_id = data["imodelId"], data["mappingId"], record.parent
    mapping_url = _mapping_url(call, imodel_id, mapping_id)
    links = {
        "imodel": call.href(f"/imodels/{imodel_id}"),
        "mapping": {"href": mapping_url},
        "group": {"href": f"{mapping_url}/groups/{group_id}"},
    }
    fields = (
        ("id", "propertyName", "type", "quantityType")
        if kind == "calculated"
        else ("id", "propertyName", "formula", "dataType", "quantityType")
    )
    return {**{k: data.get(k) for k in fields}, "_links": links}


def _v2(call: Call) -> bool:
    return call.op.family.name == "reporting-v2"


def _report_out(call: Call, record: Record) -> dict[str, Any]:
    """v1 links the project; v2 the iTwin (the same id). The OData link names its version, for Power BI."""
    if _v2(call):
        context = {"iTwin": call.href(f"/itwins/{record.parent}")}
    else:
        context = {"project": call.href(f"/projects/{record.parent}")}
    version = "v2" if _v2(call) else "v1"
    return {
        **{k: record.data[k] for k in ("id", "displayName", "description", "deleted", "createdOn", "modifiedOn")},
        "_links": {**context, "odata": call.href(f"{RP}/odata/{record.id}?api-version={version}")},
    }


def _report_mapping_out(call: Call, record: Record) -> dict[str, Any]:
    data = record.data
    return {
        "reportId": record.parent,
        "mappingId": record.id,
        "imodelId": data["imodelId"],
        "_links": {
            "report": call.href(f"{RP}/reports/{record.parent}"),
            "mapping": {"href": _mapping_url(call, data["imodelId"], record.id)},
            "imodel": call.href(f"/imodels/{data['imodelId']}"),
        },
    }


def _datasource_link(call: Call, mapping_id: str) -> dict[str, str]:
    mapping = call.store.get("mapping", mapping_id)
    if mapping is None:  # the mapping was deleted after the table set was made
        return call.href(f"{RP}/datasources/imodelMappings/{mapping_id}")
    return {"href": _mapping_url(call, mapping.parent, mapping_id)}


def _report_aggregation_out(call: Call, record: Record) -> dict[str, Any]:
    data = record.data
    return {
        "reportId": record.parent,
        "aggregationTableSetId": record.id,
        "datasourceId": data["datasourceId"],
        "datasourceType": data["datasourceType"],
        "_links": {
            "report": call.href(f"{RP}/reports/{record.parent}"),
            "aggregationTableSet": call.href(f"{RP}/datasources/aggregations/{record.id}"),
            "datasource": _datasource_link(call, data["datasourceId"]),
        },
    }


def _table_set_out(call: Call, record: Record) -> dict[str, Any]:
    return {
        **{k: v for k, v in record.data.items() if k != "datasourceId"},
        "_links": {"datasource": _datasource_link(call, record.parent)},
    }


def _agg_table_out(call: Call, record: Record) -> dict[str, Any]:
    table_set = call.store.get("table_set", record.parent)
    datasource = table_set.parent if table_set else ""
    return {
        **record.data,
        "_links": {
            "datasource": _datasource_link(call, datasource),
            "aggregationTableSet": call.href(f"{RP}/datasources/aggregations/{record.parent}"),
        },
    }


def _agg_property_out(call: Call, record: Record) -> dict[str, Any]:
    table = call.store.get("agg_table", record.parent)
    set_id = table.parent if table else ""
    table_set = call.store.get("table_set", set_id)
    return {
        **record.data,
        "_links": {
            "datasource": _datasource_link(call, table_set.parent if table_set else ""),
            "aggregationTableSet": call.href(f"{RP}/datasources/aggregations/{set_id}"),
            "aggregationTable": call.href(f"{RP}/datasources/aggregations/{set_id}/tables/{record.parent}"),
        },
    }


def _one(key: str, value: dict[str, Any]) -> Response:
    return json_response({key: value})


# -- mappings ----------------------------------------------------------------------------------------------------


def list_mappings(call: Call) -> Response:
    _imodel(call, call.path["imodelId"])
    return page_response(call, "mapping", call.path["imodelId"], "mappings", lambda r: _mapping_out(call, r))


def get_mapping(call: Call) -> Response:
    return _one("mapping", _mapping_out(call, _mapping(call)))


def create_mapping(call: Call) -> Response:
    imodel_id = call.path["imodelId"]
    _imodel(call, imodel_id)
    data = {
        "id": str(uuid.uuid4()),
        "mappingName": call.body["mappingName"],
        "description": call.body.get("description", ""),
        "extractionEnabled": call.body.get("extractionEnabled", True),
        **call.created(),
    }
    with call.store.transaction():
        record = call.store.insert("mapping", imodel_id, data)
        audit(call, imodel_id, f"mappings/{record.id}", "Create", None, data)
    return _one("mapping", _mapping_out(call, record))


def update_mapping_record(call: Call, mapping: Record) -> Record:
    """Apply a mapping PATCH body (caller's transaction, audited); v1 and Grouping & Mapping share it."""
    data = {**mapping.data, **call.body, **call.modified()}
    audit(call, mapping.parent, f"mappings/{mapping.id}", "Update", mapping.data, data)
    return call.store.update(mapping, data)


def update_mapping(call: Call) -> Response:
    with call.store.transaction():
        record = update_mapping_record(call, _mapping(call))
    return _one("mapping", _mapping_out(call, record))


def _delete_group_tree(call: Call, group: Record) -> None:
    call.store.delete_children("property", group.id)
    call.store.delete(group)


def delete_mapping_tree(call: Call, mapping: Record) -> None:
    """A mapping, its groups and their properties, and the report links to it (caller's transaction, audited)."""
    for group in call.store.children("group", mapping.id):
        _delete_group_tree(call, group)
    call.store.conn.execute("DELETE FROM records WHERE kind = 'report_mapping' AND id = ?", (mapping.id,))
    call.store.delete(mapping)
    audit(call, mapping.parent, f"mappings/{mapping.id}", "Delete", mapping.data, None)


def delete_mapping(call: Call) -> Response:
    with call.store.transaction():
        delete_mapping_tree(call, _mapping(call))
    return _no_content()


def copy_mapping(call: Call) -> Response:
    target_imodel = call.body["targetIModelId"]
    with call.store.transaction():
        source = _mapping(call, "mappingId")  # the Swagger's copy-mapping example names mappingId
        _imodel(call, target_imodel, "targetIModelId")
        name = call.body.get("mappingName")
        if name is None:
            if len(source.data["mappingName"]) >= 124:
                raise call.invalid(
                    "mappingName is required: the source mapping's name has 124 or more characters, so "
                    "'<name>_Copy' would exceed 128.",
                    "mappingName",
                )
            name = f"{source.data['mappingName']}_Copy"
        copy = call.store.insert(
            "mapping",
            target_imodel,
            {**source.data, "id": str(uuid.uuid4()), "mappingName": name, **call.created()},
        )
        copy_groups(call.store, source.id, copy.id, target_imodel)
        audit(call, target_imodel, f"mappings/{copy.id}", "Create", None, copy.data)
    return _one("mapping", _mapping_out(call, copy))


def copy_groups(store: Store, source_mapping: str, target_mapping: str, imodel_id: str) -> None:
    """Deep-copy every group of a mapping, with its properties of all kinds, under another mapping."""
    for group in store.children("group", source_mapping):
        copy_group(store, group, target_mapping, imodel_id, group.data)


def copy_group(store: Store, group: Record, target_mapping: str, imodel_id: str, fields: dict[str, Any]) -> Record:
    """One group (with `fields` as its own data) and all its properties, under `target_mapping`."""
    new_group = store.insert("group", target_mapping, {**fields, "id": str(uuid.uuid4())})
    for prop in store.children("property", group.id):
        store.insert(
            "property",
            new_group.id,
            {**prop.data, "id": str(uuid.uuid4()), "imodelId": imodel_id, "mappingId": target_mapping},
        )
    return new_group


# -- groups ------------------------------------------------------------------------------------------------------


def list_groups(call: Call) -> Response:
    mapping = _mapping(call)
    return page_response(call, "group", mapping.id, "groups", lambda r: _group_out(call, r))


def get_group(call: Call) -> Response:
    return _one("group", _group_out(call, _group(call)))


def create_group(call: Call) -> Response:
    with call.store.transaction():
        mapping = _mapping(call)
        data = {
            "id": str(uuid.uuid4()),
            "groupName": call.body["groupName"],
            "description": call.body.get("description", ""),
            "query": call.body["query"],
        }
        record = call.store.insert("group", mapping.id, data)
        _touch(call, mapping)
        audit(call, mapping.parent, f"mappings/{mapping.id}/groups/{record.id}", "Create", None, data)
    return _one("group", _group_out(call, record))


def update_group(call: Call) -> Response:
    with call.store.transaction():
        group = _group(call)
        record = call.store.update(group, {**group.data, **call.body})
        _touch(call, _mapping(call))
        audit(
            call, call.path["imodelId"], f"mappings/{group.parent}/groups/{group.id}", "Update", group.data, record.data
        )
    return _one("group", _group_out(call, record))


def delete_group(call: Call) -> Response:
    with call.store.transaction():
        group = _group(call)
        _delete_group_tree(call, group)
        _touch(call, _mapping(call))
        audit(call, call.path["imodelId"], f"mappings/{group.parent}/groups/{group.id}", "Delete", group.data, None)
    return _no_content()


def _touch(call: Call, mapping: Record) -> None:
    """A change below a mapping updates its modifiedOn/modifiedBy."""
    call.store.update(mapping, {**mapping.data, **call.modified()})


# -- group properties, calculated properties, custom calculations ------------------------------------------------


def _check_name_free(call: Call, group: Record, kind: str, name: str, exclude: str | None = None) -> None:
    """Column names are unique within a group across all three kinds (case-insensitive) [I]."""
    for other in call.store.children("property", group.id):
        if other.id != exclude and other.data["propertyName"].lower() == name.lower():
            spec = PROPERTY_KINDS[kind]
            raise SandboxError(409, spec.exists_code, spec.exists_message, "propertyName")


def _column_types(props: list[Record]) -> dict[str, str | None]:
    types: dict[str, str | None] = {}
    for prop in props:
        data = prop.data
        if data["kind"] == "group":
            types[data["propertyName"]] = "Double" if data["dataType"] == "Number" else data["dataType"]
        elif data["kind"] == "calculated":
            types[data["propertyName"]] = "Double"
    return types


def _check_formulas(call: Call, group: Record, name: str, formula: str, exclude: str | None) -> str:
    """Validate the group's formulas with this one added/changed; returns its inferred dataType (422 if invalid)."""
    props = [p for p in call.store.children("property", group.id) if p.id != exclude]
    formulas = {p.data["propertyName"]: p.data["formula"] for p in props if p.data["kind"] == "custom"}
    formulas[name] = formula
    try:
        inferred = check(formulas, _column_types(props))
    except FormulaError as exc:
        raise call.invalid(str(exc), "formula") from None
    return str(inferred[name])


def _property_path(record: Record) -> str:
    return f"mappings/{record.data['mappingId']}/groups/{record.parent}/properties/{record.id}"


def _create_property(call: Call, kind: str) -> Response:
    body = call.body
    with call.store.transaction():
        group = _group(call)
        _check_name_free(call, group, kind, body["propertyName"])
        data: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "kind": kind,
            "propertyName": body["propertyName"],
            "imodelId": call.path["imodelId"],
            "mappingId": call.path["mappingId"],
        }
        if kind == "group":
            data.update(
                dataType=body["dataType"],
                quantityType=body.get("quantityType", "Undefined"),
                ecProperties=body["ecProperties"],
            )
        elif kind == "calculated":
            data.update(type=body["type"], quantityType=CALCULATED_QUANTITY.get(body["type"], "Distance"))
        else:
            data.update(
                formula=body["formula"],
                quantityType=body.get("quantityType", "Undefined"),
                dataType=_check_formulas(call, group, body["propertyName"], body["formula"], None),
            )
        record = call.store.insert("property", group.id, data)
        _touch(call, _mapping(call))
        audit(call, data["imodelId"], _property_path(record), "Create", None, data)
    return _one(PROPERTY_KINDS[kind].single_key, _property_out(call, record))


def _update_property(call: Call, kind: str) -> Response:
    body = call.body
    with call.store.transaction():
        prop = _property(call, kind)
        group = _group(call)
        data = {**prop.data, **body}
        if kind == "group":  # PUT: a full replacement; omitted optional fields fall back to defaults
            data["quantityType"] = body.get("quantityType", "Undefined")
        if "propertyName" in body:
            _check_name_free(call, group, kind, body["propertyName"], exclude=prop.id)
        if kind == "calculated" and "type" in body:
            data["quantityType"] = CALCULATED_QUANTITY.get(body["type"], "Distance")
        if kind == "custom":
            data["dataType"] = _check_formulas(call, group, data["propertyName"], data["formula"], prop.id)
        record = call.store.update(prop, data)
        _touch(call, _mapping(call))
        audit(call, data["imodelId"], _property_path(record), "Update", prop.data, data)
    return _one(PROPERTY_KINDS[kind].single_key, _property_out(call, record))


def _list_properties(call: Call, kind: str) -> Response:
    group = _group(call)
    return page_response(
        call,
        "property",
        group.id,
        PROPERTY_KINDS[kind].list_key,
        lambda r: _property_out(call, r),
        equals={"kind": kind},
    )


def _get_property(call: Call, kind: str) -> Response:
    return _one(PROPERTY_KINDS[kind].single_key, _property_out(call, _property(call, kind)))


def _delete_property(call: Call, kind: str) -> Response:
    with call.store.transaction():
        prop = _property(call, kind)
        call.store.delete(prop)
        _touch(call, _mapping(call))
        audit(call, prop.data["imodelId"], _property_path(prop), "Delete", prop.data, None)
    return _no_content()


def _property_handlers(kind: str, single: str, plural: str) -> dict[str, Callable[[Call], Response]]:
    """The five operations of one column kind, keyed by operation id."""
    return {
        f"get-{plural}": lambda c: _list_properties(c, kind),
        f"get-{single}": lambda c: _get_property(c, kind),
        f"create-{single}": lambda c: _create_property(c, kind),
        f"update-{single}": lambda c: _update_property(c, kind),
        f"delete-{single}": lambda c: _delete_property(c, kind),
    }


# -- extraction --------------------------------------------------------------------------------------------------


def _status_href(call: Call, job_id: str) -> dict[str, str]:
    return call.href(f"{RP}/datasources/extraction/status/{job_id}")


def check_run_request(call: Call, imodel_id: str, body: dict[str, Any], target: str = "imodelId") -> None:
    """An extraction request names a known iModel, its own mappings and one of its changesets."""
    imodel = _imodel(call, imodel_id, target)
    for item in body.get("mappings", []):
        if call.store.get("mapping", item["id"], parent=imodel_id) is None:
            raise not_found("MappingNotFound", "Mapping", "mappings")
    changeset = body.get("changesetId")
    if changeset and changeset not in {c["id"] for c in imodel.get("changesets", [])}:
        raise call.invalid(
            f"Unknown changesetId {changeset!r} for this iModel; list_changesets gives its "
            "changesets (omit changesetId for the latest).",
            "changesetId",
        )


def run_extraction(call: Call) -> Response:
    imodel_id = call.path["imodelId"]
    body = call.body
    with call.store.transaction():
        check_run_request(call, imodel_id, body)
        job = call.sandbox.jobs.enqueue(imodel_id, body, call.user_email)
    call.sandbox.jobs.start(job.id)
    return _one("run", {"id": job.id, "_links": {"status": _status_href(call, job.id)}})


def _job(call: Call, code: str, label: str, target: str, *, imodel_id: str | None = None) -> Record:
    job = call.store.get("job", call.path["jobId"], parent=imodel_id)
    if job is None:
        if imodel_id is not None:
            _imodel(call, imodel_id)
        raise not_found(code, label, target)
    return job


def _status_out(call: Call, job: Record) -> dict[str, Any]:
    data = job.data
    return {
        "state": data["state"],
        "reason": data["reason"],
        "containsIssues": data["containsIssues"],
        "_links": {"logs": call.href(f"{RP}/datasources/extraction/status/{job.id}/logs")},
    }


def get_extraction_status(call: Call) -> Response:
    return _one("status", _status_out(call, _job(call, "ExtractionStatusNotFound", "ExtractionStatus", "id")))


def get_imodel_extraction_status(call: Call) -> Response:
    job = _job(call, "ExtractionStatusNotFound", "ExtractionStatus", "id", imodel_id=call.path["imodelId"])
    return _one("status", _status_out(call, job))


def list_extraction_logs(call: Call) -> Response:
    job = _job(call, "ExtractionLogNotFound", "Extraction Log", "jobId")
    return page_response(call, "log", job.id, "logs", lambda r: {k: v for k, v in r.data.items() if k != "id"})


def list_extraction_history(call: Call) -> Response:
    imodel_id = call.path["imodelId"]
    _imodel(call, imodel_id)

    def shape(record: Record) -> dict[str, Any]:
        return {
            "jobId": record.id,
            "startedOn": record.data["startedOn"],
            "_links": {
                "status": _status_href(call, record.id),
                "logs": call.href(f"{RP}/datasources/extraction/status/{record.id}/logs"),
            },
        }

    return page_response(call, "job", imodel_id, "extractions", shape)


# -- reports -----------------------------------------------------------------------------------------------------


def list_reports(call: Call) -> Response:
    return page_response(
        call,
        "report",
        call.query.get("projectId") or call.query["iTwinId"],
        "reports",
        lambda r: _report_out(call, r),
        equals={"deleted": bool(call.query.get("deleted", False))},
    )


def get_report(call: Call) -> Response:
    return _one("report", _report_out(call, _report(call)))


def create_report(call: Call) -> Response:
    if not call.body["displayName"].strip():
        raise call.invalid("displayName must not be empty.", "displayName")
    now = now_iso()
    data = {
        "id": str(uuid.uuid4()),
        "displayName": call.body["displayName"],
        "description": call.body.get("description", ""),
        "deleted": False,
        "createdOn": now,
        "modifiedOn": now,
    }
    with call.store.transaction():
        context = call.body.get("projectId") or call.body["iTwinId"]  # v1 says projectId, v2 iTwinId: one id
        record = call.store.insert("report", context, data)
    return _one("report", _report_out(call, record))


def update_report(call: Call) -> Response:
    if "displayName" in call.body and not str(call.body["displayName"]).strip():
        raise call.invalid("displayName must not be empty.", "displayName")
    with call.store.transaction():
        report = _report(call)
        record = call.store.update(report, {**report.data, **call.body, "modifiedOn": now_iso()})
    return _one("report", _report_out(call, record))


def delete_report(call: Call) -> Response:
    """Soft delete: the report is flagged `deleted` and can be restored with PATCH {"deleted": false}."""
    with call.store.transaction():
        report = _report(call, allow_deleted=False)
        call.store.update(report, {**report.data, "deleted": True, "modifiedOn": now_iso()})
    return _no_content()


def list_report_mappings(call: Call) -> Response:
    report = _report(call, allow_deleted=False)
    return page_response(call, "report_mapping", report.id, "mappings", lambda r: _report_mapping_out(call, r))


def create_report_mapping(call: Call) -> Response:
    mapping_id = call.body["mappingId"]
    with call.store.transaction():
        report = _report(call, allow_deleted=False)
        mapping = call.store.get("mapping", mapping_id, parent=call.body.get("imodelId"))  # v2 sends no imodelId
        if mapping is None:
            raise not_found("MappingNotFound", "Mapping", "mappingId")
        imodel_id = mapping.parent
        if call.store.get("report_mapping", mapping_id, parent=report.id) is not None:
            raise SandboxError(409, "ReportMappingExists", "This mapping is already linked to the report.", "mappingId")
        record = call.store.insert("report_mapping", report.id, {"imodelId": imodel_id}, record_id=mapping_id)
    return _one("mapping", _report_mapping_out(call, record))


def delete_report_mapping(call: Call) -> Response:
    with call.store.transaction():
        report = _report(call, allow_deleted=False)
        record = call.store.get("report_mapping", call.path["mappingId"], parent=report.id)
        if record is None:
            raise not_found("ReportMappingNotFound", "ReportMapping")
        call.store.delete(record)
    return _no_content()


def list_report_aggregations(call: Call) -> Response:
    report = _report(call, allow_deleted=False)
    return page_response(
        call, "report_aggregation", report.id, "aggregations", lambda r: _report_aggregation_out(call, r)
    )


def _report_aggregation(call: Call) -> Record:
    report = _report(call, allow_deleted=False)
    record = call.store.get("report_aggregation", call.path["aggregationTableSetId"], parent=report.id)
    if record is None:
        raise not_found("AggregationTableSetNotFound", "Aggregation Table Set", "aggregationTableSetId")
    return record


def get_report_aggregation(call: Call) -> Response:
    return _one("aggregation", _report_aggregation_out(call, _report_aggregation(call)))


def create_report_aggregation(call: Call) -> Response:
    set_id = call.body["aggregationTableSetId"]
    with call.store.transaction():
        report = _report(call, allow_deleted=False)
        table_set = _table_set(call, set_id)
        if call.store.get("report_aggregation", set_id, parent=report.id) is not None:
            raise SandboxError(
                409,
                "ReportAggregationExists",
                "This aggregation table set is already linked to the report.",
                "aggregationTableSetId",
            )
        record = call.store.insert(
            "report_aggregation",
            report.id,
            {"datasourceId": table_set.parent, "datasourceType": table_set.data["datasourceType"]},
            record_id=set_id,
        )
    return _one("aggregation", _report_aggregation_out(call, record))


def delete_report_aggregation(call: Call) -> Response:
    with call.store.transaction():
        call.store.delete(_report_aggregation(call))
    return _no_content()


# -- aggregation table sets, tables, properties ------------------------------------------------------------------


def list_table_sets(call: Call) -> Response:
    return page_response(
        call,
        "table_set",
        call.query["datasourceId"],
        "aggregationTableSets",
        lambda r: _table_set_out(call, r),
        equals={"datasourceType": call.query["datasourceType"]},
    )


def create_table_set(call: Call) -> Response:
    body = call.body
    with call.store.transaction():
        _find_mapping(call, body["datasourceId"], "datasourceId")
        record = call.store.insert(
            "table_set",
            body["datasourceId"],
            {
                "id": str(uuid.uuid4()),
                "tableSetName": body["tableSetName"],
                "description": body.get("description", ""),
                "datasourceType": body["datasourceType"],
                **call.created(),
            },
        )
    return _one("aggregationTableSet", _table_set_out(call, record))


def update_table_set(call: Call) -> Response:
    with call.store.transaction():
        record = _table_set(call)
        record = call.store.update(record, {**record.data, **call.body, **call.modified()})
    return _one("aggregationTableSet", _table_set_out(call, record))


def delete_table_set(call: Call) -> Response:
    with call.store.transaction():
        record = _table_set(call)
        for table in call.store.children("agg_table", record.id):
            call.store.delete_children("agg_property", table.id)
            call.store.delete(table)
        call.store.conn.execute("DELETE FROM records WHERE kind = 'report_aggregation' AND id = ?", (record.id,))
        call.store.delete(record)
    return _no_content()


def _check_table_name(call: Call, set_id: str, name: str, exclude: str | None = None) -> None:
    for other in call.store.children("agg_table", set_id):
        if other.id != exclude and other.data["tableName"].lower() == name.lower():
            raise SandboxError(
                409, "AggregationTableExists", "AggregationTable with this 'tableName' already exists.", "tableName"
            )


def create_agg_table(call: Call) -> Response:
    with call.store.transaction():
        table_set = _table_set(call)
        _check_table_name(call, table_set.id, call.body["tableName"])
        record = call.store.insert(
            "agg_table",
            table_set.id,
            {
                "id": str(uuid.uuid4()),
                "tableName": call.body["tableName"],
                "description": call.body.get("description", ""),
                "sourceTableName": call.body["sourceTableName"],
            },
        )
    return _one("aggregationTable", _agg_table_out(call, record))


def update_agg_table(call: Call) -> Response:
    with call.store.transaction():
        table = _agg_table(call)
        if "tableName" in call.body:
            _check_table_name(call, table.parent, call.body["tableName"], exclude=table.id)
        record = call.store.update(table, {**table.data, **call.body})
    return _one("aggregationTable", _agg_table_out(call, record))


def delete_agg_table(call: Call) -> Response:
    with call.store.transaction():
        table = _agg_table(call)
        call.store.delete_children("agg_property", table.id)
        call.store.delete(table)
    return _no_content()


def create_agg_property(call: Call) -> Response:
    with call.store.transaction():
        table = _agg_table(call)
        for other in call.store.children("agg_property", table.id):
            if other.data["propertyName"].lower() == call.body["propertyName"].lower():
                raise SandboxError(
                    409,
                    "AggregationPropertyExists",
                    "AggregationProperty with this 'propertyName' already exists.",
                    "propertyName",
                )
        record = call.store.insert(
            "agg_property",
            table.id,
            {
                "id": str(uuid.uuid4()),
                "propertyName": call.body["propertyName"],
                "sourcePropertyName": call.body["sourcePropertyName"],
                "type": call.body["type"],
            },
        )
    return _one("aggregationProperty", _agg_property_out(call, record))


def update_agg_property(call: Call) -> Response:
    with call.store.transaction():
        prop = _agg_property(call)
        record = call.store.update(prop, {**prop.data, **call.body})
    return _one("aggregationProperty", _agg_property_out(call, record))


def delete_agg_property(call: Call) -> Response:
    with call.store.transaction():
        call.store.delete(_agg_property(call))
    return _no_content()


REPORTING_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-mappings": list_mappings,
    "get-mapping": get_mapping,
    "create-mapping": create_mapping,
    "update-mapping": update_mapping,
    "delete-mapping": delete_mapping,
    "copy-mapping": copy_mapping,
    "get-groups": list_groups,
    "get-group": get_group,
    "create-group": create_group,
    "update-group": update_group,
    "delete-group": delete_group,
    **_property_handlers("group", "groupproperty", "groupproperties"),
    **_property_handlers("calculated", "calculatedproperty", "calculatedproperties"),
    **_property_handlers("custom", "customcalculation", "customcalculations"),
    "run-extraction": run_extraction,
    "get-extraction-status": get_extraction_status,
    "get-extraction-status-deprecated": get_imodel_extraction_status,
    "get-extraction-logs": list_extraction_logs,
    "get-extraction-history": list_extraction_history,
    "get-project-reports": list_reports,
    "get-report": get_report,
    "create-report": create_report,
    "update-report": update_report,
    "delete-report": delete_report,
    "get-report-mappings": list_report_mappings,
    "create-report-mapping": create_report_mapping,
    "delete-report-mapping": delete_report_mapping,
    "get-report-aggregations": list_report_aggregations,
    "get-report-aggregation": get_report_aggregation,
    "create-report-aggregation": create_report_aggregation,
    "delete-report-aggregation": delete_report_aggregation,
    "get-aggregationtablesets": list_table_sets,
    "get-aggregationtableset": lambda c: _one("aggregationTableSet", _table_set_out(c, _table_set(c))),
    "create-aggregationtableset": create_table_set,
    "update-aggregationtableset": update_table_set,
    "delete-aggregationtableset": delete_table_set,
    "get-aggregationtables": lambda c: page_response(
        c, "agg_table", _table_set(c).id, "aggregationTables", lambda r: _agg_table_out(c, r)
    ),
    "get-aggregationtable": lambda c: _one("aggregationTable", _agg_table_out(c, _agg_table(c))),
    "create-aggregationtable": create_agg_table,
    "update-aggregationtable": update_agg_table,
    "delete-aggregationtable": delete_agg_table,
    "get-aggregationproperties": lambda c: page_response(
        c, "agg_property", _agg_table(c).id, "aggregationProperties", lambda r: _agg_property_out(c, r)
    ),
    "get-aggregationproperty": lambda c: _one("aggregationProperty", _agg_property_out(c, _agg_property(c))),
    "create-aggregationproperty": create_agg_property,
    "update-aggregationproperty": update_agg_property,
    "delete-aggregationproperty": delete_agg_property,
    **ODATA_HANDLERS,
}
