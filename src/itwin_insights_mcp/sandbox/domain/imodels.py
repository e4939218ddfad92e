"""The iModels a mapping can belong to: the sandbox's registered discovery records."""

from __future__ import annotations

from typing import Any

from ..errors import not_found
from ..store import Store

__all__ = ["imodel"]


def imodel(store: Store, imodel_id: str, target: str = "imodelId") -> dict[str, Any]:
    """The iModel's record; 404 iModelNotFound naming `target` when the sandbox has no such iModel."""
    found = store.imodel(imodel_id)
    if found is None:
        raise not_found("iModelNotFound", "iModel", target)
    return found
