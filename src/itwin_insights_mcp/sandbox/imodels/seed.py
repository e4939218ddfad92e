"""Puts the sample iTwin's iModels (and any generated ones) into a sandbox store.

Seeding is idempotent: a restarted sandbox finds its data and regenerates nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..store import Store, now_iso
from .generators import ensure_sample_imodels, generate_imodel
from .records import SANDBOX_IMODELS, SANDBOX_ITWINS, SandboxChangeset, changesets_for

__all__ = ["add_generated", "add_generated_imodel", "ensure_seeded"]


def _changesets_wire(changesets: tuple[SandboxChangeset, ...]) -> list[dict[str, Any]]:
    return [cs.to_wire() for cs in changesets]


def ensure_seeded(store: Store) -> None:
    """Create and fill the sample iModels unless they are already there."""
    with store.transaction() as conn:
        ensure_sample_imodels(conn)
        for imodel in SANDBOX_IMODELS:
            if store.imodel(imodel.id) is None:
                store.register_imodel({**imodel.to_wire(), "changesets": _changesets_wire(changesets_for(imodel.id))})


def add_generated(store: Store, *, elements: int, name: str | None, seed: int) -> tuple[str, int]:
    """Generate a building iModel of `elements` physical elements in the sample iTwin (for benchmarks)."""
    ensure_seeded(store)
    display = name or f"Generated Building {elements}"
    imodel_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"itwin-insights-mcp/generated/{display}/{elements}/{seed}"))
    itwin_id = SANDBOX_ITWINS[0].id
    now = now_iso()
    changeset_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{imodel_id}/changeset/1").hex + "00000000"
    changeset = {
        "id": changeset_id,
        "displayName": "1",
        "description": "Generated content",
        "index": 1,
        "parentId": "",
        "creatorId": None,
        "pushDateTime": now,
        "state": "fileUploaded",
        "containingChanges": 0,
        "fileSize": 0,
        "briefcaseId": 2,
        "groupId": None,
        "application": None,
        "synchronizationInfo": None,
    }
    with store.transaction() as conn:
        count = generate_imodel(conn, imodel_id, elements=elements, seed=seed, title=display)
        store.register_imodel(
            {
                "id": imodel_id,
                "displayName": display,
                "name": display,
                "description": f"{elements} generated elements",
                "state": "initialized",
                "createdDateTime": now,
                "lastChangesetPushDateTime": now,
                "iTwinId": itwin_id,
                "isSecured": False,
                "extent": None,
                "containersEnabled": 0,
                "dataCenterLocation": "East US",
                "changesets": [changeset],
            }
        )
    return imodel_id, count


def add_generated_imodel(db_path: str, *, elements: int, name: str | None, seed: int) -> tuple[str, int]:
    """Generate an extra iModel of `elements` physical elements into the sandbox database (for benchmarks)."""
    store = Store(db_path)
    try:
        return add_generated(store, elements=elements, name=name, seed=seed)
    finally:
        store.close()
