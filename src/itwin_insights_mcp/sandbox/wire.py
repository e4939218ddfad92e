"""The sandbox's HTTP plumbing: errors as the API writes them, the per-request `Call`, paging and links.

One exception type (`errors.SandboxError`) becomes the API's error body in one place (`error_response`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..api.catalog import Operation
from .domain.caller import Caller
from .errors import SandboxError
from .runtime import Sandbox
from .store import Record, Store

__all__ = ["Call", "as_uri", "error_response", "json_response", "offset_page", "page_response"]

# The 422 code each family uses for a bad request (reference §2.4 and platform-context §4).
INVALID_REQUEST_CODES = {
    "reporting-v1": "InvalidInsightsRequest",
    "itwins-v1": "InvalidiTwinsRequest",
    "imodels-v2": "InvalidiModelsRequest",
    "imodel-query-v1": "InvalidiModelQueryRequest",
}
# Families whose list links end the collection with `/` (`.../collection/?$top=...`): Reporting v1's Swagger
# examples and the official client's URL builders; the other families keep the path as asked.
SLASHED_LIST_LINKS = frozenset({"reporting-v1"})
DEFAULT_PAGE_SIZE = 100  # not documented; the reference's examples use 100
MAX_SEQ = (1 << 63) - 1  # SQLite's INTEGER range: positions beyond it cannot exist
# Characters a URI may hold as they are (RFC 3986 reserved + unreserved); the rest of an id is percent-encoded.
URI_SAFE = ":/?#[]@!$&'()*+,;=-._~"
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAX_TOKEN_LENGTH = 512  # our tokens are ~30 characters; anything far longer was not issued by us
MAX_MESSAGE_LENGTH = 1000  # an error message never grows with the bad value it describes
_LONG_RUN = re.compile(r"\S{81,}")
_SURROGATES = re.compile("[\ud800-\udfff]")


def brief(message: str) -> str:
    """`message` with every run of more than 80 non-blank characters cut to a 40-character prefix, and at most
    MAX_MESSAGE_LENGTH characters in all: an error quotes a short prefix of a bad value, never all of it."""
    short = _LONG_RUN.sub(lambda m: f"{m.group(0)[:40]}...({len(m.group(0))} characters)", message)
    return short if len(short) <= MAX_MESSAGE_LENGTH else short[:MAX_MESSAGE_LENGTH] + "..."


def error_response(error: SandboxError, invalid_code: str = "InvalidInsightsRequest") -> Response:
    """The API's error body for `error`; a 422 without a code gets the family's `invalid_code`."""
    body: dict[str, Any] = {"code": error.code or invalid_code, "message": brief(error.message)}
    if error.target is not None:
        body["target"] = brief(error.target)
    if error.details:
        body["details"] = [
            {k: brief(v) if isinstance(v, str) else v for k, v in dict(d).items()} for d in error.details
        ]
    response = json_response({"error": body}, error.status)
    response.headers.update(dict(error.headers))
    return response


def _utf8_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates (which UTF-8 cannot carry) replaced by U+FFFD; pairs are joined."""
    if _SURROGATES.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON reply; a stored string holding a lone surrogate is sent with U+FFFD instead of failing the request."""
    text = _utf8_text(json.dumps(body, ensure_ascii=False))
    return Response(text, status_code=status, media_type="application/json")


def encode_token(seq: int) -> str:
    """An opaque continuation token for 'after insertion number `seq`'."""
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def decode_token(token: str, invalid_code: str) -> int:
    """The position a continuation token stands for; 422 for anything this sandbox did not issue."""
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        seq = value["s"]
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise ValueError("not a position")
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, binascii.Error):
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

    @property
    def caller(self) -> Caller:
        """Who acts, on which store: what the domain rules need from a request."""
        return Caller(self.store, self.user_email)

    @property
    def wants_representation(self) -> bool:
        """`Prefer: return=representation`: the full form of each listed item rather than the minimal one."""
        return "return=representation" in self.request.headers.get("prefer", "").replace(" ", "").lower()

    @property
    def base_url(self) -> str:
        """scheme://host of this request: links point back to whoever was asked."""
        return str(self.request.base_url).rstrip("/")

    def href(self, path: str) -> dict[str, str]:
        return {"href": self.base_url + as_uri(path)}

    def link(self, path: str, family: str | None = None) -> dict[str, str]:
        """A link to `path` under a family's base path from the catalog (this request's family by default)."""
        base = self.op.family.base_path if family is None else self.sandbox.base_paths[family]
        return self.href(base.rstrip("/") + path)

    def url(self, path: str) -> str:
        """The absolute URL of `path` under this request's family's base path."""
        return self.base_url + as_uri(self.op.family.base_path.rstrip("/") + path)

    @property
    def invalid_code(self) -> str:
        return INVALID_REQUEST_CODES.get(self.op.family.name, "InvalidInsightsRequest")

    def invalid(self, message: str, target: str | None = None) -> SandboxError:
        return SandboxError(422, self.invalid_code, message, target)

    def page_url(self, **replace: Any) -> str:
        """This request's absolute URL with some query parameters replaced (for `_links`; see SLASHED_LIST_LINKS)."""
        params = dict(self.request.query_params)
        params.update({k: str(v) for k, v in replace.items()})
        query = urlencode(params, safe="$,")
        path = self.request.url.path
        if self.op.family.name in SLASHED_LIST_LINKS and not path.endswith("/"):
            path += "/"
        return f"{self.base_url}{as_uri(path)}" + (f"?{query}" if query else "")


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


def as_uri(path: str) -> str:
    """`path` as a valid URI reference: ids with spaces or non-ASCII letters are percent-encoded, `%XX` kept."""
    return quote(LONE_PERCENT.sub("%25", path), safe=URI_SAFE + "%")
