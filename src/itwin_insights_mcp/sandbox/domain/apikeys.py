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
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import invalid, not_found
from ..store import Record, Store
from .caller import Caller

__all__ = ["api_key_user", "create_key", "expired", "own_key", "rename_key", "revoke_key"]

MAX_VALIDITY = timedelta(days=183)  # "valid for a maximum of 6 months"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse_expiry(value: str) -> datetime | None:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expired(data: dict[str, Any]) -> bool:
    """Whether the key's expiry has passed (or cannot be read)."""
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
    if data["reportId"] != report_id or expired(data):
        return None
    return str(data["userEmail"])


def own_key(store: Store, user_email: str, key_id: str) -> Record:
    """One of the caller's keys; another user's key is not found."""
    record = store.get("api_key", key_id, parent=user_email)
    if record is None:
        raise not_found("ApiKeyNotFound", "ApiKey", "apiKeyId")
    return record


def create_key(caller: Caller, report_id: str, display_name: str, expires_at: str) -> tuple[Record, str]:
    """A new key for a live report and the caller; returns it with its secret (shown once, stored hashed)."""
    store = caller.store
    target = store.get("report", report_id)
    if target is None or target.data.get("deleted"):
        raise not_found("ReportNotFound", "Report", "reportId")
    expiry = _parse_expiry(expires_at)
    now = datetime.now(UTC)
    if expiry is None:
        raise invalid("expiresAt must be an ISO 8601 date or date-time, e.g. 2027-03-01.", "expiresAt")
    if expiry <= now or expiry > now + MAX_VALIDITY:
        raise invalid(
            "expiresAt must be in the future and at most 6 months from now; keys cannot be extended, "
            "create a new one before this one expires.",
            "expiresAt",
        )
    secret = "ak_" + secrets.token_urlsafe(32)
    data = {
        "id": str(uuid.uuid4()),
        "displayName": display_name,
        "userEmail": caller.user_email,
        "expiresAt": expiry.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "reportId": target.id,
        "secretHash": _hash(secret),
    }
    with store.transaction():
        return store.insert("api_key", caller.user_email, data), secret


def rename_key(caller: Caller, key_id: str, display_name: str) -> Record:
    """Rename one of the caller's keys."""
    with caller.store.transaction():
        record = own_key(caller.store, caller.user_email, key_id)
        return caller.store.update(record, {**record.data, "displayName": display_name})


def revoke_key(caller: Caller, key_id: str) -> None:
    """Revoke (delete) one of the caller's keys."""
    with caller.store.transaction():
        caller.store.delete(own_key(caller.store, caller.user_email, key_id))
