"""The sandbox's HTTP plumbing: errors as the API writes them, the per-request `Call`, paging and links.

One exception type (`SandboxError`) becomes the API's error body in one place (`error_response`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..api.catalog import Operation
from .store import Record, Store, now_iso

if TYPE_CHECKING:
    from .app import Sandbox

__all__ = ["Call", "SandboxError", "error_response", "json_response", "not_found", "offset_page", "page_response"]

# The 422 code each family uses for a bad request (reference §2.4 and platform-context §4).
INVALID_REQUEST_CODES = {
    "reporting-v1": "InvalidInsightsRequest",
    "itwins-v1": "InvalidiTwinsRequest",
    "imodels-v2": "InvalidiModelsRequest",
}
DEFAULT_PAGE_SIZE = 100  # not documented; the reference's examples use 100


@dataclass
class SandboxError(Exception):
    """An API error reply: status, code, message, and optionally the bad field and per-field details."""

    status: int
    code: str
    message: str
    target: str | None = None
    details: Sequence[Mapping[str, Any]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


def not_found(code: str, label: str, target: str | None = "id") -> SandboxError:
    """404 in the API's wording: "Requested <Entity> is not available."."""
    return SandboxError(404, code, f"Requested {label} is not available.", target)


def error_response(error: SandboxError) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.target is not None:
        body["target"] = error.target
    if error.details:
        body["details"] = [dict(d) for d in error.details]
    return JSONResponse({"error": body}, status_code=error.status, headers=dict(error.headers))


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json")


def encode_token(seq: int) -> str:
    """An opaque continuation token for 'after insertion number `seq`'."""
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def decode_token(token: str, invalid_code: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        seq = int(value["s"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SandboxError(
            422,
            invalid_code,
            "The continuation token is not valid; use the _links.next.href you were given.",
            "$continuationToken",
        ) from None
    return seq


@dataclass
class Call:
    """Everything a handler needs about one validated request."""

    request: Request
    op: Operation
    path: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]
    store: Store
    sandbox: Sandbox
    user_email: str

    def created(self) -> dict[str, str]:
        """The stamps of a new entity: created and last modified now, by the caller."""
        now = now_iso()
        return {"createdOn": now, "createdBy": self.user_email, "modifiedOn": now, "modifiedBy": self.user_email}

    def modified(self) -> dict[str, str]:
        """The stamps of a change: modified now, by the caller."""
        return {"modifiedOn": now_iso(), "modifiedBy": self.user_email}

    @property
    def base_url(self) -> str:
        """scheme://host of this request: links point back to whoever was asked."""
        return str(self.request.base_url).rstrip("/")

    def href(self, path: str) -> dict[str, str]:
        return {"href": self.base_url + path}

    @property
    def invalid_code(self) -> str:
        return INVALID_REQUEST_CODES.get(self.op.family.name, "InvalidInsightsRequest")

    def invalid(self, message: str, target: str | None = None) -> SandboxError:
        return SandboxError(422, self.invalid_code, message, target)

    def page_url(self, **replace: Any) -> str:
        """This request's absolute URL with some query parameters replaced (for `_links`).

        Reporting v1 lists link as `.../collection/?$top=...`, the form in every Swagger example and the official
        client's URL builders; other families keep the path as asked.
        """
        params = dict(self.request.query_params)
        params.update({k: str(v) for k, v in replace.items()})
        query = urlencode(params, safe="$,")
        path = self.request.url.path
        if self.op.family.name == "reporting-v1" and not path.endswith("/"):
            path += "/"
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")


def page_response(
    call: Call,
    kind: str,
    parent: str | None,
    list_key: str,
    shape: Callable[[Record], dict[str, Any]],
    *,
    equals: Mapping[str, Any] | None = None,
    keep: Callable[[Record], bool] | None = None,
) -> Response:
    """One page of a collection with `_links.self` and, unless it is the last page, `_links.next`.

    `keep` filters the page's records after they are read (for conditions SQL cannot see, like the clock); such a
    page may come back shorter than `$top` while `_links.next` still leads on.
    """
    top = int(call.query.get("$top", DEFAULT_PAGE_SIZE))
    token = call.query.get("$continuationToken")
    after = decode_token(token, call.invalid_code) if token else 0
    records, next_seq = call.store.page(kind, parent, after_seq=after, limit=top, equals=equals)
    links: dict[str, Any] = {"self": {"href": call.page_url()}}
    if next_seq is not None:
        links["next"] = {"href": call.page_url(**{"$top": top, "$continuationToken": encode_token(next_seq)})}
    return json_response({list_key: [shape(r) for r in records if keep is None or keep(r)], "_links": links})


def offset_page(call: Call, key: str, items: list[dict[str, Any]]) -> Response:
    """A page of an in-memory list, with opaque continuation tokens carrying the offset."""
    top = int(call.query.get("$top", DEFAULT_PAGE_SIZE))
    token = call.query.get("$continuationToken")
    start = decode_token(token, call.invalid_code) if token else 0
    page = items[start : start + top]
    nxt = start + top
    links: dict[str, Any] = {"self": {"href": call.page_url()}, "prev": None, "next": None}
    if nxt < len(items):
        links["next"] = {"href": call.page_url(**{"$top": top, "$continuationToken": encode_token(nxt)})}
    return json_response({key: page, "_links": links})
