"""Reporting v1 adapter: mappings, groups, the three property kinds, extraction, reports, aggregations.

Each handler translates the v1 wire shape to a domain call and back: wrapper keys, 200 on create, 204 on delete,
`_links` built from the request's own base URL and the catalog's base paths, and the documented error codes.
The OData feed is `odata.py`'s; reports are shared with v2 through `reports.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..domain import aggregations, extractions, groups, mappings, properties, reports
from ..domain.imodels import imodel
from ..errors import conflict, not_found
from ..store import Record
from ..wire import Call, page_response
from .families import IMODELS
from .reports import ReportStyle, mapping_url, no_content, one, report_handlers

__all__ = ["HANDLERS", "STYLE"]

STYLE = ReportStyle(
    version="v1",
    list_operation="get-project-reports",
    context_param="projectId",
    context_link="project",
    context_href=lambda call, project_id: call.href(f"/projects/{project_id}"),  # the Projects API, not in the catalog
)


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


# -- lookups from the path (each raises the API's 404) -------------------------------------------------------------


def _mapping(call: Call, target: str = "id") -> Record:
    return mappings.mapping_of_imodel(call.store, call.path["imodelId"], call.path["mappingId"], target)


def _group(call: Call) -> tuple[Record, Record]:
    mapping = _mapping(call)
    return mapping, groups.group(call.store, mapping.id, call.path["groupId"])


def _property(call: Call, kind: str) -> tuple[Record, Record, Record]:
    mapping, group = _group(call)
    spec = PROPERTY_KINDS[kind]
    prop = call.store.get("property", call.path[spec.path_param], parent=group.id)
    if prop is None or prop.data.get("kind") != kind:
        raise not_found(spec.not_found, spec.label, spec.not_found_target)
    return mapping, group, prop


def _set_id(call: Call) -> str:
    return call.path["aggregationTableSetId"]


# -- shapes (stored data + `_links`) ------------------------------------------------------------------------------


def _mapping_out(call: Call, record: Record) -> dict[str, Any]:
    return {**record.data, "_links": {"imodel": call.link(f"/{record.parent}", IMODELS)}}


def _group_out(record: Record) -> dict[str, Any]:
    return {k: record.data[k] for k in ("id", "groupName", "description", "query")}


def _property_out(call: Call, record: Record) -> dict[str, Any]:
    data = record.data
    kind = data["kind"]
    if kind == "group":
        return {k: data[k] for k in ("id", "propertyName", "dataType", "quantityType", "ecProperties")}
    imodel_id, mapping_id, group_id = data["imodelId"], data["mappingId"], record.parent
    url = mapping_url(call, imodel_id, mapping_id)
    links = {
        "imodel": call.link(f"/{imodel_id}", IMODELS),
        "mapping": {"href": url},
        "group": {"href": f"{url}/groups/{group_id}"},
    }
    fields = (
        ("id", "propertyName", "type", "quantityType")
        if kind == "calculated"
        else ("id", "propertyName", "formula", "dataType", "quantityType")
    )
    return {**{k: data.get(k) for k in fields}, "_links": links}


def _datasource_link(call: Call, mapping_id: str) -> dict[str, str]:
    mapping = call.store.get("mapping", mapping_id)
    if mapping is None:  # the mapping was deleted after the table set was made
        return call.link(f"/datasources/imodelMappings/{mapping_id}")
    return {"href": mapping_url(call, mapping.parent, mapping_id)}


def _report_aggregation_out(call: Call, record: Record) -> dict[str, Any]:
    data = record.data
    return {
        "reportId": record.parent,
        "aggregationTableSetId": record.id,
        "datasourceId": data["datasourceId"],
        "datasourceType": data["datasourceType"],
        "_links": {
            "report": call.link(f"/reports/{record.parent}"),
            "aggregationTableSet": call.link(f"/datasources/aggregations/{record.id}"),
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
            "aggregationTableSet": call.link(f"/datasources/aggregations/{record.parent}"),
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
            "aggregationTableSet": call.link(f"/datasources/aggregations/{set_id}"),
            "aggregationTable": call.link(f"/datasources/aggregations/{set_id}/tables/{record.parent}"),
        },
    }


# -- mappings ----------------------------------------------------------------------------------------------------


def list_mappings(call: Call) -> Response:
    imodel(call.store, call.path["imodelId"])
    return page_response(call, "mapping", call.path["imodelId"], "mappings", lambda r: _mapping_out(call, r))


def create_mapping(call: Call) -> Response:
    body = call.body
    record = mappings.create_mapping(
        call.caller,
        call.path["imodelId"],
        name=body["mappingName"],
        description=body.get("description", ""),
        extraction_enabled=body.get("extractionEnabled", True),
        default_extraction_enabled=True,
    )
    return one("mapping", _mapping_out(call, record))


def update_mapping(call: Call) -> Response:
    body = call.body
    record = mappings.update_mapping(
        call.caller,
        _mapping(call),
        name=body.get("mappingName"),
        description=body.get("description"),
        extraction_enabled=body.get("extractionEnabled"),
    )
    return one("mapping", _mapping_out(call, record))


def delete_mapping(call: Call) -> Response:
    mappings.delete_mapping(call.caller, _mapping(call))
    return no_content()


def copy_mapping(call: Call) -> Response:
    source = _mapping(call, "mappingId")  # the Swagger's copy-mapping example names mappingId
    copy = mappings.copy_mapping(call.caller, source, call.body["targetIModelId"], call.body.get("mappingName"))
    return one("mapping", _mapping_out(call, copy))


# -- groups ------------------------------------------------------------------------------------------------------


def list_groups(call: Call) -> Response:
    return page_response(call, "group", _mapping(call).id, "groups", _group_out)


def create_group(call: Call) -> Response:
    body = call.body
    record = groups.create_group(
        call.caller,
        _mapping(call),
        name=body["groupName"],
        description=body.get("description", ""),
        query=body["query"],
    )
    return one("group", _group_out(record))


def update_group(call: Call) -> Response:
    body = call.body
    mapping, group = _group(call)
    record = groups.update_group(
        call.caller,
        mapping,
        group,
        name=body.get("groupName"),
        description=body.get("description"),
        query=body.get("query"),
    )
    return one("group", _group_out(record))


def delete_group(call: Call) -> Response:
    mapping, group = _group(call)
    groups.delete_group(call.caller, mapping, group)
    return no_content()


# -- group properties, calculated properties, custom calculations ------------------------------------------------


def _check_name_free(call: Call, group: Record, kind: str, name: str, exclude: str | None = None) -> None:
    """Column names are unique within a group across all three kinds (case-insensitive) [I]."""
    if properties.name_taken(call.store, group.id, name, exclude):
        spec = PROPERTY_KINDS[kind]
        raise conflict(spec.exists_code, spec.exists_message, "propertyName")


def _create_property(call: Call, kind: str) -> Response:
    body = call.body
    mapping, group = _group(call)
    _check_name_free(call, group, kind, body["propertyName"])
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "propertyName": body["propertyName"],
        "imodelId": mapping.parent,
        "mappingId": mapping.id,
    }
    if kind == "group":
        data.update(
            dataType=body["dataType"],
            quantityType=body.get("quantityType", "Undefined"),
            ecProperties=body["ecProperties"],
        )
    elif kind == "calculated":
        data.update(type=body["type"], quantityType=properties.CALCULATED_QUANTITY.get(body["type"], "Distance"))
    else:
        data.update(
            formula=body["formula"],
            quantityType=body.get("quantityType", "Undefined"),
            dataType=properties.check_formulas(call.store, group.id, body["propertyName"], body["formula"], None),
        )
    record = properties.add_property(call.caller, mapping, group, data)
    return one(PROPERTY_KINDS[kind].single_key, _property_out(call, record))


def _update_property(call: Call, kind: str) -> Response:
    body = call.body
    mapping, group, prop = _property(call, kind)
    data = {**prop.data, **body}  # the v1 body's fields are the stored fields
    if kind == "group":  # PUT: a full replacement; omitted optional fields fall back to defaults
        data["quantityType"] = body.get("quantityType", "Undefined")
    if "propertyName" in body:
        _check_name_free(call, group, kind, body["propertyName"], exclude=prop.id)
    if kind == "calculated" and "type" in body:
        data["quantityType"] = properties.CALCULATED_QUANTITY.get(body["type"], "Distance")
    if kind == "custom":
        data["dataType"] = properties.check_formulas(
            call.store, group.id, data["propertyName"], data["formula"], prop.id
        )
    record = properties.replace_property(call.caller, mapping, prop, data)
    return one(PROPERTY_KINDS[kind].single_key, _property_out(call, record))


def _list_properties(call: Call, kind: str) -> Response:
    _, group = _group(call)
    return page_response(
        call,
        "property",
        group.id,
        PROPERTY_KINDS[kind].list_key,
        lambda r: _property_out(call, r),
        equals={"kind": kind},
    )


def _get_property(call: Call, kind: str) -> Response:
    return one(PROPERTY_KINDS[kind].single_key, _property_out(call, _property(call, kind)[2]))


def _delete_property(call: Call, kind: str) -> Response:
    mapping, _, prop = _property(call, kind)
    properties.remove_property(call.caller, mapping, prop)
    return no_content()


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
    return call.link(f"/datasources/extraction/status/{job_id}")


def _logs_href(call: Call, job_id: str) -> dict[str, str]:
    return call.link(f"/datasources/extraction/status/{job_id}/logs")


def run_extraction(call: Call) -> Response:
    job = extractions.start_extraction(call.caller, call.sandbox.jobs, call.path["imodelId"], call.body)
    return one("run", {"id": job.id, "_links": {"status": _status_href(call, job.id)}})


def _job(call: Call, code: str, label: str, target: str, *, imodel_id: str | None = None) -> Record:
    job = extractions.job(call.store, call.path["jobId"], imodel_id)
    if job is None:
        if imodel_id is not None:
            imodel(call.store, imodel_id)
        raise not_found(code, label, target)
    return job


def _status_out(call: Call, job: Record) -> dict[str, Any]:
    data = job.data
    return {
        "state": data["state"],
        "reason": data["reason"],
        "containsIssues": data["containsIssues"],
        "_links": {"logs": _logs_href(call, job.id)},
    }


def get_extraction_status(call: Call) -> Response:
    return one("status", _status_out(call, _job(call, "ExtractionStatusNotFound", "ExtractionStatus", "id")))


def get_imodel_extraction_status(call: Call) -> Response:
    job = _job(call, "ExtractionStatusNotFound", "ExtractionStatus", "id", imodel_id=call.path["imodelId"])
    return one("status", _status_out(call, job))


def list_extraction_logs(call: Call) -> Response:
    job = _job(call, "ExtractionLogNotFound", "Extraction Log", "jobId")
    return page_response(call, "log", job.id, "logs", lambda r: {k: v for k, v in r.data.items() if k != "id"})


def list_extraction_history(call: Call) -> Response:
    imodel_id = call.path["imodelId"]
    imodel(call.store, imodel_id)

    def shape(record: Record) -> dict[str, Any]:
        return {
            "jobId": record.id,
            "startedOn": record.data["startedOn"],
            "_links": {"status": _status_href(call, record.id), "logs": _logs_href(call, record.id)},
        }

    return page_response(call, "job", imodel_id, "extractions", shape)


# -- report aggregations -----------------------------------------------------------------------------------------


def list_report_aggregations(call: Call) -> Response:
    report = reports.report(call.store, call.path["reportId"], allow_deleted=False)
    return page_response(
        call, "report_aggregation", report.id, "aggregations", lambda r: _report_aggregation_out(call, r)
    )


def get_report_aggregation(call: Call) -> Response:
    record = reports.report_aggregation(call.store, call.path["reportId"], _set_id(call))
    return one("aggregation", _report_aggregation_out(call, record))


def create_report_aggregation(call: Call) -> Response:
    record = reports.link_aggregation(call.store, call.path["reportId"], call.body["aggregationTableSetId"])
    return one("aggregation", _report_aggregation_out(call, record))


def delete_report_aggregation(call: Call) -> Response:
    reports.unlink_aggregation(call.store, call.path["reportId"], _set_id(call))
    return no_content()


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
    record = aggregations.create_table_set(
        call.caller,
        body["datasourceId"],
        name=body["tableSetName"],
        description=body.get("description", ""),
        datasource_type=body["datasourceType"],
    )
    return one("aggregationTableSet", _table_set_out(call, record))


def update_table_set(call: Call) -> Response:
    record = aggregations.update_table_set(call.caller, _set_id(call), call.body)
    return one("aggregationTableSet", _table_set_out(call, record))


def delete_table_set(call: Call) -> Response:
    aggregations.delete_table_set(call.store, _set_id(call))
    return no_content()


def _table_id(call: Call) -> tuple[str, str]:
    return _set_id(call), call.path["aggregationTableId"]


def create_agg_table(call: Call) -> Response:
    body = call.body
    record = aggregations.create_agg_table(
        call.store,
        _set_id(call),
        name=body["tableName"],
        description=body.get("description", ""),
        source_table=body["sourceTableName"],
    )
    return one("aggregationTable", _agg_table_out(call, record))


def update_agg_table(call: Call) -> Response:
    record = aggregations.update_agg_table(call.store, *_table_id(call), call.body)
    return one("aggregationTable", _agg_table_out(call, record))


def delete_agg_table(call: Call) -> Response:
    aggregations.delete_agg_table(call.store, *_table_id(call))
    return no_content()


def _agg_property_id(call: Call) -> tuple[str, str, str]:
    return _set_id(call), call.path["aggregationTableId"], call.path["aggregationPropertyId"]


def create_agg_property(call: Call) -> Response:
    body = call.body
    record = aggregations.create_agg_property(
        call.store,
        *_table_id(call),
        name=body["propertyName"],
        source_property=body["sourcePropertyName"],
        kind=body["type"],
    )
    return one("aggregationProperty", _agg_property_out(call, record))


def update_agg_property(call: Call) -> Response:
    record = aggregations.update_agg_property(call.store, *_agg_property_id(call), call.body)
    return one("aggregationProperty", _agg_property_out(call, record))


def delete_agg_property(call: Call) -> Response:
    aggregations.delete_agg_property(call.store, *_agg_property_id(call))
    return no_content()


HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-mappings": list_mappings,
    "get-mapping": lambda c: one("mapping", _mapping_out(c, _mapping(c))),
    "create-mapping": create_mapping,
    "update-mapping": update_mapping,
    "delete-mapping": delete_mapping,
    "copy-mapping": copy_mapping,
    "get-groups": list_groups,
    "get-group": lambda c: one("group", _group_out(_group(c)[1])),
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
    **report_handlers(STYLE),
    "get-report-aggregations": list_report_aggregations,
    "get-report-aggregation": get_report_aggregation,
    "create-report-aggregation": create_report_aggregation,
    "delete-report-aggregation": delete_report_aggregation,
    "get-aggregationtablesets": list_table_sets,
    "get-aggregationtableset": lambda c: one(
        "aggregationTableSet", _table_set_out(c, aggregations.table_set(c.store, _set_id(c)))
    ),
    "create-aggregationtableset": create_table_set,
    "update-aggregationtableset": update_table_set,
    "delete-aggregationtableset": delete_table_set,
    "get-aggregationtables": lambda c: page_response(
        c,
        "agg_table",
        aggregations.table_set(c.store, _set_id(c)).id,
        "aggregationTables",
        lambda r: _agg_table_out(c, r),
    ),
    "get-aggregationtable": lambda c: one(
        "aggregationTable", _agg_table_out(c, aggregations.agg_table(c.store, *_table_id(c)))
    ),
    "create-aggregationtable": create_agg_table,
    "update-aggregationtable": update_agg_table,
    "delete-aggregationtable": delete_agg_table,
    "get-aggregationproperties": lambda c: page_response(
        c,
        "agg_property",
        aggregations.agg_table(c.store, *_table_id(c)).id,
        "aggregationProperties",
        lambda r: _agg_property_out(c, r),
    ),
    "get-aggregationproperty": lambda c: one(
        "aggregationProperty", _agg_property_out(c, aggregations.agg_property(c.store, *_agg_property_id(c)))
    ),
    "create-aggregationproperty": create_agg_property,
    "update-aggregationproperty": update_agg_property,
    "delete-aggregationproperty": delete_agg_property,
}
