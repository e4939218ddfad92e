"""One OpenID Connect client for every way this server signs in to IMS: client credentials (`auth.py`), desktop
login (`desktop_auth.py`) and hosted sign-in (`hosted/ims.py`).

It does discovery (`{authority}/.well-known/openid-configuration`, read once per client), PKCE S256, the
authorization URL, the token calls (authorization code, refresh, client credentials), revocation (RFC 7009),
userinfo, and ID-token verification against the provider's JWKS. Every endpoint must be https, except on the
loopback interface (local test providers), judged by the strict URL parser in `urls.py`. Claims are read with
`pyjwt` only. Callers decide what a refusal means for them: token calls return a `TokenReply` (status and body)
and raise `AuthError` only when the provider cannot be reached. No token or secret is ever put in a log or error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt

from ..errors import AuthError
from .urls import Url, UrlError

__all__ = [
    "HTTP_TIMEOUT_SECONDS",
    "OidcClient",
    "OidcConfig",
    "TokenReply",
    "discover",
    "identity",
    "normalize_authority",
    "pkce_pair",
    "require_secure",
    "unverified_claims",
]

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 15.0
ID_TOKEN_ALGORITHMS = ("RS256", "ES256", "PS256")
AUTHORITY_HINT = "Check ITWIN_AUTHORITY (it should be the IMS base URL, e.g. https://ims.bentley.com)."
_ACCEPT_JSON = {"Accept": "application/json"}


# ----------------------------------------------------------------------------------------------- small pieces


def require_secure(url: str, what: str) -> str:
    """`url` when it is https, or http to a loopback host (local test IdPs); AuthError otherwise."""
    try:
        parsed = Url.parse(url)
    except UrlError:
        parsed = None
    if parsed is not None and (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.loopback)):
        return url
    raise AuthError(f"The {what} {url!r} is not an https URL. Check ITWIN_AUTHORITY (e.g. https://ims.bentley.com).")


def normalize_authority(authority: str) -> str:
    """The authority without a trailing slash, checked to be https (or loopback http)."""
    base = authority.strip().rstrip("/")
    if not base:
        raise AuthError("No sign-in authority is configured. Set ITWIN_AUTHORITY (e.g. https://ims.bentley.com).")
    return require_secure(base, "authority")


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE verifier (86 characters of [A-Za-z0-9_-], RFC 7636 allows 43-128) and its S256 challenge."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = secrets.token_urlsafe(64)
    return verifier, str(create_s256_code_challenge(verifier))


def unverified_claims(token: str | None) -> dict[str, Any]:
    """The claims of a JWT without checking its signature: to show who signed in, never to trust anything."""
    if not token:
        return {}
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def identity(claims: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(subject, email, display name) from ID-token or userinfo claims; None where the claims say nothing."""

    def text(*keys: str) -> str | None:
        for key in keys:
            value = claims.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    name = text("name")
    if name is None:
        given, family = text("given_name"), text("family_name")
        name = " ".join(part for part in (given, family) if part) or None
    return text("sub"), text("email", "preferred_username", "upn"), name


