"""Fetching a Client ID Metadata Document: the client_id is a URL that serves the client's own metadata.

An unauthenticated `/authorize` (or `/token`) names the URL, so the fetch is bounded on every side: only URLs that
`metadata_document_url` accepts (https, or http to a loopback host), no redirects, an
uncompressed body read in a stream and dropped as soon as it passes `CIMD_MAX_BYTES`, and one deadline
(`CIMD_TIMEOUT_SECONDS`) for the whole exchange (connect, headers and body), so a server trickling bytes cannot
hold the request open.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2

from ..api.urls import Url, metadata_document_url

__all__ = ["CIMD_MAX_BYTES", "CIMD_TIMEOUT_SECONDS", "fetch_metadata_document"]

CIMD_MAX_BYTES = 65_536  # a client's metadata is a few hundred bytes; 64 KiB leaves room and bounds memory
CIMD_TIMEOUT_SECONDS = 5.0  # total, from connect to the last byte


async def fetch_metadata_document(
    client_id: str,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    max_bytes: int = CIMD_MAX_BYTES,
    time_limit: float = CIMD_TIMEOUT_SECONDS,
) -> dict[str, Any] | None:
    """The JSON object served at `client_id`, or None when the URL is not fetchable or the answer is unusable."""
    url = metadata_document_url(client_id)
    if url is None or not _httpx_agrees(client_id, url):
        return None
    try:
        async with asyncio.timeout(time_limit):
            body = await _read(client_id, transport, max_bytes, time_limit)
    except (TimeoutError, httpx2.HTTPError):
        return None
    if body is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None
    return document if isinstance(document, dict) else None


def _httpx_agrees(client_id: str, url: Url) -> bool:
    """The HTTP client must read the same scheme, host and port that were checked (belt and braces)."""
    try:
        parsed = httpx2.URL(client_id)
    except (httpx2.InvalidURL, ValueError):
        return False
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return (parsed.scheme, host, port, parsed.userinfo) == (url.scheme, url.host, url.effective_port, b"")


async def _read(
    client_id: str, transport: httpx2.AsyncBaseTransport | None, max_bytes: int, time_limit: float
) -> bytes | None:
    """The body of a 200 answer, at most `max_bytes`; None for any other status or a longer body."""
    async with (
        httpx2.AsyncClient(timeout=time_limit, follow_redirects=False, transport=transport) as http,
        http.stream("GET", client_id, headers={"Accept": "application/json", "Accept-Encoding": "identity"}) as reply,
    ):
        if reply.status_code != 200:
            return None
        if reply.headers.get("content-encoding", "identity").lower() != "identity":
            return None  # asked for identity: a compressed body is refused, never inflated (no decompression bomb)
        declared = reply.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return None
        body = bytearray()
        async for chunk in reply.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                return None
        return bytes(body)
