"""Reporting v2 adapter: the same reports, report mappings and OData feed as v1, addressed by iTwinId, plus API keys.

v1 and v2 share one store: a report made with either is the other's too. API keys: a secret shown once, stored only
as a hash, valid for one report until it expires (at most six months) or is revoked (`domain.apikeys`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from ..domain import apikeys
from ..store import Record
from ..wire import Call, json_response, page_response
from .families import ITWINS
from .reports import ReportStyle, no_content, report_handlers

__all__ = ["HANDLERS", "STYLE"]

STYLE = ReportStyle(
    version="v2",
    list_operation="get-itwin-reports",
    context_param="iTwinId",
    context_link="iTwin",
    context_href=lambda call, itwin_id: call.link(f"/{itwin_id}", ITWINS),
)


def _key_out(call: Call, record: Record, secret: str | None = None) -> dict[str, Any]:
    data = record.data
    out = {k: data[k] for k in ("id", "displayName", "userEmail", "expiresAt")}
    if secret is not None:
        out["apiKey"] = secret
    out["_links"] = {"report": call.link(f"/reports/{data['reportId']}")}
    return out


def create_key(call: Call) -> Response:
    body = call.body
    record, secret = apikeys.create_key(call.caller, body["reportId"], body["displayName"], body["expiresAt"])
    return json_response({"key": _key_out(call, record, secret)})


def list_keys(call: Call) -> Response:
    equals: dict[str, Any] = {}
    if "reportId" in call.query:
        equals["reportId"] = call.query["reportId"]
    want_expired = bool(call.query.get("expired", False))
    return page_response(
        call,
        "api_key",
        call.user_email,
        "keys",
        lambda r: _key_out(call, r),
        equals=equals,
        keep=lambda r: apikeys.expired(r.data) == want_expired,
    )


def get_key(call: Call) -> Response:
    return json_response({"key": _key_out(call, apikeys.own_key(call.store, call.user_email, call.path["apiKeyId"]))})


def update_key(call: Call) -> Response:
    record = apikeys.rename_key(call.caller, call.path["apiKeyId"], call.body["displayName"])
    return json_response({"key": _key_out(call, record)})


def revoke_key(call: Call) -> Response:
    apikeys.revoke_key(call.caller, call.path["apiKeyId"])
    return no_content()


HANDLERS: dict[str, Callable[[Call], Response]] = {
    **report_handlers(STYLE),
    "create-apikey": create_key,
    "get-apikeys": list_keys,
    "get-apikey": get_key,
    "update-apikey": update_key,
    "revoke-apikey": revoke_key,
}
