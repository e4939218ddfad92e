"""The server's own OAuth client at IMS (or any OpenID Connect provider): discovery, the authorization-code leg
with PKCE, refresh, and ID-token verification. Only the server talks to IMS; no client token is ever sent there.

IMS rejects the RFC 8707 `resource` parameter, so it is never sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2
import jwt

from ..errors import AuthError

__all__ = ["IdentityProvider", "ImsTokens", "pkce_pair"]


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


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

    def __init__(self, authority: str, client_id: str, client_secret: str, scopes: str) -> None:
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = scopes
        self._config: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            async with self._lock:
                if self._config is None:
                    url = f"{self.authority}/.well-known/openid-configuration"
                    try:
                        async with httpx2.AsyncClient(timeout=15.0) as http:
                            reply = await http.get(url)
                        reply.raise_for_status()
                        self._config = dict(reply.json())
                    except (httpx2.HTTPError, ValueError) as exc:
                        raise AuthError(f"OpenID discovery at {url} failed ({type(exc).__name__}).") from None
        return self._config

    async def authorization_url(self, *, redirect_uri: str, state: str, challenge: str, nonce: str) -> str:
        config = await self.config()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{config['authorization_endpoint']}?{urlencode(query)}"

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        config = await self.config()
        try:
            async with httpx2.AsyncClient(timeout=15.0) as http:
                reply = await http.post(
                    config["token_endpoint"], data={**form, "client_id": self.client_id, "client_secret": self._secret}
                )
        except httpx2.HTTPError as exc:
            raise AuthError(f"The identity provider's token endpoint failed ({type(exc).__name__}).") from None
        if reply.status_code != 200:
            code = (
                reply.json().get("error", "error")
                if reply.headers.get("content-type", "").startswith("application/json")
                else "error"
            )
            raise AuthError(f"The identity provider refused the token request ({reply.status_code} {code}).")
        return dict(reply.json())

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        return await self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims after checking signature, issuer, audience, expiry and nonce."""
        config = await self.config()
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(config["jwks_uri"])
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=["RS256", "ES256", "PS256"],
                audience=self.client_id,
                issuer=config["issuer"],
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"The identity provider's ID token is not valid ({type(exc).__name__}).") from None
        if claims.get("nonce") != nonce:
            raise AuthError("The identity provider's ID token does not match this sign-in (nonce).")
        return claims
