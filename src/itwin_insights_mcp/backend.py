"""Which API the tools talk to: Bentley's service, or the sandbox in-process. The only module that knows both.

With no credentials the sandbox runs inside this process behind `httpx2.ASGITransport` (no port is opened), started by
the first call that needs it, and stderr says so loudly; the tool layer sees the same `InsightsClient` either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx2

from .api.auth import ClientCredentialsProvider, NoUserTokenProvider, StaticTokenProvider, TokenProvider
from .api.client import InsightsClient, RetryPolicy
from .errors import ConfigError
from .settings import Settings

__all__ = ["SANDBOX_BASE_URL", "open_client", "token_provider_for"]

log = logging.getLogger(__name__)

# Base URL the in-process sandbox is addressed by; its `_links` are built from it.
SANDBOX_BASE_URL = "http://sandbox.insights.local"


def token_provider_for(settings: Settings) -> TokenProvider:
    """The provider for the Bentley backend: a static token if given, else service-app client credentials.

    Hosted with OAuth there is no server identity: each call carries its user's token (set per request).
    """
    if settings.auth_mode == "oauth" and settings.transport == "http":
        return NoUserTokenProvider()
    if settings.access_token:
        return StaticTokenProvider(settings.access_token)
    if settings.desktop_login and not (settings.client_id and settings.client_secret):
        from .api.desktop_auth import RefreshTokenProvider, default_store

        return RefreshTokenProvider(
            authority=settings.authority,
            client_id=settings.desktop_client_id,
            store=default_store(settings.token_store),
        )
    if settings.client_id and settings.client_secret:
        return ClientCredentialsProvider(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            authority=settings.authority,
            scopes=settings.scopes,
        )
    raise ConfigError("No Bentley credentials: set ITWIN_ACCESS_TOKEN or ITWIN_CLIENT_ID + ITWIN_CLIENT_SECRET.")


def _retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_retries=settings.max_retries, max_total_wait_seconds=settings.max_retry_wait_seconds)


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[InsightsClient]:
    """Open the shared client for the configured backend, and the in-process sandbox when that is the backend."""
    if settings.resolved_backend == "bentley":
        provider = token_provider_for(settings)
        log.info("Backend: Bentley iTwin Platform at %s", settings.api_base_url)
        async with InsightsClient(
            base_url=settings.api_base_url,
            token_provider=provider,
            timeout_seconds=settings.timeout_seconds,
            retry=_retry_policy(settings),
        ) as client:
            yield client
        return

    log.warning(
        "Backend: SANDBOX (offline emulator, sample data; db %s). Run `itwin-insights-mcp login`, or set "
        "ITWIN_ACCESS_TOKEN or ITWIN_CLIENT_ID + ITWIN_CLIENT_SECRET, to use Bentley's service.",
        settings.sandbox_db,
    )
    transport = LazySandboxTransport(settings)
    client = InsightsClient(
        base_url=SANDBOX_BASE_URL,
        token_provider=StaticTokenProvider("sandbox"),
        transport=transport,
        timeout_seconds=settings.timeout_seconds,
        retry=_retry_policy(settings),
    )
    async with client:
        yield client


class LazySandboxTransport(httpx2.AsyncBaseTransport):
    """The in-process sandbox, imported, seeded and started by the first request that needs it: `initialize` and
    `tools/list` never do, so a desktop host sees the server as fast as one with no sandbox at all."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner: httpx2.ASGITransport | None = None
        self._started = asyncio.Lock()
        self._stack = AsyncExitStack()

    async def _start(self) -> httpx2.ASGITransport:
        async with self._started:
            if self._inner is None:
                from .sandbox.app import create_app  # imported only when the sandbox is first used
                from .sandbox.engine.jobs import SandboxLimits

                settings = self._settings
                app = create_app(
                    db_path=settings.sandbox_db,
                    odata_page_size=settings.sandbox_odata_page_size,
                    limits=SandboxLimits.from_settings(settings),
                )
                await self._stack.enter_async_context(app.router.lifespan_context(app))
                self._inner = httpx2.ASGITransport(app=app)
            return self._inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        inner = self._inner or await self._start()
        return await inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._stack.aclose()