@dataclass(frozen=True)
class OidcConfig:
    """The endpoints of an OpenID provider, from its discovery document (each checked to be https)."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None


@dataclass(frozen=True)
class TokenReply:
    """What a token endpoint answered. `body` holds tokens: never log or echo it; use `error_code` for errors."""

    status: int
    body: dict[str, Any]

    @property
    def access_token(self) -> str | None:
        value = self.body.get("access_token")
        return value if isinstance(value, str) and value else None

    @property
    def refresh_token(self) -> str | None:
        value = self.body.get("refresh_token")
        return value if isinstance(value, str) and value else None

    @property
    def ok(self) -> bool:
        """HTTP 200 with an access token."""
        return self.status == 200 and self.access_token is not None

    @property
    def error_code(self) -> str:
        """The OAuth `error`, reduced to safe characters (descriptions are never echoed)."""
        value = self.body.get("error")
        if not isinstance(value, str):
            return "no error code"
        return re.sub(r"[^A-Za-z0-9_.-]", "", value)[:64] or "no error code"

    def seconds(self, *keys: str, default: float | None = None) -> float | None:
        """The first positive number among `keys` (e.g. `expires_in`), else `default`."""
        for key in keys:
            value = self.body.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return default


# -------------------------------------------------------------------------------------------------- discovery


async def discover(authority: str, transport: httpx2.AsyncBaseTransport | None = None) -> OidcConfig:
    """Read `{authority}/.well-known/openid-configuration`; AuthError (with what to check) when that fails."""
    base = normalize_authority(authority)
    url = f"{base}/.well-known/openid-configuration"
    try:
        async with httpx2.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
            resp = await http.get(url, headers=_ACCEPT_JSON)
    except httpx2.HTTPError as exc:
        raise AuthError(
            f"Could not reach the sign-in authority at {url} ({type(exc).__name__}). "
            "Check your network connection and ITWIN_AUTHORITY."
        ) from None
    if resp.status_code != 200:
        raise AuthError(f"OpenID discovery at {url} answered HTTP {resp.status_code}. {AUTHORITY_HINT}")
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise AuthError(f"OpenID discovery at {url} did not return a JSON object. Check ITWIN_AUTHORITY.")

    def endpoint(name: str) -> str | None:
        value = doc.get(name)
        return require_secure(value, name.replace("_", " ")) if isinstance(value, str) and value else None

    token = endpoint("token_endpoint")
    if token is None:
        raise AuthError(f"OpenID discovery at {url} does not advertise a token_endpoint. Check ITWIN_AUTHORITY.")
    issuer = str(doc.get("issuer") or base)
    if issuer.rstrip("/") != base:
        log.warning("OpenID issuer %s differs from the configured authority %s.", issuer, base)
    return OidcConfig(
        issuer=issuer,
        token_endpoint=token,
        authorization_endpoint=endpoint("authorization_endpoint"),
        revocation_endpoint=endpoint("revocation_endpoint"),
        userinfo_endpoint=endpoint("userinfo_endpoint"),
        jwks_uri=endpoint("jwks_uri"),
    )


# ------------------------------------------------------------------------------------------------- the client


class OidcClient:
    """One OAuth client (`client_id`, with `client_secret` when confidential) at one authority.

    Discovery runs once (one request in flight however many callers) and is cached, as is the JWKS.
    A confidential client authenticates with `client_secret_post`, which IMS and the test provider accept.
    """

    def __init__(
        self,
        authority: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.authority = normalize_authority(authority)
        self.client_id = client_id
        self._secret = client_secret
        self._transport = transport
        self._config: OidcConfig | None = None
        self._jwks: jwt.PyJWKSet | None = None
        self._lock = asyncio.Lock()

    async def config(self) -> OidcConfig:
        """The discovery document, fetched on first use."""
        if self._config is None:
            async with self._lock:
                if self._config is None:
                    self._config = await discover(self.authority, self._transport)
        return self._config

    async def authorization_url(self, *, redirect_uri: str, scope: str, state: str, nonce: str, challenge: str) -> str:
        """Where to send the user's browser: the authorization-code request with PKCE S256 (no `resource`)."""
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

        config = await self.config()
        if config.authorization_endpoint is None:
            raise AuthError(f"{self.authority} does not advertise an authorization_endpoint. {AUTHORITY_HINT}")
        return str(
            prepare_grant_uri(
                config.authorization_endpoint,
                self.client_id,
                "code",
                redirect_uri=redirect_uri,
                scope=scope,
                state=state,
                nonce=nonce,
                code_challenge=challenge,
                code_challenge_method="S256",
            )
        )

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenReply:
        return await self.token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        )

    async def refresh(self, refresh_token: str) -> TokenReply:
        return await self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def client_credentials(self, scope: str, *, endpoint: str | None = None) -> TokenReply:
        return await self.token({"grant_type": "client_credentials", "scope": scope}, endpoint=endpoint)

    async def token(self, form: Mapping[str, str], *, endpoint: str | None = None) -> TokenReply:
        """POST a grant to the token endpoint (discovered unless given); AuthError only when unreachable."""
        target = endpoint or (await self.config()).token_endpoint
        data = {**form, "client_id": self.client_id}
        if self._secret is not None:
            data["client_secret"] = self._secret
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
                resp = await http.post(target, data=data, headers=_ACCEPT_JSON)
        except httpx2.HTTPError as exc:
            raise AuthError(
                f"Could not reach the token endpoint {target} ({type(exc).__name__}). Check your network connection."
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        return TokenReply(resp.status_code, body if isinstance(body, dict) else {})

    async def revoke(self, token: str, hint: str) -> int | None:
        """Revoke `token` (RFC 7009): the HTTP status, or None when the provider advertises no revocation."""
        endpoint = (await self.config()).revocation_endpoint
        if endpoint is None:
            return None
        data = {"token": token, "token_type_hint": hint, "client_id": self.client_id}
        if self._secret is not None:
            data["client_secret"] = self._secret
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
                resp = await http.post(endpoint, data=data)
        except httpx2.HTTPError as exc:
            raise AuthError(f"Could not reach the revocation endpoint ({type(exc).__name__}).") from None
        return resp.status_code

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims, or {} when there is no endpoint or it fails (display only: never an error)."""
        endpoint = (await self.config()).userinfo_endpoint
        if endpoint is None:
            return {}
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
                resp = await http.get(endpoint, headers={"Authorization": f"Bearer {access_token}", **_ACCEPT_JSON})
            body = resp.json() if resp.status_code == 200 else {}
        except (httpx2.HTTPError, ValueError) as exc:
            log.debug("userinfo failed (%s).", type(exc).__name__)
            return {}
        return body if isinstance(body, dict) else {}

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims after checking signature (JWKS), issuer, audience, expiry and nonce."""
        config = await self.config()
        try:
            key = await self._signing_key(jwt.get_unverified_header(id_token).get("kid"))
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=list(ID_TOKEN_ALGORITHMS), audience=self.client_id, issuer=config.issuer
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"The identity provider's ID token is not valid ({type(exc).__name__}).") from None
        if claims.get("nonce") != nonce:
            raise AuthError("The identity provider's ID token does not match this sign-in (nonce).")
        return claims

    async def _signing_key(self, kid: object) -> Any:
        """The JWKS key named `kid` (or the only key); a cached set is fetched again once for an unknown kid."""
        cached = self._jwks is not None
        if self._jwks is None:
            self._jwks = await self._fetch_jwks()
        key = _pick(self._jwks, kid)
        if key is None and cached:  # the provider may have rotated its keys since they were fetched
            self._jwks = await self._fetch_jwks()
            key = _pick(self._jwks, kid)
        if key is None:
            raise AuthError("The identity provider's ID token is signed with a key it does not publish.")
        return key

    async def _fetch_jwks(self) -> jwt.PyJWKSet:
        uri = (await self.config()).jwks_uri
        if uri is None:
            raise AuthError(f"{self.authority} does not advertise a jwks_uri, so ID tokens cannot be checked.")
        try:
            async with httpx2.AsyncClient(transport=self._transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
                resp = await http.get(uri, headers=_ACCEPT_JSON)
            resp.raise_for_status()
            return jwt.PyJWKSet.from_dict(resp.json())
        except (httpx2.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthError(f"The identity provider's keys at {uri} are unreadable ({type(exc).__name__}).") from None


def _pick(jwks: jwt.PyJWKSet, kid: object) -> Any | None:
    """The key named `kid`; without a kid, the only key of the set."""
    if kid is None:
        return jwks.keys[0].key if len(jwks.keys) == 1 else None
    return next((k.key for k in jwks.keys if k.key_id == kid), None)
