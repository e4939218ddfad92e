"""Mappings: create, copy, change and delete, with their groups and properties, audited.

A mapping belongs to one iModel (its record's parent). Reporting v1 and Grouping & Mapping both address the same
mappings; each adapter turns its own wire fields into the keyword arguments here.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import invalid, not_found
from ..store import Record, Store
from .audit import audit
from .caller import Caller
from .imodels import imodel

__all__ = [
    "MAX_NAME_LENGTH",
    "copy_group",
    "copy_groups",
    "copy_mapping",
    "create_mapping",
    "delete_group_tree",
    "delete_mapping",
    "mapping",
    "mapping_of_imodel",
    "touch",
    "update_mapping",
]

MAX_NAME_LENGTH = 128
_COPY_SUFFIX = "_Copy"


def mapping(store: Store, mapping_id: str, target: str = "mappingId") -> Record:
    """A mapping by id alone; 404 MappingNotFound naming `target`."""
    record = store.get("mapping", mapping_id)
    if record is None:
        raise not_found("MappingNotFound", "Mapping", target)
    return record


def mapping_of_imodel(store: Store, imodel_id: str, mapping_id: str, target: str = "id") -> Record:
    """A mapping of this iModel; an unknown iModel is named first (404 iModelNotFound), then the mapping."""
    record = store.get("mapping", mapping_id, parent=imodel_id)
    if record is None:
        imodel(store, imodel_id)
        raise not_found("MappingNotFound", "Mapping", target)
    return record


def create_mapping(
    caller: Caller,
    imodel_id: str,
    *,
    name: str,
    description: str | None,
    extraction_enabled: bool | None,
    default_extraction_enabled: bool,
    source: Record | None = None,
    imodel_target: str = "imodelId",
) -> Record:
    """A new mapping of the iModel; with `source`, a deep copy of its settings, groups and properties."""
    store = caller.store
    with store.transaction():
        imodel(store, imodel_id, imodel_target)
        data: dict[str, Any] = {
            **(source.data if source is not None else {}),
            "id": str(uuid.uuid4()),
            "mappingName": name,
        }
        data.setdefault("description", "")
        data.setdefault("extractionEnabled", default_extraction_enabled)
        if description is not None:
            data["description"] = description
        if extraction_enabled is not None:
            data["extractionEnabled"] = extraction_enabled
        data.update(caller.created())
        record = store.insert("mapping", imodel_id, data)
        if source is not None:
            copy_groups(store, source.id, record.id, imodel_id)
        audit(caller, imodel_id, f"mappings/{record.id}", "Create", None, data)
    return record


def copy_mapping(caller: Caller, source: Record, target_imodel: str, name: str | None) -> Record:
    """`source` with its groups copied to another iModel; the name defaults to `<name>_Copy` when that fits."""
    store = caller.store
    with store.transaction():
        imodel(store, target_imodel, "targetIModelId")
        if name is None:
            if len(source.data["mappingName"]) > MAX_NAME_LENGTH - len(_COPY_SUFFIX):
                raise invalid(
                    "mappingName is required: the source mapping's name has 124 or more characters, so "
                    "'<name>_Copy' would exceed 128.",
                    "mappingName",
                )
            name = f"{source.data['mappingName']}{_COPY_SUFFIX}"
        copy = store.insert(
            "mapping", target_imodel, {**source.data, "id": str(uuid.uuid4()), "mappingName": name, **caller.created()}
        )
        copy_groups(store, source.id, copy.id, target_imodel)
        audit(caller, target_imodel, f"mappings/{copy.id}", "Create", None, copy.data)
    return copy


def update_mapping(
    caller: Caller,
    record: Record,
    *,
    name: str | None = None,
    description: str | None = None,
    extraction_enabled: bool | None = None,
) -> Record:
    """Change the given fields (None: unchanged), stamped and audited."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["mappingName"] = name
    if description is not None:
        changes["description"] = description
    if extraction_enabled is not None:
        changes["extractionEnabled"] = extraction_enabled
    data = {**record.data, **changes, **caller.modified()}
    with caller.store.transaction():
        audit(caller, record.parent, f"mappings/{record.id}", "Update", record.data, data)
        return caller.store.update(record, data)


def delete_mapping(caller: Caller, record: Record) -> None:
    """A mapping, its groups and their properties, and the report links to it; audited."""
    store = caller.store
    with store.transaction():
        for group in store.children("group", record.id):
            delete_group_tree(store, group)
        store.delete_all("report_mapping", record.id)
        store.delete(record)
        audit(caller, record.parent, f"mappings/{record.id}", "Delete", record.data, None)


def touch(caller: Caller, record: Record) -> None:
    """A change below a mapping updates its modifiedOn/modifiedBy (caller's transaction)."""
    caller.store.update(record, {**record.data, **caller.modified()})


def delete_group_tree(store: Store, group: Record) -> None:
    """A group and its properties (caller's transaction)."""
    store.delete_children("property", group.id)
    store.delete(group)


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
