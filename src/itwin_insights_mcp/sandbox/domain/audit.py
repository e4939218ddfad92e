"""The audit trail (Grouping & Mapping `GET /audit`): who changed which mapping, group or property, and how.

Every write to those, through any API family, leaves one entry inside the write's own transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ..store import Store, now_iso
from .caller import Caller

__all__ = ["audit", "trail"]

_HIDDEN = {"id", "kind", "imodelId", "mappingId", "createdOn", "createdBy", "modifiedOn", "modifiedBy"}


def _text(value: Any) -> str | None:
    """Changed values as the audit trail writes them: strings (JSON for anything that is not one), or null."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def audit(
    caller: Caller,
    imodel_id: str,
    path: str,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Record `action` (Create, Update, Delete) on `path` with the fields that changed (caller's transaction)."""
    old, new = dict(before or {}), dict(after or {})
    changes = [
        {"property": key, "oldValue": _text(old.get(key)), "newValue": _text(new.get(key))}
        for key in sorted((set(old) | set(new)) - _HIDDEN)
        if old.get(key) != new.get(key)
    ]
    entry = {"timestamp": now_iso(), "path": path, "userEmail": caller.user_email, "action": action, "changes": changes}
    caller.store.insert("audit", imodel_id, entry, record_id=str(uuid.uuid4()))


def trail(
    store: Store, imodel_id: str, *, path: str | None = None, after: str | None = None, before: str | None = None
) -> list[dict[str, Any]]:
    """The iModel's audit entries, oldest first, under `path` and strictly between `after` and `before`."""
    entries = []
    for record in store.children("audit", imodel_id):
        entry = record.data
        if path and not entry["path"].startswith(path.strip("/")):
            continue
        if (after and entry["timestamp"] <= after) or (before and entry["timestamp"] >= before):
            continue
        entries.append(entry)
    return entries
