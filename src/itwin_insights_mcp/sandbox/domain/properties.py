"""Columns of a group: group properties (ECProperty paths), calculated quantities and custom calculations.

All three kinds are stored as `property` records with a `kind`; names are unique within a group across kinds
(case-insensitive) [I]; formulas are checked together, since one may name another. Grouping & Mapping's single
`Property` is stored as the kind its value source gives (`unified_property`).
"""

from __future__ import annotations

import uuid
from typing import Any

from ..engine.formulas import FormulaError, check
from ..errors import invalid
from ..store import Record, Store
from .audit import audit
from .caller import Caller
from .mappings import touch

__all__ = [
    "CALCULATED_QUANTITY",
    "add_property",
    "check_formulas",
    "name_taken",
    "property_path",
    "remove_property",
    "replace_property",
    "unified_property",
]

CALCULATED_QUANTITY = {"Length": "Distance", "Area": "Area", "Volume": "Volume"}  # BoundingBox* -> Distance [I]


def name_taken(store: Store, group_id: str, name: str, exclude: str | None = None) -> bool:
    """Whether another column of the group already has this name (case-insensitive)."""
    return any(
        other.id != exclude and other.data["propertyName"].lower() == name.lower()
        for other in store.children("property", group_id)
    )


def _column_types(props: list[Record]) -> dict[str, str | None]:
    types: dict[str, str | None] = {}
    for prop in props:
        data = prop.data
        if data["kind"] == "group":
            types[data["propertyName"]] = "Double" if data["dataType"] == "Number" else data["dataType"]
        elif data["kind"] == "calculated":
            types[data["propertyName"]] = "Double"
    return types


def check_formulas(store: Store, group_id: str, name: str, formula: str, exclude: str | None) -> str:
    """Validate the group's formulas with this one added/changed; returns its inferred dataType (422 if invalid)."""
    props = [p for p in store.children("property", group_id) if p.id != exclude]
    formulas = {p.data["propertyName"]: p.data["formula"] for p in props if p.data["kind"] == "custom"}
    formulas[name] = formula
    try:
        inferred = check(formulas, _column_types(props))
    except FormulaError as exc:
        raise invalid(str(exc), "formula") from None
    return str(inferred[name])


def property_path(record: Record) -> str:
    """The property's path in the audit trail."""
    return f"mappings/{record.data['mappingId']}/groups/{record.parent}/properties/{record.id}"


def unified_property(
    store: Store,
    mapping: Record,
    group: Record,
    existing: Record | None,
    *,
    name: str,
    data_type: str,
    quantity_type: str | None,
    ec_properties: list[dict[str, Any]] | None,
    calculated_type: str | None,
    formula: str | None,
) -> dict[str, Any]:
    """The stored form of one column given by its value source: precedence ecProperties -> calculatedPropertyType
    -> formula; none is a placeholder group property that is always null."""
    ec = [{**e, "ecPropertyType": data_type} for e in ec_properties or []]
    kind = "group" if ec else "calculated" if calculated_type else ("custom" if formula else "group")
    data: dict[str, Any] = {
        "id": existing.id if existing else str(uuid.uuid4()),
        "kind": kind,
        "propertyName": name,
        "dataType": data_type,
        "quantityType": quantity_type or "Undefined",
        "ecProperties": ec,
        "calculatedPropertyType": calculated_type,
        "formula": formula,
        "imodelId": mapping.parent,
        "mappingId": mapping.id,
    }
    if kind == "calculated" and calculated_type is not None:
        data["type"] = calculated_type
        data["quantityType"] = quantity_type or CALCULATED_QUANTITY.get(calculated_type, "Distance")
    if kind == "custom" and formula is not None:
        check_formulas(store, group.id, name, formula, existing.id if existing else None)
    return data


def add_property(caller: Caller, mapping: Record, group: Record, data: dict[str, Any]) -> Record:
    """Store a new column, touching the mapping; audited."""
    with caller.store.transaction():
        record = caller.store.insert("property", group.id, data)
        touch(caller, mapping)
        audit(caller, mapping.parent, property_path(record), "Create", None, data)
    return record


def replace_property(caller: Caller, mapping: Record, record: Record, data: dict[str, Any]) -> Record:
    """Store a column's new form, touching the mapping; audited."""
    with caller.store.transaction():
        updated = caller.store.update(record, data)
        touch(caller, mapping)
        audit(caller, mapping.parent, property_path(updated), "Update", record.data, data)
    return updated


def remove_property(caller: Caller, mapping: Record, record: Record) -> None:
    """Delete a column, touching the mapping; audited."""
    with caller.store.transaction():
        caller.store.delete(record)
        touch(caller, mapping)
        audit(caller, mapping.parent, property_path(record), "Delete", record.data, None)
