"""Desktop sign-in: the OAuth 2.0 authorization code flow with PKCE against IMS, for a native (Desktop/Mobile) app.

`login()` opens the browser at the authorization endpoint (discovered from `{ITWIN_AUTHORITY}`) with a PKCE S256
challenge, a random `state` and `nonce`, and a loopback redirect (`http://127.0.0.1:{port}/callback` by default)
received by `loopback.RedirectReceiver`. The code is exchanged for tokens (public client: no secret), and only the
refresh token is kept, in a `credentials.TokenStore` (the OS keyring, or a 0600 file). Every call to IMS goes
through `signin.OidcClient`, the one OpenID Connect client of this package.

`RefreshTokenProvider` is the `TokenProvider` that `serve` uses afterwards: it turns the stored refresh token into
access tokens (one refresh in flight at a time), and saves the refresh token again when IMS rotates it.
`logout()` revokes the refresh token (RFC 7009) when IMS advertises a revocation endpoint and deletes it locally
either way; `whoami()` reports who is signed in, the scopes and the expiry, never a token.

Tokens live in memory, in the keyring, or in 0600 files only; they never appear in logs, errors or return values.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2

from ..errors import AuthError, ConfigError
from .auth import CachedTokenProvider
from .credentials import (
    TOKEN_STORE_ENV,
    FileStore,
    KeyringStore,
    StoredLogin,
    TokenStore,
    default_credentials_path,
    default_store,
    has_stored_login,
    keyring_available,
)
from .loopback import RedirectReceiver
from .signin import OidcClient, OidcConfig, discover, identity, normalize_authority, pkce_pair, unverified_claims
from .urls import is_loopback_host

__all__ = [
    "DEFAULT_DESKTOP_SCOPES",
    "LOGIN_HINT",
    "TOKEN_STORE_ENV",
    "FileStore",
    "KeyringStore",
    "LoginResult",
    "LogoutResult",
    "OidcConfig",
    "RefreshTokenProvider",
    "StoredLogin",
    "TokenStore",
    "default_credentials_path",
    "default_store",
    "desktop_scopes",
    "discover",
    "has_stored_login",
    "keyring_available",
    "login",
    "logout",
    "whoami",
]

log = logging.getLogger(__name__)

DEFAULT_DESKTOP_SCOPES = "itwin-platform offline_access"
LOGIN_HINT = "Run `itwin-insights-mcp login` to sign in."
DEFAULT_REDIRECT_PATH = "/callback"


# ------------------------------------------------------------------------------------------------------ helpers


def desktop_scopes(scopes: str | None) -> str:
    """The scopes to request: the given ones (default `itwin-platform`) plus `offline_access` for a refresh token."""
    items = (scopes or "").split() or DEFAULT_DESKTOP_SCOPES.split()
    if "offline_access" not in items:
        items.append("offline_access")
    return " ".join(dict.fromkeys(items))


def _after(seconds: float | None) -> float | None:
    """Epoch seconds `seconds` from now (None stays None)."""
    return None if seconds is None else time.time() + seconds


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _redirect_parts(redirect_uri: str | None, port: int) -> tuple[str, str, int]:
    """(host as written in the URI, path, port) of the loopback redirect."""
    if redirect_uri is None:
        return "127.0.0.1", DEFAULT_REDIRECT_PATH, port
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or not is_loopback_host(parts.hostname or ""):
        raise ConfigError(
            f"The redirect URI must be a loopback http URL such as http://localhost:3000/signin-callback, "
            f"not {redirect_uri!r}."
        )
    return parts.hostname or "127.0.0.1", parts.path or "/", parts.port or port


# ------------------------------------------------------------------------------------------------------- login


@dataclass(frozen=True)
class LoginResult:
    """Who signed in, with which scopes, until when, and where the sign-in is kept. Holds no token."""

    authority: str
    client_id: str
    subject: str | None
    email: str | None
    name: str | None
    scopes: tuple[str, ...]
    access_token_expires_at: float | None
    refresh_token_expires_at: float | None
    store: str
    location: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "authority": self.authority,
            "client_id": self.client_id,
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
            "scopes": list(self.scopes),
            "access_token_expires_at": _iso(self.access_token_expires_at),
            "refresh_token_expires_at": _iso(self.refresh_token_expires_at),
            "store": self.store,
            "location": self.location,
        }


def _open_in_background(open_browser: Callable[[str], object], url: str) -> None:
    """Call `open_browser` off the event loop, in a daemon thread (some browsers block until they exit)."""

    def run() -> None:
        try:
            opened = open_browser(url)
        except Exception as exc:
            log.warning("Could not open a browser (%s); open the sign-in URL yourself.", type(exc).__name__)
            return
        if opened is False:
            log.warning("No browser could be opened; open the sign-in URL yourself.")

    threading.Thread(target=run, name="itwin-insights-login-browser", daemon=True).start()


async def login(
    authority: str,
    client_id: str,
    scopes: str | None = DEFAULT_DESKTOP_SCOPES,
    *,
    open_browser: Callable[[str], object] = webbrowser.open,
    port: int = 0,
    redirect_uri: str | None = None,
    timeout: float = 300,  # noqa: ASYNC109  # one deadline for the whole browser round trip
    store: TokenStore | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> LoginResult:
    """Sign in in the browser (authorization code + PKCE S256, loopback redirect) and store the refresh token.

    `redirect_uri` (a loopback http URL, e.g. `http://localhost:3000/signin-callback`) overrides the default
    `http://127.0.0.1:{port}/callback`; IMS only accepts redirect URIs registered for the app, so pass the one
    registered (and a fixed port) when IMS does not accept any loopback port.
    """
    if not client_id:
        raise ConfigError("Signing in needs the client id of a Desktop/Mobile (native) app registered with Bentley.")
    base = normalize_authority(authority)
    scope = desktop_scopes(scopes)
    chosen_store = store if store is not None else default_store()
    oidc = OidcClient(base, client_id, transport=transport)
    config = await oidc.config()

    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    uri_host, path, bind_port = _redirect_parts(redirect_uri, port)
    bind_hosts = ("127.0.0.1", "::1") if uri_host.lower() == "localhost" else (uri_host.strip("[]"),)
    receiver = RedirectReceiver(bind_hosts=bind_hosts, port=bind_port, path=path, state=state, issuer=config.issuer)
    await receiver.start()
    try:
        shown_host = f"[{uri_host.strip('[]')}]" if ":" in uri_host else uri_host
        redirect = f"http://{shown_host}:{receiver.port}{path}"
        url = await oidc.authorization_url(
            redirect_uri=redirect, scope=scope, state=state, nonce=nonce, challenge=challenge
        )
        _open_in_background(open_browser, url)
        try:
            code = await receiver.wait(timeout)
        except TimeoutError:
            raise AuthError(
                f"No sign-in response arrived within {timeout:g} s. Run `itwin-insights-mcp login` again "
                "(with --no-browser it prints the URL to open yourself)."
            ) from None
    finally:
        await receiver.close()

    reply = await oidc.exchange_code(code, verifier, redirect)
    access, refresh = reply.access_token, reply.refresh_token
    if not reply.ok or access is None:
        raise AuthError(
            f"The token endpoint {config.token_endpoint} refused the sign-in (HTTP {reply.status}, "
            f"{reply.error_code}). Check that {client_id} is a Desktop/Mobile (native) app, that {redirect} is one "
            f"of its redirect URIs and that it may request '{scope}'; then run `itwin-insights-mcp login` again."
        )
    if refresh is None:
        raise AuthError(
            "IMS signed you in but returned no refresh token, so the sign-in cannot be kept. Make sure the app may "
            "request the offline_access scope, then run `itwin-insights-mcp login` again."
        )

    id_token = reply.body.get("id_token")
    id_claims = unverified_claims(id_token if isinstance(id_token, str) else None)
    if id_claims.get("nonce") not in (None, nonce):
        raise AuthError("The sign-in response failed the nonce check and was rejected. Run `itwin-insights-mcp login`.")
    subject, email, name = identity(id_claims or unverified_claims(access))
    if subject is None and email is None:
        subject, email, name = identity(await oidc.userinfo(access))

    granted = str(reply.body.get("scope") or scope)
    now = time.time()
    record = StoredLogin(
        authority=base,
        client_id=client_id,
        refresh_token=refresh,
        scope=granted,
        subject=subject,
        email=email,
        name=name,
        signed_in_at=now,
        expires_at=_after(reply.seconds("refresh_expires_in", "refresh_token_expires_in")),
    )
    await asyncio.to_thread(chosen_store.save, record)
    log.info("Signed in to %s as %s; sign-in kept in %s.", base, email or subject or "?", chosen_store.location)
    return LoginResult(
        authority=base,
        client_id=client_id,
        subject=subject,
        email=email,
        name=name,
        scopes=tuple(granted.split()),
        access_token_expires_at=_after(reply.seconds("expires_in")),
        refresh_token_expires_at=record.expires_at,
        store=chosen_store.kind,
        location=chosen_store.location,
    )


# ------------------------------------------------------------------------------------------ refresh provider


class RefreshTokenProvider(CachedTokenProvider):
    """Access tokens from the stored desktop sign-in; refreshed before expiry, one refresh at a time.

    When IMS rotates the refresh token, the new one is saved. When the stored one is refused, the store is read
    again once (another process may have rotated it) before giving up with the login hint.
    """

    def __init__(
        self,
        *,
        authority: str,
        client_id: str | None = None,
        store: TokenStore | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self._authority = authority.rstrip("/")
        self._client_id = client_id
        self._store = store
        self._transport = transport
        self._record: StoredLogin | None = None
        self._oidc: OidcClient | None = None

    def _not_signed_in(self, why: str) -> AuthError:
        return AuthError(f"Not signed in to {self._authority}: {why}. {LOGIN_HINT}")

    async def _load(self) -> StoredLogin | None:
        if self._store is None:
            self._store = default_store()
        return await asyncio.to_thread(self._store.load, self._authority, self._client_id)

    def _client(self, client_id: str) -> OidcClient:
        """The OIDC client of the stored sign-in's app (discovery is kept between refreshes)."""
        if self._oidc is None or self._oidc.client_id != client_id:
            self._oidc = OidcClient(self._authority, client_id, transport=self._transport)
        return self._oidc

    async def _refresh(self) -> None:
        record = self._record or await self._load()
        if record is None:
            raise self._not_signed_in("no stored sign-in was found")
        for attempt in (1, 2):
            oidc = self._client(record.client_id)
            reply = await oidc.refresh(record.refresh_token)
            if reply.ok:
                break
            if reply.status >= 500 or reply.status == 429:
                endpoint = (await oidc.config()).token_endpoint
                raise AuthError(f"The token endpoint {endpoint} failed (HTTP {reply.status}); try again shortly.")
            latest = await self._load() if attempt == 1 else None
            if latest is not None and latest.refresh_token != record.refresh_token:
                record = latest  # rotated by another process since we read it
                continue
            self._record = None
            raise self._not_signed_in(
                f"the stored sign-in was refused (HTTP {reply.status}, {reply.error_code}); it expired or was revoked"
            )
        access = reply.access_token
        assert access is not None
        rotated = reply.refresh_token
        if rotated is not None and rotated != record.refresh_token:
            record = replace(
                record,
                refresh_token=rotated,
                scope=str(reply.body.get("scope") or record.scope),
                expires_at=_after(reply.seconds("refresh_expires_in", "refresh_token_expires_in")) or record.expires_at,
            )
            try:
                assert self._store is not None
                await asyncio.to_thread(self._store.save, record)
            except AuthError as exc:  # keep serving with the in-memory token; the next run will need a login
                log.warning("Could not save the renewed sign-in: %s", exc)
        self._record = record
        self._token = access
        expires_in = reply.seconds("expires_in", default=3600.0)
        assert expires_in is not None
        self._expires_at = self._clock() + expires_in
        self.refresh_count += 1
        log.info("Obtained a user token from %s (valid %ss).", self._authority, f"{expires_in:g}")


