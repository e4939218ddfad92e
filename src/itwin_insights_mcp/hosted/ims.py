"""The hosted server's own OAuth client at IMS (or any OpenID Connect provider): a confidential web client on
`api.signin.OidcClient` (discovery, PKCE, code exchange, refresh, ID-token verification against the JWKS). Only the
server talks to IMS; no client token is ever sent there.

IMS rejects the RFC 8707 `resource` parameter, so it is never sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2

from ..api.signin import OidcClient, TokenReply
from ..errors import AuthError

__all__ = ["IdentityProvider", "ImsTokens"]


@dataclass
class ImsTokens:
    """A user's tokens at IMS, kept sealed in the shared state."""

    access_token: str
    refresh_token: str | None
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}

    @classmethod
    def from_reply(cls, reply: dict[str, Any], previous_refresh: str | None = None) -> ImsTokens:
        return cls(
            access_token=str(reply["access_token"]),
            refresh_token=reply.get("refresh_token") or previous_refresh,  # IdPs may or may not rotate it
            expires_at=time.time() + float(reply.get("expires_in", 3600)),
        )


class IdentityProvider:
    """IMS as this server's upstream identity provider (a confidential web client)."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._oidc = OidcClient(authority, client_id, client_secret=client_secret, transport=transport)
        self.authority = self._oidc.authority
        self.client_id = client_id
        self.scopes = scopes

    async def authorization_url(self, *, redirect_uri: str, state: str, challenge: str, nonce: str) -> str:
        return await self._oidc.authorization_url(
            redirect_uri=redirect_uri, scope=self.scopes, state=state, nonce=nonce, challenge=challenge
        )

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        return _granted(await self._oidc.exchange_code(code, verifier, redirect_uri))

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return _granted(await self._oidc.refresh(refresh_token))

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims after checking signature, issuer, audience, expiry and nonce."""
        return await self._oidc.verify_id_token(id_token, nonce)


def _granted(reply: TokenReply) -> dict[str, Any]:
    """The token reply's body when the provider granted it; AuthError (status and error code only) otherwise."""
    if not reply.ok:
        raise AuthError(f"The identity provider refused the token request ({reply.status} {reply.error_code}).")
    return reply.body
