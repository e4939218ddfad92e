"""InsightsClient: the one shared `httpx2.AsyncClient` of a server, with auth, retries and error mapping.

Retry rules (the only place they live):
- 429 is retried for every method (the request was not processed), waiting `Retry-After` when given, else an
  exponential, jittered backoff; bounded in attempts and in total wait.
- 502/503/504 and connection failures are retried only for idempotent methods (GET, PUT, DELETE): a POST that may
  have reached the service is never sent twice.
- 401 is retried once after invalidating the token, only when the provider can fetch a new one.
Every failure leaves as `ApiError` or `TransportError`; httpx exceptions never escape.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from .. import __version__
from ..errors import ApiError, ErrorDetail, TransportError
from ..redact import redact
from .auth import TokenProvider, request_token_provider

__all__ = ["ApiResponse", "InsightsClient", "RetryPolicy", "next_page_token"]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
JSON_ACCEPT_DEFAULT = "application/vnd.bentley.itwin-platform.v1+json"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts after the first, the cap on one wait and on all waits together."""

    max_retries: int = 3
    max_wait_seconds: float = 30.0
    max_total_wait_seconds: float = 60.0
    backoff_base_seconds: float = 0.5


@dataclass(frozen=True)
class ApiResponse:
    """A successful reply: parsed JSON, text for other content types, None for 204."""

    status: int
    content_type: str
    body: Any
    attempts: int = 1


def next_page_token(body: Any, param: str = "$continuationToken") -> str | None:
    """The `param` value in `_links.next.href` of a collection reply, or None on the last page."""
    if not isinstance(body, Mapping):
        return None
    links = body.get("_links")
    nxt = links.get("next") if isinstance(links, Mapping) else None
    href = nxt.get("href") if isinstance(nxt, Mapping) else None
    if not isinstance(href, str) or not href:
        return None
    values = parse_qs(urlsplit(href).query, keep_blank_values=True).get(param)
    return values[0] if values else None


def _retry_after_seconds(response: httpx2.Response) -> float | None:
    """Seconds the service asks us to wait; None when absent or unreadable (then the default back-off applies)."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:
            return None
        seconds = parsed.timestamp() - time.time()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


_MAX_FIELD = 500  # characters kept of any upstream error field
_MAX_DETAILS = 20


def _field(value: Any, secrets: tuple[str, ...], limit: int = _MAX_FIELD) -> str:
    """One upstream error field as safe, bounded text."""
    text = redact(str(value), secrets)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _api_error(response: httpx2.Response, attempts: int, secrets: tuple[str, ...] = ()) -> ApiError:
    """Turn an error reply into ApiError, summarising the API's `{"error": {...}}` body (code, message, target,
    details), each field bounded and scrubbed of credentials; never the body whole."""
    code, message = f"Http{response.status_code}", response.reason_phrase or "Error"
    target: str | None = None
    details: list[ErrorDetail] = []
    try:
        payload = response.json()
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        code = _field(err.get("code") or code, secrets, 100)
        message = _field(err.get("message") or message, secrets)
        target = _field(err["target"], secrets, 100) if isinstance(err.get("target"), str) else None
        raw_details = err.get("details")
        for item in (raw_details if isinstance(raw_details, list) else [])[:_MAX_DETAILS]:
            if isinstance(item, dict):
                detail_target = item.get("target")
                details.append(
                    ErrorDetail(
                        _field(item.get("code", ""), secrets, 100),
                        _field(item.get("message", ""), secrets),
                        _field(detail_target, secrets, 100) if isinstance(detail_target, str) else None,
                    )
                )
    elif response.content:
        message = f"{message}: {_field(response.text, secrets, 300)}"
    return ApiError(
        status=response.status_code,
        code=code,
        message=message,
        target=target,
        details=details,
        retry_after=_retry_after_seconds(response),
        attempts=attempts,
    )


class InsightsClient:
    """Sends API requests with a bearer token from the provider; one instance per server, shared by all calls."""

    def __init__(
        self,
        *,
        base_url: str,
        token_provider: TokenProvider,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tokens = token_provider
        self._deadline = timeout_seconds
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx2.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=httpx2.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            headers={"User-Agent": f"itwin-insights-mcp/{__version__}"},
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> InsightsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        accept: str = JSON_ACCEPT_DEFAULT,
    ) -> ApiResponse:
        """Send one logical request (with the retries the rules above allow) and return the reply or raise."""
        method = method.upper()
        attempt = 0
        waited = 0.0
        auth_retried = False
        while True:
            attempt += 1
            tokens = request_token_provider.get() or self._tokens  # the caller's identity when hosted with OAuth
            token = await tokens.get_token()
            headers = {"Accept": accept, "Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            try:
                # One total deadline per attempt: httpx times each read, so a trickling reply could last for ever.
                async with asyncio.timeout(self._deadline):
                    response = await self._http.request(method, path, params=params, json=json_body, headers=headers)
            except (httpx2.TransportError, TimeoutError) as exc:
                retryable = method in IDEMPOTENT_METHODS
                delay = self._backoff(attempt)
                if retryable and self._may_retry(attempt, waited, delay):
                    log.warning("%s %s failed (%s); retrying in %.1fs", method, path, type(exc).__name__, delay)
                    await self._sleep(delay)
                    waited += delay
                    continue
                raise self._transport_error(exc, method, path, attempt, retryable) from None
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.debug("%s %s -> %s in %.0f ms", method, path, response.status_code, elapsed_ms)

            if response.status_code == 401 and tokens.can_refresh and not auth_retried:
                tokens.invalidate()
                auth_retried = True
                continue
            if response.status_code == 429 or (
                response.status_code in RETRYABLE_STATUSES and method in IDEMPOTENT_METHODS
            ):
                retry_after = _retry_after_seconds(response)
                delay = self._backoff(attempt) if retry_after is None else retry_after + random.uniform(0, 0.25)  # noqa: S311
                if self._may_retry(attempt, waited, delay):
                    log.warning("%s %s -> %s; retrying in %.1fs", method, path, response.status_code, delay)
                    await self._sleep(delay)
                    waited += delay
                    continue
            if response.is_success:
                return ApiResponse(response.status_code, *_parse_body(response), attempts=attempt)
            raise _api_error(response, attempt, (token,))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped per wait."""
        ceiling = min(self._retry.max_wait_seconds, self._retry.backoff_base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography

    def _may_retry(self, attempt: int, waited: float, delay: float) -> bool:
        return (
            attempt <= self._retry.max_retries
            and delay <= self._retry.max_wait_seconds
            and waited + delay <= self._retry.max_total_wait_seconds
        )

    def _transport_error(
        self, exc: httpx2.TransportError | TimeoutError, method: str, path: str, attempts: int, retryable: bool
    ) -> TransportError:
        kind = "timed out" if isinstance(exc, httpx2.TimeoutException | TimeoutError) else "failed"
        host = urlsplit(self.base_url).netloc or self.base_url
        if retryable:
            note = f"gave up after {attempts} attempt(s)"
        else:
            note = (
                f"not retried: {method} is not idempotent and may have reached the service; "
                "check with a list or get call before sending it again"
            )
        return TransportError(
            message=f"{method} {path} to {host} {kind} ({type(exc).__name__}); {note}.",
            method=method,
            retried=retryable and attempts > 1,
            attempts=attempts,
        )


def _parse_body(response: httpx2.Response) -> tuple[str, Any]:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.status_code == 204 or not response.content:
        return content_type, None
    if content_type.endswith("json"):
        try:
            return content_type, response.json()
        except ValueError:
            return content_type, response.text
    return content_type, response.text
