"""The three hosted auth modes of `serve --transport http`.

- `none`: anyone who can reach the port; allowed only when bound to loopback.
- `service`: callers present one of the configured API keys as a bearer token; upstream calls use the server's own
  credentials (client credentials or a static token).
- `oauth`: the MCP authorization spec. This server is the authorization server its clients see (RFC 8414 metadata,
  PKCE S256, dynamic registration and Client ID Metadata Documents, a redirect allowlist) and the protected resource
  (RFC 9728 metadata, `WWW-Authenticate: Bearer resource_metadata=...` on 401); sign-in is delegated to IMS, and
  every upstream call carries the token of the user whose request caused it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api.auth import TokenProvider
from ..errors import ConfigError
from ..settings import Settings
from .housekeeping import purge_on_schedule, run_during_lifespan
from .ims import IdentityProvider
from .oauth import InsightsOAuthProvider, UserTokenProvider
from .state import SharedState

__all__ = ["HostedAuth", "ServiceKeyMiddleware", "hosted_auth", "start_background"]


@dataclass
class HostedAuth:
    """What `streamable_http_app` needs for the chosen mode, and how a request finds its user's upstream token."""

    auth: AuthSettings | None = None
    provider: InsightsOAuthProvider | None = None
    routes: tuple[Route, ...] = ()
    user_tokens: Callable[[str], TokenProvider] | None = None
    state: SharedState | None = field(default=None, repr=False)


class ProviderVerifier:
    """TokenVerifier over the provider's own access tokens."""

    def __init__(self, provider: InsightsOAuthProvider) -> None:
        self._provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self._provider.load_access_token(token)


class ServiceKeyMiddleware:
    """`service` mode: every MCP request must carry one of the configured keys (compared in constant time)."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self._app = app
        self._keys = [hashlib.sha256(k.encode()).digest() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz",):
            await self._app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        presented = headers.get("authorization", "").removeprefix("Bearer ").strip() or headers.get("x-api-key", "")
        digest = hashlib.sha256(presented.encode()).digest()
        if not presented or not any(hmac.compare_digest(digest, key) for key in self._keys):
            body = json.dumps(
                {
                    "error": "invalid_token",
                    "error_description": "Present a valid API key as a bearer token (Authorization: Bearer <key>).",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer error="invalid_token"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


def hosted_auth(settings: Settings) -> HostedAuth:
    """Build the pieces of the chosen mode (validated: it refuses combinations that would be open or broken)."""
    if settings.auth_mode != "oauth":
        return HostedAuth()
    assert settings.public_url and settings.client_id and settings.client_secret and settings.state_key
    public = settings.public_url.rstrip("/")
    state = SharedState(settings.state_db, settings.state_key)
    scopes = " ".join(dict.fromkeys(["openid", "email", "profile", "offline_access", *settings.scopes.split()]))
    ims = IdentityProvider(settings.authority, settings.client_id, settings.client_secret, scopes)
    signing_key = hashlib.sha256(b"itwin-insights-mcp access tokens|" + settings.state_key.encode()).digest()
    provider = InsightsOAuthProvider(
        state=state,
        ims=ims,
        issuer=public,
        resource=f"{public}/mcp",
        signing_key=signing_key,
        redirect_allowlist=settings.redirect_allowlist,
    )
    auth = AuthSettings(
        # Plain strings on purpose: a pydantic URL would gain a trailing slash the SDK's own client refuses.
        issuer_url=public,  # type: ignore[arg-type]
        resource_server_url=f"{public}/mcp",  # type: ignore[arg-type]
        validate_token_resource=True,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=None),
        revocation_options=RevocationOptions(enabled=True),
        required_scopes=None,
    )
    routes = (Route("/oauth/callback", provider.callback, methods=["GET"]),)
    return HostedAuth(
        auth=auth,
        provider=provider,
        routes=routes,
        user_tokens=lambda subject: UserTokenProvider(state, ims, subject),
        state=state,
    )


def start_background(app: Starlette, hosted: HostedAuth) -> None:
    """The mode's background work for the app's lifespan: in `oauth` mode, purging expired rows on a schedule."""
    state = hosted.state
    if state is not None:
        run_during_lifespan(app, lambda: purge_on_schedule(state), state)


def advertise_metadata_documents(app: Starlette, auth: AuthSettings) -> None:
    """Serve the RFC 8414 metadata with `client_id_metadata_document_supported: true` (the SDK's omits it)."""
    metadata = build_metadata(
        auth.issuer_url,
        auth.service_documentation_url,
        auth.client_registration_options or ClientRegistrationOptions(),
        auth.revocation_options or RevocationOptions(),
        supports_identity_assertion=False,
    ).model_dump(by_alias=True, exclude_none=True, mode="json")
    metadata["client_id_metadata_document_supported"] = True

    async def endpoint(request: Request) -> Response:
        headers = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, OPTIONS"}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        return JSONResponse(metadata, headers={**headers, "Cache-Control": "public, max-age=3600"})

    for route in app.router.routes:
        if isinstance(route, Route) and route.path == "/.well-known/oauth-authorization-server":
            route.endpoint = endpoint
            route.app = request_response(endpoint)


def require_loopback_for_none(settings: Settings, is_loopback: Callable[[str], bool]) -> None:
    if settings.auth_mode == "none" and not is_loopback(settings.host):
        raise ConfigError(
            f"Binding to {settings.host} without authentication would let anyone call Bentley as this server. "
            "Bind to 127.0.0.1, or choose --auth service (API keys) or --auth oauth (user sign-in)."
        )
