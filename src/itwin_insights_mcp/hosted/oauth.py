"""This server as the OAuth authorization server its MCP clients see, with sign-in delegated to IMS.

Flow: the client registers (dynamic registration, or a Client ID Metadata Document URL as client_id) and sends the
user to /authorize with PKCE. We remember that request in the shared state and send the user on to IMS (our own
PKCE, no `resource` parameter). IMS calls back /oauth/callback; we verify the ID token, seal the user's IMS tokens
in the shared state, and hand the client an authorization code of ours. The client then receives tokens issued by
this server for this server: short-lived JWT access tokens bound to its resource URL (`aud`) and rotating opaque
refresh tokens. A client's token is never sent upstream: each tool call uses the signed-in user's IMS token, read
from the shared state and refreshed there. Every database call goes through the state's async methods, which run the
blocking driver off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
import weakref
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx2
import jwt
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..api.signin import pkce_pair, unverified_claims
from ..api.urls import RedirectAllowlist, metadata_document_url
from ..errors import AuthError
from .cimd import fetch_metadata_document
from .ims import IdentityProvider, ImsTokens
from .state import SharedState, StateConnection, digest

__all__ = ["InsightsOAuthProvider", "UserTokenProvider"]

ACCESS_TTL = 900  # 15 minutes
REFRESH_TTL = 30 * 86400
CODE_TTL = 300
PENDING_TTL = 600
CIMD_TTL = 3600
REFRESH_MARGIN = 60


class InsightsOAuthProvider:
    """OAuthAuthorizationServerProvider for the SDK's auth routes, backed by the shared state."""

    def __init__(
        self,
        *,
        state: SharedState,
        ims: IdentityProvider,
        issuer: str,
        resource: str,
        signing_key: bytes,
        redirect_allowlist: tuple[str, ...],
        cimd_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.state = state
        self.ims = ims
        self.issuer = issuer.rstrip("/")
        self.resource = resource
        self._key = signing_key
        self._allowlist = RedirectAllowlist(redirect_allowlist)  # a bad entry stops start-up with its reason
        self._cimd_transport = cimd_transport  # tests only: where metadata documents are fetched from
        self.callback_url = f"{self.issuer}/oauth/callback"

    # -- clients: dynamic registration and Client ID Metadata Documents ----------------------------------------

    def _allowed_redirect(self, uri: str) -> bool:
        """Parsed and compared by scheme, host, port and path (see urls.py); never a pattern over the raw string."""
        return self._allowlist.allows(uri)

    def _allowed_client(self, client: OAuthClientInformationFull) -> bool:
        """Every redirect URI of a client is allowed now (a row stored under older rules may not be)."""
        uris = client.redirect_uris or []
        return bool(uris) and all(self._allowed_redirect(str(uri)) for uri in uris)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        row = await self.state.client(client_id)
        if row is not None and (row.get("_expires") is None or row["_expires"] > time.time()):
            row.pop("_expires", None)
            client = OAuthClientInformationFull.model_validate(row)
            return client if self._allowed_client(client) else None
        if metadata_document_url(client_id) is not None:
            return await self._fetch_metadata_document(client_id)
        return None

    async def _fetch_metadata_document(self, url: str) -> OAuthClientInformationFull | None:
        """A Client ID Metadata Document: the client_id is a URL serving the client's own metadata."""
        document = await fetch_metadata_document(url, transport=self._cimd_transport)
        if document is None or document.get("client_id") != url:
            return None
        redirects = document.get("redirect_uris") or []
        if not isinstance(redirects, list) or not redirects:
            return None
        if not all(isinstance(r, str) and self._allowed_redirect(r) for r in redirects):
            return None
        try:
            client = OAuthClientInformationFull(
                client_id=url,
                redirect_uris=redirects,
                client_name=document.get("client_name"),
                token_endpoint_auth_method="none",  # noqa: S106 - a method name
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                scope=document.get("scope"),
            )
        except ValidationError:
            return None
        if not self._allowed_client(client):  # the normalised form, which is what users are sent to, passes too
            return None
        data = client.model_dump(mode="json", exclude_none=True)
        expires = time.time() + CIMD_TTL
        await self.state.atomic(
            lambda conn: conn.execute(
                "INSERT INTO oauth_clients VALUES (?, ?, ?) ON CONFLICT (client_id) "
                "DO UPDATE SET data = excluded.data, expires = excluded.expires",
                (url, json.dumps({**data, "_expires": expires}), expires),
            )
        )
        return client

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self.state.purge_due()
        for uri in client_info.redirect_uris or []:
            if not self._allowed_redirect(str(uri)):
                raise RegistrationError(
                    "invalid_redirect_uri", f"Redirect URI {str(uri)[:200]} is not allowed by this server's allowlist."
                )
        if not client_info.redirect_uris:
            raise RegistrationError("invalid_redirect_uri", "Register at least one redirect URI.")
        data = client_info.model_dump(mode="json", exclude_none=True)
        await self.state.atomic(
            lambda conn: conn.execute(
                "INSERT INTO oauth_clients VALUES (?, ?, NULL) ON CONFLICT (client_id) "
                "DO UPDATE SET data = excluded.data",
                (client_info.client_id, json.dumps(data)),
            )
        )

    # -- authorization: our leg to IMS ---------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and params.resource.rstrip("/") != self.resource.rstrip("/"):
            raise AuthorizeError("invalid_target", f"This server only issues tokens for {self.resource}.")
        if not self._allowed_redirect(str(params.redirect_uri)):
            raise AuthorizeError("invalid_request", "The redirect URI is not allowed by this server.")
        await self.state.purge_due()
        verifier, challenge = pkce_pair()
        nonce = secrets.token_urlsafe(16)
        pending_id = secrets.token_urlsafe(32)
        pending = {
            "client_id": client.client_id,
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
            "code_challenge": params.code_challenge,
            "state": params.state,
            "scopes": params.scopes or [],
            "verifier": verifier,
            "nonce": nonce,
        }
        row = (digest(pending_id), self.state.seal(pending), time.time() + PENDING_TTL)
        await self.state.atomic(lambda conn: conn.execute("INSERT INTO oauth_pending VALUES (?, ?, ?)", row))
        return await self.ims.authorization_url(
            redirect_uri=self.callback_url, state=pending_id, challenge=challenge, nonce=nonce
        )

    async def callback(self, request: Request) -> Response:
        """IMS sends the user back here; finish sign-in and return to the MCP client with our code."""
        pending_id = request.query_params.get("state", "")
        row = await self.state.atomic(  # one use only, whichever replica gets the callback
            lambda conn: conn.execute(
                "DELETE FROM oauth_pending WHERE id = ? RETURNING data, expires", (digest(pending_id),)
            ).fetchone()
        )
        pending = self.state.unseal(row[0]) if row and row[1] > time.time() else None
        if pending is None:
            return HTMLResponse("<h1>Sign-in expired or unknown</h1><p>Start again from your MCP client.</p>", 400)
        if "error" in request.query_params:
            return _back(
                pending,
                {
                    "error": request.query_params.get("error", "access_denied"),
                    "error_description": "Sign-in at the identity provider did not complete.",
                },
            )
        try:
            reply = await self.ims.exchange_code(
                request.query_params.get("code", ""), pending["verifier"], self.callback_url
            )
            claims = await self.ims.verify_id_token(str(reply.get("id_token", "")), pending["nonce"])
        except AuthError as exc:
            return _back(pending, {"error": "access_denied", "error_description": str(exc)})
        subject = f"{claims['iss']}|{claims['sub']}"
        tokens = ImsTokens.from_reply(reply)
        code = secrets.token_urlsafe(32)
        data = {
            key: pending[key]
            for key in ("client_id", "redirect_uri", "redirect_uri_provided_explicitly", "code_challenge", "scopes")
        }
        data.update(subject=subject, email=claims.get("email"))
        sealed = self.state.seal(tokens.to_dict())

        def store(conn: StateConnection) -> None:
            conn.execute(
                "INSERT INTO upstream_tokens VALUES (?, ?, ?) ON CONFLICT (subject) "
                "DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated",
                (subject, sealed, time.time()),
            )
            conn.execute(
                "INSERT INTO oauth_codes VALUES (?, ?, ?, 0)", (digest(code), json.dumps(data), time.time() + CODE_TTL)
            )

        await self.state.atomic(store)
        return _back(pending, {"code": code})

    # -- codes and tokens ----------------------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        conn_row = await self.state.one(
            "SELECT data, expires, used FROM oauth_codes WHERE code_hash = ?", (digest(authorization_code),)
        )
        if conn_row is None:
            return None
        data = json.loads(conn_row[0])
        if conn_row[2]:  # a reused code: refuse it and revoke what it produced (RFC 6749 §4.1.2)
            await self._revoke_family(digest(authorization_code))
            return None
        if conn_row[1] < time.time() or data["client_id"] != client.client_id:
            return None
        return AuthorizationCode(
            code=authorization_code,
            scopes=data["scopes"],
            expires_at=conn_row[1],
            client_id=data["client_id"],
            code_challenge=data["code_challenge"],
            redirect_uri=AnyUrl(data["redirect_uri"]),
            redirect_uri_provided_explicitly=data["redirect_uri_provided_explicitly"],
            resource=self.resource,
            subject=data["subject"],
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        code_hash = digest(authorization_code.code)

        def exchange(conn: StateConnection) -> OAuthToken:
            used = conn.execute("UPDATE oauth_codes SET used = 1 WHERE code_hash = ? AND used = 0", (code_hash,))
            if used.rowcount != 1:
                raise TokenError("invalid_grant", "The authorization code was already used.")
            return self._issue(
                conn, client.client_id, authorization_code.scopes, str(authorization_code.subject), family=code_hash
            )

        return await self.state.atomic(exchange)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        row = await self.state.one(
            "SELECT data, expires, revoked, family FROM oauth_refresh WHERE token_hash = ?", (digest(refresh_token),)
        )
        if row is None:
            return None
        if row[2]:  # a rotated-out refresh token came back: assume theft, end the whole family
            await self._revoke_family(row[3])
            return None
        data = json.loads(row[0])
        if row[1] < time.time() or data["client_id"] != client.client_id:
            return None
        return RefreshToken(
            token=refresh_token,
            client_id=data["client_id"],
            scopes=data["scopes"],
            expires_at=int(row[1]),
            resource=self.resource,
            subject=data["subject"],
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        def rotate(conn: StateConnection) -> OAuthToken:
            row = conn.execute(  # atomic: of two concurrent uses (on any replicas) exactly one wins
                "UPDATE oauth_refresh SET revoked = 1 WHERE token_hash = ? AND revoked = 0 RETURNING family",
                (digest(refresh_token.token),),
            ).fetchone()
            if row is None:
                raise TokenError("invalid_grant", "The refresh token is no longer valid.")
            return self._issue(
                conn, client.client_id, scopes or refresh_token.scopes, str(refresh_token.subject), family=row[0]
            )

        return await self.state.atomic(rotate)

    def _issue(
        self, conn: StateConnection, client_id: str, scopes: list[str], subject: str, *, family: str
    ) -> OAuthToken:
        now = int(time.time())
        jti = uuid.uuid4().hex
        access = jwt.encode(
            {
                "iss": self.issuer,
                "aud": self.resource,
                "sub": subject,
                "client_id": client_id,
                "scope": " ".join(scopes),
                "iat": now,
                "exp": now + ACCESS_TTL,
                "jti": jti,
                "fam": family,
            },
            self._key,
            algorithm="HS256",
        )
        refresh = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO oauth_refresh VALUES (?, ?, ?, ?, 0)",
            (
                digest(refresh),
                family,
                json.dumps({"client_id": client_id, "scopes": scopes, "subject": subject}),
                now + REFRESH_TTL,
            ),
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",  # noqa: S106 - the type name
            expires_in=ACCESS_TTL,
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        """A JWT of ours: signature, issuer, audience (this server's resource) and expiry, and not revoked."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        revoked = await self.state.one(
            "SELECT 1 FROM oauth_revoked WHERE jti = ? OR family = ?", (claims["jti"], claims.get("fam"))
        )
        if revoked:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims["client_id"]),
            scopes=str(claims["scope"]).split(),
            expires_at=int(claims["exp"]),
            resource=self.resource,
            subject=str(claims["sub"]),
            claims={"iss": claims["iss"]},
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            hashed = digest(token.token)
            await self.state.atomic(
                lambda conn: conn.execute("UPDATE oauth_refresh SET revoked = 1 WHERE token_hash = ?", (hashed,))
            )
            return
        claims = unverified_claims(token.token)  # already verified by load_access_token
        revoked = (claims["jti"], float(claims["exp"]))
        await self.state.atomic(
            lambda conn: conn.execute(
                "INSERT INTO oauth_revoked VALUES (?, NULL, ?) ON CONFLICT (jti) DO NOTHING", revoked
            )
        )

    async def _revoke_family(self, family: str) -> None:
        def revoke(conn: StateConnection) -> None:
            conn.execute("UPDATE oauth_refresh SET revoked = 1 WHERE family = ?", (family,))
            conn.execute(
                "INSERT INTO oauth_revoked VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
                (f"family:{family}", family, time.time() + ACCESS_TTL),
            )

        await self.state.atomic(revoke)

    async def exchange_identity_assertion(self, *args: Any, **kwargs: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "Identity assertions are not accepted by this server.")


def _back(pending: dict[str, Any], values: dict[str, str]) -> Response:
    """Redirect to the MCP client's redirect URI with our code (or the error) and its own state."""
    query = dict(values)
    if pending.get("state"):
        query["state"] = pending["state"]
    target = pending["redirect_uri"]
    separator = "&" if urlparse(target).query else "?"
    return RedirectResponse(f"{target}{separator}{urlencode(query)}", status_code=302)


class UserTokenProvider:
    """One user's IMS access token, from the shared state, refreshed there (one refresh per user at a time).

    A provider lives for one MCP request. After a 401 from Bentley, `invalidate` marks the token it served as
    rejected (in memory, no I/O), and the next `get_token` refreshes unless another call has already stored a
    different token.
    """

    can_refresh = True
    # One lock per user while a refresh is in flight; weak values: a lock no call holds is dropped, so the map holds
    # only the users being refreshed right now, never every user ever seen.
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __init__(self, state: SharedState, ims: IdentityProvider, subject: str) -> None:
        self._state = state
        self._ims = ims
        self._subject = subject
        self._served: str | None = None
        self._rejected: str | None = None

    async def _load(self) -> ImsTokens | None:
        row = await self._state.one("SELECT sealed FROM upstream_tokens WHERE subject = ?", (self._subject,))
        data = self._state.unseal(row[0]) if row else None
        return ImsTokens(**data) if data else None

    def _usable(self, tokens: ImsTokens | None) -> str | None:
        """The access token when it is neither expiring nor the one Bentley refused."""
        if tokens is None or tokens.access_token == self._rejected:
            return None
        return tokens.access_token if tokens.expires_at - REFRESH_MARGIN > time.time() else None

    async def get_token(self) -> str:
        self._served = await self._current()
        return self._served

    async def _current(self) -> str:
        tokens = await self._load()
        if tokens is None:
            raise AuthError("Your Bentley sign-in is gone from this server; sign in again from your MCP client.")
        if usable := self._usable(tokens):
            return usable
        lock = self._locks.get(self._subject)
        if lock is None:
            lock = self._locks[self._subject] = asyncio.Lock()
        async with lock:
            tokens = await self._load()  # another call (or replica) may have refreshed meanwhile
            if usable := self._usable(tokens):
                return usable
            if tokens is None or not tokens.refresh_token:
                raise AuthError("Your Bentley sign-in expired; sign in again from your MCP client.")
            try:
                reply = await self._ims.refresh(tokens.refresh_token)
            except AuthError:
                # Another replica may have rotated the refresh token a moment ago: use what it stored.
                if usable := self._usable(await self._load()):
                    return usable
                raise
            fresh = ImsTokens.from_reply(reply, tokens.refresh_token)
            row = (self._state.seal(fresh.to_dict()), time.time(), self._subject)
            await self._state.atomic(
                lambda conn: conn.execute("UPDATE upstream_tokens SET sealed = ?, updated = ? WHERE subject = ?", row)
            )
            return fresh.access_token

    def invalidate(self) -> None:
        """Bentley refused the token served last: the next `get_token` replaces it."""
        self._rejected = self._served
