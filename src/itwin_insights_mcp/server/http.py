"""The streamable HTTP face: MCP at `/mcp` (stateless by default, sessions on request), `/healthz`, and Host/Origin
checks that are always on.

DNS-rebinding protection is armed for every bind address: loopback names are always allowed; a server bound to any
other address refuses to start until `ITWIN_INSIGHTS_ALLOWED_HOSTS` names the hosts it is reached by.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..errors import ConfigError
from ..hosted.modes import (
    HostedAuth,
    ProviderVerifier,
    ServiceKeyMiddleware,
    advertise_metadata_documents,
    require_loopback_for_none,
    start_background,
)
from ..settings import Settings

__all__ = ["StatelessGetRefusal", "create_http_app", "is_loopback", "security_settings"]

_LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _as_host_header(host: str) -> str | None:
    """How a bind address appears in a Host header (IPv6 in brackets); None for wildcard addresses."""
    bare = host.strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return host.lower()
    if address.is_unspecified:
        return None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


class StatelessGetRefusal:
    """Stateless HTTP has no session to push server messages on, so a GET stream there would idle for ever (one
    file descriptor per caller): answer 405 with `Allow: POST`, as the streamable HTTP spec allows."""

    def __init__(self, app: ASGIApp, path: str = "/mcp") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].rstrip("/") == self.path:
            response = JSONResponse(
                {"error": "method_not_allowed", "message": "This server is stateless: POST MCP messages to /mcp."},
                status_code=405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def security_settings(settings: Settings) -> TransportSecuritySettings:
    """Allowed Host and Origin values: loopback always, plus what the operator configured."""
    if not is_loopback(settings.host) and not settings.allowed_hosts:
        raise ConfigError(
            f"Binding to {settings.host} exposes the server beyond this machine: set ITWIN_INSIGHTS_ALLOWED_HOSTS "
            "(or --allowed-hosts) to the host name(s) clients use, e.g. mcp.example.com."
        )
    hosts: list[str] = []
    loopback = list(_LOOPBACK_HOSTS)
    bound = _as_host_header(settings.host)
    if bound is not None and is_loopback(settings.host) and bound not in loopback:
        loopback.append(bound)  # e.g. 127.0.0.2: clients reach it by that address
    for host in [*loopback, *settings.allowed_hosts]:
        hosts += [host, f"{host}:*"]
    origins = [f"http://{h}:*" for h in loopback] + [f"http://{h}" for h in loopback]
    origins += list(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def create_http_app(settings: Settings, server: Server[Any], hosted: HostedAuth | None = None) -> Starlette:
    """The ASGI app uvicorn serves; its lifespan runs the MCP session manager. Auth per `settings.auth_mode`."""
    require_loopback_for_none(settings, is_loopback)
    hosted = hosted or HostedAuth()
    backend = settings.resolved_backend

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "backend": backend, "auth": settings.auth_mode})

    provider = hosted.provider
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=not settings.http_sessions,
        transport_security=security_settings(settings),
        host=settings.host,
        auth=hosted.auth,
        token_verifier=ProviderVerifier(provider) if provider else None,
        auth_server_provider=provider,
        custom_starlette_routes=[Route("/healthz", healthz, methods=["GET"]), *hosted.routes],
    )
    if provider is not None:
        assert hosted.auth is not None
        advertise_metadata_documents(app, hosted.auth)
    start_background(app, hosted)
    if settings.auth_mode == "service":
        app.add_middleware(ServiceKeyMiddleware, keys=settings.api_keys)
    if not settings.http_sessions:
        app.add_middleware(StatelessGetRefusal)
    return app
