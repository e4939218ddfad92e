"""Discovery adapters: iTwins (v1) and iModels (v2), over the sandbox's own iTwin and iModels.

They follow platform-context-api.md: minimal items unless `Prefer: return=representation`, `_links` with self,
prev and next (null where there is no page), `$skip` paging for iTwins and continuation tokens for iModels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import Response

from ..errors import SandboxError
from ..imodels.records import SANDBOX_ITWINS
from ..wire import DEFAULT_PAGE_SIZE, Call, json_response, offset_page

__all__ = ["IMODELS_HANDLERS", "ITWINS_HANDLERS"]

_ITWIN_MINIMAL = ("id", "class", "subClass", "type", "number", "displayName")
_IMODEL_MINIMAL = ("id", "displayName")
_CHANGESET_MINIMAL = (
    "id",
    "displayName",
    "description",
    "index",
    "parentId",
    "creatorId",
    "pushDateTime",
    "state",
    "containingChanges",
    "fileSize",
    "briefcaseId",
    "groupId",
)


def _pick(item: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: item.get(k) for k in keys}


def _itwins(call: Call) -> list[dict[str, Any]]:
    return [itwin.to_wire() for itwin in SANDBOX_ITWINS]


def _itwin_ids(call: Call) -> set[str]:
    return {itwin.id for itwin in SANDBOX_ITWINS}


def list_itwins(call: Call) -> Response:
    q = call.query
    if "status" in q and "includeInactive" in q:
        raise SandboxError(
            422,
            "InvalidiTwinsRequest",
            "Cannot get iTwins.",
            None,
            [
                {
                    "code": "MutuallyExclusiveParametersProvided",
                    "message": "status and includeInactive cannot be combined.",
                    "target": "status",
                }
            ],
        )
    if "$search" in q and ("number" in q or "displayName" in q):
        raise SandboxError(
            422,
            "InvalidiTwinsRequest",
            "Cannot get iTwins.",
            None,
            [
                {
                    "code": "MutuallyExclusiveParametersProvided",
                    "message": "$search cannot be combined with number or displayName.",
                    "target": "$search",
                }
            ],
        )
    items = _itwins(call)
    if "subClass" in q:
        allowed = {"Account", "Asset", "Project", "Portfolio", "Program", "WorkPackage"}
        wanted = {s.strip() for s in str(q["subClass"]).split(",") if s.strip()}
        bad = wanted - allowed
        if bad:
            raise SandboxError(
                422,
                "InvalidiTwinsRequest",
                "Cannot get iTwins.",
                None,
                [
                    {
                        "code": "InvalidValue",
                        "message": f"'{', '.join(sorted(bad))}' is not a valid 'subClass' value.",
                        "target": "subClass",
                    }
                ],
            )
        items = [i for i in items if i["subClass"] in wanted]
    if "status" in q:
        items = [i for i in items if i["status"] == q["status"]]
    elif not q.get("includeInactive", False):
        items = [i for i in items if i["status"] != "Inactive"]
    for key in ("type", "number", "displayName", "parentId"):
        if key in q:
            items = [i for i in items if i.get(key) == q[key]]
    if "$search" in q:
        needle = str(q["$search"]).lower()
        items = [i for i in items if needle in str(i["displayName"]).lower() or needle in str(i["number"]).lower()]
    shape: Callable[[dict[str, Any]], dict[str, Any]] = (
        (lambda i: i) if call.wants_representation else (lambda i: _pick(i, _ITWIN_MINIMAL))
    )
    top = int(q.get("$top", DEFAULT_PAGE_SIZE))
    skip = int(q.get("$skip", 0))
    page = items[skip : skip + top]
    links = {
        "self": {"href": call.page_url(**{"$skip": skip, "$top": top})},
        "prev": {"href": call.page_url(**{"$skip": max(0, skip - top), "$top": top})} if skip > 0 else None,
        "next": {"href": call.page_url(**{"$skip": skip + top, "$top": top})} if skip + top < len(items) else None,
    }
    return json_response({"iTwins": [shape(i) for i in page], "_links": links})


def get_itwin(call: Call) -> Response:
    itwin = next((i for i in _itwins(call) if i["id"] == call.path["iTwinId"]), None)
    if itwin is None:
        raise SandboxError(404, "iTwinNotFound", "Requested iTwin is not available.")
    return json_response({"iTwin": itwin if call.wants_representation else _pick(itwin, _ITWIN_MINIMAL)})


def _imodel_out(call: Call, imodel: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in imodel.items() if k != "changesets"}
    out["_links"] = {
        "creator": None,
        "changesets": call.link(f"/{imodel['id']}/changesets"),
        "namedVersions": call.link(f"/{imodel['id']}/namedversions"),
    }
    return out


def list_imodels(call: Call) -> Response:
    itwin_id = call.query["iTwinId"]
    if itwin_id not in _itwin_ids(call):
        raise SandboxError(404, "iTwinNotFound", "Requested iTwin is not available.")
    items = [i for i in call.store.imodels() if i["iTwinId"] == itwin_id]
    q = call.query
    if "name" in q:
        items = [i for i in items if i["name"] == q["name"]]
    if "state" in q:
        items = [i for i in items if i["state"] == q["state"]]
    if "$search" in q:
        needle = str(q["$search"]).lower()
        items = [
            i for i in items if needle in str(i["name"]).lower() or needle in str(i.get("description") or "").lower()
        ]
    if "$orderBy" in q:
        field, _, direction = str(q["$orderBy"]).partition(" ")
        items.sort(key=lambda i: str(i.get(field) or ""), reverse=direction == "desc")
    full = call.wants_representation
    shaped = [_imodel_out(call, i) if full else _pick(i, _IMODEL_MINIMAL) for i in items]
    return offset_page(call, "iModels", shaped)


def _imodel(call: Call) -> dict[str, Any]:
    imodel = call.store.imodel(call.path["iModelId"])
    if imodel is None:
        raise SandboxError(404, "iModelNotFound", "Requested iModel is not available.")
    return imodel


def get_imodel(call: Call) -> Response:
    return json_response({"iModel": _imodel_out(call, _imodel(call))})


def list_changesets(call: Call) -> Response:
    imodel = _imodel(call)
    items: list[dict[str, Any]] = list(imodel.get("changesets", []))
    q = call.query
    if "afterIndex" in q:
        items = [c for c in items if c["index"] > int(q["afterIndex"])]
    if "lastIndex" in q:
        items = [c for c in items if c["index"] <= int(q["lastIndex"])]
    items.sort(key=lambda c: int(c["index"]), reverse=str(q.get("$orderBy", "index")).endswith("desc"))
    full = call.wants_representation
    shaped = []
    for cs in items:
        out = dict(cs) if full else _pick(cs, _CHANGESET_MINIMAL)
        out["_links"] = {"self": call.link(f"/{imodel['id']}/changesets/{cs['id']}"), "creator": None}
        shaped.append(out)
    return offset_page(call, "changesets", shaped)


ITWINS_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-my-itwins": list_itwins,
    "get-itwin": get_itwin,
}
IMODELS_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-itwin-imodels": list_imodels,
    "get-imodel-details": get_imodel,
    "get-imodel-changesets": list_changesets,
}
