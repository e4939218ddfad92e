"""Groups of a mapping: an ECSQL query naming the elements, plus (Grouping & Mapping) metadata; audited."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import not_found
from ..store import Record, Store
from .audit import audit
from .caller import Caller
from .mappings import copy_group, delete_group_tree, touch

__all__ = ["create_group", "delete_group", "group", "update_group"]


def group(store: Store, mapping_id: str, group_id: str, target: str = "id") -> Record:
    """A group of the mapping; 404 GroupNotFound naming `target`."""
    record = store.get("group", group_id, parent=mapping_id)
    if record is None:
        raise not_found("GroupNotFound", "Group", target)
    return record


def _path(mapping: Record, group_id: str) -> str:
    return f"mappings/{mapping.id}/groups/{group_id}"


def create_group(
    caller: Caller,
    mapping: Record,
    *,
    name: str,
    description: str,
    query: str,
    metadata: list[dict[str, Any]] | None = None,
    source: Record | None = None,
) -> Record:
    """A new group; with `source`, a copy of that group's properties under this name, query and description."""
    fields: dict[str, Any] = {"groupName": name, "description": description, "query": query}
    if metadata is not None:
        fields["metadata"] = metadata
    store = caller.store
    with store.transaction():
        if source is not None:
            record = copy_group(store, source, mapping.id, mapping.parent, fields)
        else:
            record = store.insert("group", mapping.id, {"id": str(uuid.uuid4()), **fields})
        touch(caller, mapping)
        audit(caller, mapping.parent, _path(mapping, record.id), "Create", None, record.data)
    return record


def update_group(
    caller: Caller,
    mapping: Record,
    record: Record,
    *,
    name: str | None = None,
    description: str | None = None,
    query: str | None = None,
    metadata: list[dict[str, Any]] | None = None,
) -> Record:
    """Change the given fields (None: unchanged), touching the mapping; audited."""
    changes = {"groupName": name, "description": description, "query": query, "metadata": metadata}
    data = {**record.data, **{k: v for k, v in changes.items() if v is not None}}
    store = caller.store
    with store.transaction():
        updated = store.update(record, data)
        touch(caller, mapping)
        audit(caller, mapping.parent, _path(mapping, record.id), "Update", record.data, updated.data)
    return updated


def delete_group(caller: Caller, mapping: Record, record: Record) -> None:
    """A group and its properties, touching the mapping; audited."""
    with caller.store.transaction():
        delete_group_tree(caller.store, record)
        touch(caller, mapping)
        audit(caller, mapping.parent, _path(mapping, record.id), "Delete", record.data, None)
