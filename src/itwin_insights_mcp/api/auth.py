"""Token providers: where the bearer token for upstream calls comes from.

A provider hands out a current access token and refreshes it before expiry. Under concurrency only one refresh is
ever in flight; the others wait for it. Tokens live in memory only and are never logged or put in error text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

import httpx2

from ..errors import AuthError

__all__ = [
    "CachedTokenProvider",
    "ClientCredentialsProvider",
    "NoUserTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "request_token_provider",
]

log = logging.getLogger(__name__)

# Refresh this many seconds before the token's stated expiry, so a request never leaves with a dying token.
REFRESH_MARGIN_SECONDS = 60.0


class TokenProvider(Protocol):
    """Anything that can produce a bearer token for the next request."""

    can_refresh: bool

    async def get_token(self) -> str: ...

    def invalidate(self) -> None:
        """Forget the cached token (after a 401) so the next call fetches a new one."""


# The token provider of the user whose MCP request is running (hosted OAuth mode). The shared client reads it per
# request, so it never holds a user's token itself; outside such a request it is None.
request_token_provider: ContextVar[TokenProvider | None] = ContextVar("request_token_provider", default=None)


class NoUserTokenProvider:
    """The server-wide provider in hosted OAuth mode: there is no server identity, only the caller's."""

    can_refresh = False

    async def get_token(self) -> str:
        raise AuthError("This hosted server calls Bentley only on behalf of a signed-in user, and none is set.")

    def invalidate(self) -> None:
        """Nothing cached."""


class StaticTokenProvider:
    """A fixed token (`ITWIN_ACCESS_TOKEN`, or the sandbox's placeholder); cannot refresh."""

    can_refresh = False

    def __init__(self, token: str) -> None:
        self._token = token.removeprefix("Bearer ").removeprefix("bearer ").strip()

    async def get_token(self) -> str:
        return self._token

    def invalidate(self) -> None:
        """A static token cannot be renewed; the 401 reaches the agent with the fix."""


class CachedTokenProvider:
    """A token fetched by `_refresh` (which sets `_token` and `_expires_at`), reused until shortly before expiry;
    under concurrency one refresh runs and the other callers wait for it."""

    can_refresh = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.refresh_count = 0

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at - REFRESH_MARGIN_SECONDS

    async def get_token(self) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh():  # another waiter may have refreshed while we queued
                await self._refresh()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    async def _refresh(self) -> None:
        raise NotImplementedError


class ClientCredentialsProvider(CachedTokenProvider):
    """Service-app client credentials against IMS, cached and refreshed before expiry (one refresh at a time)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authority: str,
        scopes: str,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority = authority.rstrip("/")
        self._scopes = scopes
        self._transport = transport
        self._token_endpoint: str | None = None

    async def _refresh(self) -> None:
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        endpoint = await self._discover_token_endpoint()
        form = prepare_token_request(
            "client_credentials", scope=self._scopes, client_id=self._client_id, client_secret=self._client_secret
        )
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=15.0) as http:
                resp = await http.post(
                    endpoint, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
                )
            token: dict[str, Any] = resp.json() if resp.status_code == 200 else {}
        except (httpx2.HTTPError, ValueError) as exc:
            raise AuthError(f"Could not reach the token endpoint {endpoint} ({type(exc).__name__}).") from None
        access = token.get("access_token")
        if resp.status_code != 200 or not isinstance(access, str) or not access:
            raise AuthError(
                f"The token endpoint {endpoint} refused the client credentials (HTTP {resp.status_code}). "
                "Check ITWIN_CLIENT_ID, ITWIN_CLIENT_SECRET and that the service app has the "
                f"'{self._scopes}' scope."
            )
        self._token = access
        self._expires_at = self._clock() + float(token.get("expires_in", 3600))
        self.refresh_count += 1
        log.info("Obtained a service token from %s (valid %ss).", self._authority, token.get("expires_in", 3600))

    async def _discover_token_endpoint(self) -> str:
        if self._token_endpoint is not None:
            return self._token_endpoint
        url = f"{self._authority}/.well-known/openid-configuration"
        endpoint = f"{self._authority}/connect/token"
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=15.0) as http:
                resp = await http.get(url)
            if resp.status_code == 200:
                endpoint = str(resp.json().get("token_endpoint") or endpoint)
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("OpenID discovery at %s failed (%s); using %s.", url, type(exc).__name__, endpoint)
        self._token_endpoint = endpoint
        return endpoint
