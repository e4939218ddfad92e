"""Reports of an iTwin (a project in v1): soft-deleted, linked to mappings and to aggregation table sets."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import conflict, invalid, not_found
from ..store import Record, Store, now_iso
from .aggregations import table_set

__all__ = [
    "create_report",
    "delete_report",
    "link_aggregation",
    "link_mapping",
    "report",
    "report_aggregation",
    "unlink_aggregation",
    "unlink_mapping",
    "update_report",
]


def report(store: Store, report_id: str, *, allow_deleted: bool = True) -> Record:
    """A report; 404 ReportNotFound (also for a deleted one unless `allow_deleted`)."""
    record = store.get("report", report_id)
    if record is None or (not allow_deleted and record.data.get("deleted")):
        raise not_found("ReportNotFound", "Report")
    return record


def _check_name(name: str) -> None:
    if not name.strip():
        raise invalid("displayName must not be empty.", "displayName")


def create_report(store: Store, context_id: str, display_name: str, description: str) -> Record:
    """A new report of the iTwin (project) `context_id`."""
    _check_name(display_name)
    now = now_iso()
    data = {
        "id": str(uuid.uuid4()),
        "displayName": display_name,
        "description": description,
        "deleted": False,
        "createdOn": now,
        "modifiedOn": now,
    }
    with store.transaction():
        return store.insert("report", context_id, data)


def update_report(
    store: Store,
    report_id: str,
    *,
    display_name: str | None = None,
    description: str | None = None,
    deleted: bool | None = None,
) -> Record:
    """Change the given fields (None: unchanged); `deleted: false` restores a deleted report."""
    if display_name is not None:
        _check_name(str(display_name))
    changes = {"displayName": display_name, "description": description, "deleted": deleted}
    with store.transaction():
        record = report(store, report_id)
        data: dict[str, Any] = {**record.data, **{k: v for k, v in changes.items() if v is not None}}
        return store.update(record, {**data, "modifiedOn": now_iso()})


def delete_report(store: Store, report_id: str) -> None:
    """Soft delete: the report is flagged `deleted` and can be restored."""
    with store.transaction():
        record = report(store, report_id, allow_deleted=False)
        store.update(record, {**record.data, "deleted": True, "modifiedOn": now_iso()})


def link_mapping(store: Store, report_id: str, mapping_id: str, imodel_id: str | None) -> Record:
    """Publish a mapping in the report (409 when it already is)."""
    with store.transaction():
        record = report(store, report_id, allow_deleted=False)
        mapping = store.get("mapping", mapping_id, parent=imodel_id)
        if mapping is None:
            raise not_found("MappingNotFound", "Mapping", "mappingId")
        if store.get("report_mapping", mapping_id, parent=record.id) is not None:
            raise conflict("ReportMappingExists", "This mapping is already linked to the report.", "mappingId")
        return store.insert("report_mapping", record.id, {"imodelId": mapping.parent}, record_id=mapping_id)


def unlink_mapping(store: Store, report_id: str, mapping_id: str) -> None:
    """Stop publishing a mapping in the report."""
    with store.transaction():
        record = report(store, report_id, allow_deleted=False)
        link = store.get("report_mapping", mapping_id, parent=record.id)
        if link is None:
            raise not_found("ReportMappingNotFound", "ReportMapping")
        store.delete(link)


def report_aggregation(store: Store, report_id: str, set_id: str) -> Record:
    """The report's link to an aggregation table set."""
    record = report(store, report_id, allow_deleted=False)
    link = store.get("report_aggregation", set_id, parent=record.id)
    if link is None:
        raise not_found("AggregationTableSetNotFound", "Aggregation Table Set", "aggregationTableSetId")
    return link


def link_aggregation(store: Store, report_id: str, set_id: str) -> Record:
    """Publish an aggregation table set in the report (409 when it already is)."""
    with store.transaction():
        record = report(store, report_id, allow_deleted=False)
        linked = table_set(store, set_id)
        if store.get("report_aggregation", linked.id, parent=record.id) is not None:
            raise conflict(
                "ReportAggregationExists",
                "This aggregation table set is already linked to the report.",
                "aggregationTableSetId",
            )
        return store.insert(
            "report_aggregation",
            record.id,
            {"datasourceId": linked.parent, "datasourceType": linked.data["datasourceType"]},
            record_id=linked.id,
        )


def unlink_aggregation(store: Store, report_id: str, set_id: str) -> None:
    """Stop publishing an aggregation table set in the report."""
    with store.transaction():
        store.delete(report_aggregation(store, report_id, set_id))