# ------------------------------------------------------------------------------------------- logout and whoami


@dataclass(frozen=True)
class LogoutResult:
    """What `logout` did: whether a sign-in was found and deleted, and whether IMS revoked it."""

    signed_out: bool
    revoked: bool
    note: str | None
    store: str
    location: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "signed_out": self.signed_out,
            "revoked": self.revoked,
            "note": self.note,
            "store": self.store,
            "location": self.location,
        }


async def logout(
    authority: str,
    client_id: str | None = None,
    *,
    store: TokenStore | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> LogoutResult:
    """Revoke the stored refresh token at IMS (RFC 7009) if it advertises revocation, then delete it locally.

    The local copy is deleted even when revocation fails; `note` then says why it was not revoked.
    """
    base = normalize_authority(authority)
    chosen = store if store is not None else default_store()
    record = await asyncio.to_thread(chosen.load, base, client_id)
    if record is None:
        return LogoutResult(False, False, "No stored sign-in was found.", chosen.kind, chosen.location)
    revoked, note = False, None
    try:
        status = await OidcClient(base, record.client_id, transport=transport).revoke(
            record.refresh_token, "refresh_token"
        )
        if status is None:
            note = "IMS does not advertise token revocation; the sign-in was deleted locally and will expire."
        elif status == 200:
            revoked = True
        else:
            note = f"IMS did not revoke the sign-in (HTTP {status}); it was deleted locally."
    except AuthError as exc:
        note = f"Could not revoke the sign-in at IMS ({exc}); it was deleted locally."
    deleted = await asyncio.to_thread(chosen.delete, base, record.client_id)
    if note:
        log.warning("%s", note)
    return LogoutResult(deleted, revoked, note, chosen.kind, chosen.location)


def whoami(
    authority: str,
    client_id: str | None = None,
    *,
    store: TokenStore | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Who is signed in, the scopes and the refresh-token expiry (when known), and where the sign-in is kept.

    Offline: reads the store only. Never includes a token.
    """
    base = authority.strip().rstrip("/")
    chosen = store if store is not None else default_store()
    record = chosen.load(base, client_id)
    info: dict[str, Any] = {"authority": base, "store": chosen.kind, "location": chosen.location}
    if record is None:
        return {**info, "signed_in": False, "hint": LOGIN_HINT}
    expired = None if record.expires_at is None else record.expires_at <= now()
    return {
        **info,
        "signed_in": True,
        "client_id": record.client_id,
        "subject": record.subject,
        "email": record.email,
        "name": record.name,
        "scopes": record.scope.split(),
        "signed_in_at": _iso(record.signed_in_at),
        "refresh_token_expires_at": _iso(record.expires_at),
        "expired": expired,
    }
