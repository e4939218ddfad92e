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
from typing import TYPE_CHECKING, Protocol

import httpx2

from ..errors import AuthError

if TYPE_CHECKING:
    from .signin import OidcClient

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
    """Service-app client credentials against IMS, cached and refreshed before expiry (one refresh at a time).

    The token endpoint comes from discovery (`signin.OidcClient`); when discovery fails it falls back to
    `{authority}/connect/token`, where IMS serves it.
    """

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
        from .signin import OidcClient  # pyjwt and cryptography load only when a service app signs in

        self._oidc: OidcClient = OidcClient(authority, client_id, client_secret=client_secret, transport=transport)
        self._authority = self._oidc.authority
        self._scopes = scopes
        self._token_endpoint: str | None = None

    async def _refresh(self) -> None:
        endpoint = await self._discover_token_endpoint()
        reply = await self._oidc.client_credentials(self._scopes, endpoint=endpoint)
        if not reply.ok or reply.access_token is None:
            raise AuthError(
                f"The token endpoint {endpoint} refused the client credentials (HTTP {reply.status}). "
                "Check ITWIN_CLIENT_ID, ITWIN_CLIENT_SECRET and that the service app has the "
                f"'{self._scopes}' scope."
            )
        expires_in = reply.seconds("expires_in", default=3600.0)
        assert expires_in is not None
        self._token = reply.access_token
        self._expires_at = self._clock() + expires_in
        self.refresh_count += 1
        log.info("Obtained a service token from %s (valid %ss).", self._authority, f"{expires_in:g}")

    async def _discover_token_endpoint(self) -> str:
        if self._token_endpoint is None:
            try:
                self._token_endpoint = (await self._oidc.config()).token_endpoint
            except AuthError as exc:
                self._token_endpoint = f"{self._authority}/connect/token"
                log.warning("%s Using %s.", exc, self._token_endpoint)
        return self._token_endpoint
