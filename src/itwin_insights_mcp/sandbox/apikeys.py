"""Reporting v2 API keys: a secret shown once, stored only as a hash, valid for one report until it expires (at most
six months) or is revoked; the OData feed accepts it as Basic credentials, as Power BI and Excel send it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from .http import Call, json_response, not_found, page_response
from .store import Record, Store

__all__ = ["APIKEY_HANDLERS", "api_key_user"]

MAX_VALIDITY = timedelta(days=183)  # "valid for a maximum of 6 months"
RP = "/insights/reporting"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse_expiry(value: str) -> datetime | None:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _expired(data: dict[str, Any]) -> bool:
    expiry = _parse_expiry(str(data["expiresAt"]))
    return expiry is None or expiry <= datetime.now(UTC)


def _secret_from_basic(credentials: str) -> str:
    """The key from `Basic base64(user:key)`, `Basic base64(key)` or `Basic key` (as the docs allow)."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return credentials
    return decoded.split(":", 1)[1] if ":" in decoded else decoded


def api_key_user(store: Store, credentials: str, report_id: str) -> str | None:
    """The owner's email when the Basic credentials carry a live key for this report, else None."""
    secret = _secret_from_basic(credentials)
    row = store.conn.execute(
        "SELECT data FROM records WHERE kind = 'api_key' AND json_extract(data, '$.secretHash') = ?", (_hash(secret),)
    ).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    if data["reportId"] != report_id or _expired(data):
        return None
    return str(data["userEmail"])


def _out(call: Call, record: Record, secret: str | None = None) -> dict[str, Any]:
    data = record.data
    out = {k: data[k] for k in ("id", "displayName", "userEmail", "expiresAt")}
    if secret is not None:
        out["apiKey"] = secret
    out["_links"] = {"report": call.href(f"{RP}/reports/{data['reportId']}")}
    return out


def _own_key(call: Call) -> Record:
    record = call.store.get("api_key", call.path["apiKeyId"], parent=call.user_email)
    if record is None:
        raise not_found("ApiKeyNotFound", "ApiKey", "apiKeyId")
    return record


def create_key(call: Call) -> Response:
    body = call.body
    report = call.store.get("report", body["reportId"])
    if report is None or report.data.get("deleted"):
        raise not_found("ReportNotFound", "Report", "reportId")
    expiry = _parse_expiry(body["expiresAt"])
    now = datetime.now(UTC)
    if expiry is None:
        raise call.invalid("expiresAt must be an ISO 8601 date or date-time, e.g. 2027-03-01.", "expiresAt")
    if expiry <= now or expiry > now + MAX_VALIDITY:
        raise call.invalid(
            "expiresAt must be in the future and at most 6 months from now; keys cannot be extended, "
            "create a new one before this one expires.",
            "expiresAt",
        )
    secret = "ak_" + secrets.token_urlsafe(32)
    data = {
        "id": str(uuid.uuid4()),
        "displayName": body["displayName"],
        "userEmail": call.user_email,
        "expiresAt": expiry.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "reportId": report.id,
        "secretHash": _hash(secret),
    }
    with call.store.transaction():
        record = call.store.insert("api_key", call.user_email, data)
    return json_response({"key": _out(call, record, secret)})


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
        lambda r: _out(call, r),
        equals=equals,
        keep=lambda r: _expired(r.data) == want_expired,
    )


def get_key(call: Call) -> Response:
    return json_response({"key": _out(call, _own_key(call))})


def update_key(call: Call) -> Response:
    with call.store.transaction():
        record = _own_key(call)
        record = call.store.update(record, {**record.data, "displayName": call.body["displayName"]})
    return json_response({"key": _out(call, record)})


def revoke_key(call: Call) -> Response:
    with call.store.transaction():
        call.store.delete(_own_key(call))
    return Response(status_code=204)


APIKEY_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "create-apikey": create_key,
    "get-apikeys": list_keys,
    "get-apikey": get_key,
    "update-apikey": update_key,
    "revoke-apikey": revoke_key,
}
