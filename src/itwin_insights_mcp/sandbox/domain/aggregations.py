"""Aggregation table sets of a mapping, their tables (over one output table) and properties (GroupBy/Count/Sum).

Updates apply only the fields each resource has (`*_FIELDS`), whatever else a body carried.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import conflict, not_found
from ..store import Record, Store
from .caller import Caller
from .mappings import mapping

__all__ = [
    "PROPERTY_FIELDS",
    "TABLE_FIELDS",
    "TABLE_SET_FIELDS",
    "agg_property",
    "agg_table",
    "create_agg_property",
    "create_agg_table",
    "create_table_set",
    "delete_agg_property",
    "delete_agg_table",
    "delete_table_set",
    "table_set",
    "update_agg_property",
    "update_agg_table",
    "update_table_set",
]

TABLE_SET_FIELDS = ("tableSetName", "description")
TABLE_FIELDS = ("tableName", "description", "sourceTableName")
PROPERTY_FIELDS = ("propertyName", "sourcePropertyName", "type")


def _changes(changes: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if k in fields}


def table_set(store: Store, set_id: str, target: str = "aggregationTableSetId") -> Record:
    """A table set by id; 404 AggregationTableSetNotFound naming `target`."""
    record = store.get("table_set", set_id)
    if record is None:
        raise not_found("AggregationTableSetNotFound", "Aggregation Table Set", target)
    return record


def agg_table(store: Store, set_id: str, table_id: str) -> Record:
    """A table of the set; 404 for an unknown set or table."""
    parent = table_set(store, set_id)
    record = store.get("agg_table", table_id, parent=parent.id)
    if record is None:
        raise not_found("AggregationTableNotFound", "Aggregation Table", "aggregationTableId")
    return record


def agg_property(store: Store, set_id: str, table_id: str, property_id: str) -> Record:
    """A property of the table; 404 for an unknown set, table or property."""
    table = agg_table(store, set_id, table_id)
    record = store.get("agg_property", property_id, parent=table.id)
    if record is None:
        raise not_found("AggregationPropertyNotFound", "Aggregation Property", "aggregationPropertyId")
    return record


def create_table_set(
    caller: Caller, datasource_id: str, *, name: str, description: str, datasource_type: str
) -> Record:
    """A table set over a mapping (the datasource)."""
    store = caller.store
    with store.transaction():
        mapping(store, datasource_id, "datasourceId")
        return store.insert(
            "table_set",
            datasource_id,
            {
                "id": str(uuid.uuid4()),
                "tableSetName": name,
                "description": description,
                "datasourceType": datasource_type,
                **caller.created(),
            },
        )


def update_table_set(caller: Caller, set_id: str, changes: Mapping[str, Any]) -> Record:
    """Change the set's name or description, stamped."""
    with caller.store.transaction():
        record = table_set(caller.store, set_id)
        data = {**record.data, **_changes(changes, TABLE_SET_FIELDS), **caller.modified()}
        return caller.store.update(record, data)


def delete_table_set(store: Store, set_id: str) -> None:
    """The set, its tables and properties, and the report links to it."""
    with store.transaction():
        record = table_set(store, set_id)
        for table in store.children("agg_table", record.id):
            store.delete_children("agg_property", table.id)
            store.delete(table)
        store.delete_all("report_aggregation", record.id)
        store.delete(record)


def _check_table_name(store: Store, set_id: str, name: str, exclude: str | None = None) -> None:
    for other in store.children("agg_table", set_id):
        if other.id != exclude and other.data["tableName"].lower() == name.lower():
            raise conflict(
                "AggregationTableExists", "AggregationTable with this 'tableName' already exists.", "tableName"
            )


def create_agg_table(store: Store, set_id: str, *, name: str, description: str, source_table: str) -> Record:
    """A new table over one output table of the set's mapping (409 on a name clash)."""
    with store.transaction():
        parent = table_set(store, set_id)
        _check_table_name(store, parent.id, name)
        return store.insert(
            "agg_table",
            parent.id,
            {"id": str(uuid.uuid4()), "tableName": name, "description": description, "sourceTableName": source_table},
        )


def update_agg_table(store: Store, set_id: str, table_id: str, changes: Mapping[str, Any]) -> Record:
    """Change the table's fields (409 when the new name is taken)."""
    with store.transaction():
        record = agg_table(store, set_id, table_id)
        if "tableName" in changes:
            _check_table_name(store, record.parent, changes["tableName"], exclude=record.id)
        return store.update(record, {**record.data, **_changes(changes, TABLE_FIELDS)})


def delete_agg_table(store: Store, set_id: str, table_id: str) -> None:
    """The table and its properties."""
    with store.transaction():
        record = agg_table(store, set_id, table_id)
        store.delete_children("agg_property", record.id)
        store.delete(record)


def create_agg_property(
    store: Store, set_id: str, table_id: str, *, name: str, source_property: str, kind: str
) -> Record:
    """A new GroupBy/Count/Sum property of the table (409 on a name clash)."""
    with store.transaction():
        table = agg_table(store, set_id, table_id)
        for other in store.children("agg_property", table.id):
            if other.data["propertyName"].lower() == name.lower():
                raise conflict(
                    "AggregationPropertyExists",
                    "AggregationProperty with this 'propertyName' already exists.",
                    "propertyName",
                )
        return store.insert(
            "agg_property",
            table.id,
            {"id": str(uuid.uuid4()), "propertyName": name, "sourcePropertyName": source_property, "type": kind},
        )


def update_agg_property(
    store: Store, set_id: str, table_id: str, property_id: str, changes: Mapping[str, Any]
) -> Record:
    """Change the property's fields."""
    with store.transaction():
        record = agg_property(store, set_id, table_id, property_id)
        return store.update(record, {**record.data, **_changes(changes, PROPERTY_FIELDS)})


def delete_agg_property(store: Store, set_id: str, table_id: str, property_id: str) -> None:
    """One aggregation property."""
    with store.transaction():
        store.delete(agg_property(store, set_id, table_id, property_id))
