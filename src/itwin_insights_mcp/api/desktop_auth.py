"""Desktop sign-in: the OAuth 2.0 authorization code flow with PKCE against IMS, for a native (Desktop/Mobile) app.

`login()` discovers the authority (`{ITWIN_AUTHORITY}/.well-known/openid-configuration`), opens the browser at the
authorization endpoint with a PKCE S256 challenge, a random `state` and `nonce`, and a loopback redirect
(`http://127.0.0.1:{port}/callback` by default) served by a one-shot local HTTP server. The code is exchanged for
tokens (public client: no secret), and only the refresh token is kept, in a `TokenStore`:

* `KeyringStore`: the OS keyring (Windows Credential Manager, macOS Keychain, Secret Service) through the `keyring`
  package, when it is installed and has a usable backend;
* `FileStore`: a JSON file `credentials.json` in the user config dir, created and rewritten with mode 0600.

`default_store()` picks the keyring when usable, else the file. The environment variable
`ITWIN_INSIGHTS_TOKEN_STORE` forces one: `keyring`, `file`, or `auto` (the default).

`RefreshTokenProvider` is the `TokenProvider` that `serve` uses afterwards: it turns the stored refresh token into
access tokens (one refresh in flight at a time), and saves the refresh token again when IMS rotates it.
`logout()` revokes the refresh token (RFC 7009) when IMS advertises a revocation endpoint and deletes it locally
either way; `whoami()` reports who is signed in, the scopes and the expiry, never a token.

Tokens live in memory, in the keyring, or in 0600 files only; they never appear in logs, errors or return values.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx2
from platformdirs import user_config_dir

from ..errors import AuthError, ConfigError
from .auth import CachedTokenProvider

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

APP_NAME = "itwin-insights-mcp"
DEFAULT_DESKTOP_SCOPES = "itwin-platform offline_access"
TOKEN_STORE_ENV = "ITWIN_INSIGHTS_TOKEN_STORE"  # noqa: S105  # a variable name, not a secret
LOGIN_HINT = "Run `itwin-insights-mcp login` to sign in."
DEFAULT_REDIRECT_PATH = "/callback"
HTTP_TIMEOUT_SECONDS = 15.0
_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


# --------------------------------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class OidcConfig:
    """The endpoints of an OpenID provider, from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_secure(url: str, what: str) -> str:
    """IMS endpoints must be https; plain http is allowed only on the loopback interface (local test IdPs)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback_host(parts.hostname)):
        return url
    raise AuthError(f"The {what} {url!r} is not an https URL. Check ITWIN_AUTHORITY (e.g. https://ims.bentley.com).")


def _normalize_authority(authority: str) -> str:
    base = authority.strip().rstrip("/")
    if not base:
        raise AuthError("No sign-in authority is configured. Set ITWIN_AUTHORITY (e.g. https://ims.bentley.com).")
    return _check_secure(base, "authority")


async def discover(authority: str, transport: httpx2.AsyncBaseTransport | None = None) -> OidcConfig:
    """Read `{authority}/.well-known/openid-configuration`; AuthError (with what to check) when that fails."""
    base = _normalize_authority(authority)
    url = f"{base}/.well-known/openid-configuration"
    try:
        async with httpx2.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
            resp = await http.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise AuthError(
            f"Could not reach the sign-in authority at {url} ({type(exc).__name__}). "
            "Check your network connection and ITWIN_AUTHORITY."
        ) from None
    if resp.status_code != 200:
        raise AuthError(
            f"OpenID discovery at {url} answered HTTP {resp.status_code}. Check ITWIN_AUTHORITY "
            "(it should be the IMS base URL, e.g. https://ims.bentley.com)."
        )
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise AuthError(f"OpenID discovery at {url} did not return a JSON object. Check ITWIN_AUTHORITY.")

    def endpoint(name: str, required: bool) -> str | None:
        value = doc.get(name)
        if isinstance(value, str) and value:
            return _check_secure(value, name.replace("_", " "))
        if required:
            raise AuthError(f"OpenID discovery at {url} does not advertise a {name}. Check ITWIN_AUTHORITY.")
        return None

    issuer = str(doc.get("issuer") or base)
    if issuer.rstrip("/") != base:
        log.warning("OpenID issuer %s differs from the configured authority %s.", issuer, base)
    authorization = endpoint("authorization_endpoint", True)
    token = endpoint("token_endpoint", True)
    assert authorization is not None and token is not None
    return OidcConfig(
        issuer=issuer,
        authorization_endpoint=authorization,
        token_endpoint=token,
        revocation_endpoint=endpoint("revocation_endpoint", False),
        userinfo_endpoint=endpoint("userinfo_endpoint", False),
    )


# ------------------------------------------------------------------------------------------------- token store


@dataclass(frozen=True)
class StoredLogin:
    """What a sign-in leaves behind. Only `refresh_token` is secret; it is kept out of `repr`."""

    authority: str
    client_id: str
    refresh_token: str = field(repr=False)
    scope: str = ""
    subject: str | None = None
    email: str | None = None
    name: str | None = None
    signed_in_at: float | None = None  # epoch seconds
    expires_at: float | None = None  # refresh token expiry (epoch seconds), when the IdP said

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": self.authority,
            "client_id": self.client_id,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
            "signed_in_at": self.signed_in_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: object) -> StoredLogin | None:
        """The record, or None when `data` is not a well-formed one."""
        if not isinstance(data, dict):
            return None
        authority, client_id, token = data.get("authority"), data.get("client_id"), data.get("refresh_token")
        if not (isinstance(authority, str) and isinstance(client_id, str) and isinstance(token, str) and token):
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            authority=authority,
            client_id=client_id,
            refresh_token=token,
            scope=text("scope") or "",
            subject=text("subject"),
            email=text("email"),
            name=text("name"),
            signed_in_at=number("signed_in_at"),
            expires_at=number("expires_at"),
        )


def _key(authority: str, client_id: str) -> str:
    return f"{authority.rstrip('/')}|{client_id}"


class TokenStore(Protocol):
    """Where the refresh token of a sign-in is kept, keyed by (authority, client_id).

    `client_id=None` in `load`/`delete` means "the most recent sign-in at this authority".
    """

    kind: str

    @property
    def location(self) -> str:
        """Where the store keeps its data, for display (never the data)."""

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None: ...

    def save(self, login: StoredLogin) -> None: ...

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        """Remove the sign-in; True when there was one."""


def default_credentials_path() -> Path:
    """`credentials.json` in the user config dir (e.g. ~/.config/itwin-insights-mcp on Linux)."""
    return Path(user_config_dir(APP_NAME, appauthor=False)) / "credentials.json"


class FileStore:
    """A JSON file readable by its owner only (0600), rewritten atomically; loose permissions are tightened on read.

    On Windows, POSIX modes do not apply; the file lives in the user's own profile directory.
    """

    kind = "file"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_credentials_path()

    @property
    def location(self) -> str:
        return str(self.path)

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None:
        data = self._read()
        authority = authority.rstrip("/")
        logins = data.get("logins", {})
        if client_id is None:
            client_id = data.get("current", {}).get(authority)
        if client_id is None:
            candidates = [v for v in logins.values() if isinstance(v, dict) and v.get("authority") == authority]
            return StoredLogin.from_json(candidates[0]) if len(candidates) == 1 else None
        return StoredLogin.from_json(logins.get(_key(authority, client_id)))

    def save(self, login: StoredLogin) -> None:
        data = self._read()
        authority = login.authority.rstrip("/")
        data.setdefault("logins", {})[_key(authority, login.client_id)] = login.to_json()
        data.setdefault("current", {})[authority] = login.client_id
        self._write(data)

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        data = self._read()
        authority = authority.rstrip("/")
        current = data.get("current", {})
        if client_id is None:
            client_id = current.get(authority)
            if client_id is None:
                found = self.load(authority)
                client_id = found.client_id if found else None
        if client_id is None or _key(authority, client_id) not in data.get("logins", {}):
            return False
        del data["logins"][_key(authority, client_id)]
        if current.get(authority) == client_id:
            del current[authority]
        if data["logins"]:
            self._write(data)
        else:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise AuthError(f"Could not delete the credentials file {self.path} ({exc.strerror}).") from None
        return True

    # The file: {"version": 1, "logins": {"<authority>|<client_id>": {...}}, "current": {"<authority>": "<id>"}}

    def _read(self) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except FileNotFoundError:
            return {"version": 1, "logins": {}, "current": {}}
        except OSError as exc:
            raise AuthError(
                f"Could not read the credentials file {self.path} ({exc.strerror}). Delete it and run "
                "`itwin-insights-mcp login` again."
            ) from None
        with os.fdopen(fd, "rb") as fh:
            self._tighten(fh.fileno())
            raw = fh.read()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("logins"), dict):
            log.warning("The credentials file %s is not readable JSON; treating it as empty.", self.path)
            return {"version": 1, "logins": {}, "current": {}}
        if not isinstance(data.get("current"), dict):
            data["current"] = {}
        return data

    def _tighten(self, fd: int) -> None:
        if os.name != "posix":
            return
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise AuthError(
                f"The credentials file {self.path} belongs to another user; it was not used. Delete it and run "
                "`itwin-insights-mcp login` again."
            )
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning(
                "The credentials file %s was readable by others (mode %o); tightened it to 600.",
                self.path,
                st.st_mode & 0o777,
            )

    def _write(self, data: dict[str, Any]) -> None:
        data["version"] = 1
        payload = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    if hasattr(os, "fchmod"):
                        os.fchmod(fh.fileno(), 0o600)  # exactly 0600 whatever the umask
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise AuthError(f"Could not write the credentials file {self.path} ({exc.strerror}).") from None


class _KeyringBackend(Protocol):
    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


def keyring_available() -> bool:
    """True when the `keyring` package is installed and its backend can store secrets (not the `fail`/`null` one)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return False
        priority = float(backend.priority)
    except Exception:  # ImportError, NoKeyringError, a backend that fails to initialise: no keyring
        return False
    return priority > 0


class KeyringStore:
    """The OS keyring via `keyring`: service `itwin-insights-mcp`, one entry per (authority, client_id)."""

    kind = "keyring"
    SERVICE = APP_NAME

    def __init__(self, backend: _KeyringBackend | None = None) -> None:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        self._backend = backend

    @property
    def location(self) -> str:
        name = type(self._backend).__module__.removeprefix("keyring.backends.")
        return f"OS keyring ({name}), service '{self.SERVICE}'"

    def _call(self, action: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise AuthError(
                f"The OS keyring could not {action} the sign-in ({type(exc).__name__}). Unlock the keyring, or set "
                f"{TOKEN_STORE_ENV}=file to keep it in a 0600 file instead."
            ) from None

    def _current(self, authority: str) -> str:
        return f"current|{authority}"

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None:
        authority = authority.rstrip("/")
        if client_id is None:
            client_id = self._call("read", lambda: self._backend.get_password(self.SERVICE, self._current(authority)))
            if not client_id:
                return None
        raw = self._call("read", lambda: self._backend.get_password(self.SERVICE, _key(authority, str(client_id))))
        if not raw:
            return None
        try:
            return StoredLogin.from_json(json.loads(raw))
        except ValueError:
            return None

    def save(self, login: StoredLogin) -> None:
        authority = login.authority.rstrip("/")
        record = json.dumps(login.to_json(), separators=(",", ":"))
        self._call("save", lambda: self._backend.set_password(self.SERVICE, _key(authority, login.client_id), record))
        self._call("save", lambda: self._backend.set_password(self.SERVICE, self._current(authority), login.client_id))

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        authority = authority.rstrip("/")
        current = self._call("read", lambda: self._backend.get_password(self.SERVICE, self._current(authority)))
        client_id = client_id or current
        if not client_id:
            return False
        found = self.load(authority, client_id) is not None
        if found:
            self._delete_entry(_key(authority, client_id))
        if current == client_id:
            self._delete_entry(self._current(authority))
        return found

    def _delete_entry(self, username: str) -> None:
        try:
            if self._backend.get_password(self.SERVICE, username) is not None:
                self._backend.delete_password(self.SERVICE, username)
        except Exception as exc:
            raise AuthError(
                f"The OS keyring could not delete the sign-in ({type(exc).__name__}). Remove the "
                f"'{self.SERVICE}' entries with your keyring manager."
            ) from None


def default_store(choice: str | None = None, environ: Mapping[str, str] | None = None) -> TokenStore:
    """The keyring when usable, else the 0600 file.

    `choice` (`auto`, `keyring` or `file`; e.g. from a setting) wins; without it `ITWIN_INSIGHTS_TOKEN_STORE` decides.
    """
    if not choice:
        env = os.environ if environ is None else environ
        choice = env.get(TOKEN_STORE_ENV, "")
    choice = choice.strip().lower() or "auto"
    if choice == "file":
        return FileStore()
    if choice == "keyring":
        if not keyring_available():
            raise ConfigError(
                f"{TOKEN_STORE_ENV}=keyring, but no usable OS keyring was found (is the `keyring` package installed "
                f"and a keyring service running?). Set {TOKEN_STORE_ENV}=file to use a 0600 file instead."
            )
        return KeyringStore()
    if choice != "auto":
        raise ConfigError(f"{TOKEN_STORE_ENV} must be auto, keyring or file, not {choice!r}.")
    if keyring_available():
        return KeyringStore()
    log.debug("No usable OS keyring; sign-ins are kept in %s.", default_credentials_path())
    return FileStore()


def has_stored_login(authority: str, client_id: str | None = None, store: TokenStore | None = None) -> bool:
    """True when a sign-in is stored for this authority (and client id); never raises."""
    try:
        chosen = store if store is not None else default_store()
        return chosen.load(authority, client_id) is not None
    except (AuthError, ConfigError):
        return False


# ------------------------------------------------------------------------------------------------------ helpers


def desktop_scopes(scopes: str | None) -> str:
    """The scopes to request: the given ones (default `itwin-platform`) plus `offline_access` for a refresh token."""
    items = (scopes or "").split() or DEFAULT_DESKTOP_SCOPES.split()
    if "offline_access" not in items:
        items.append("offline_access")
    return " ".join(dict.fromkeys(items))


def _unverified_claims(jwt: str | None) -> dict[str, Any]:
    """The payload of a JWT without checking its signature: for display (who signed in) only, never for trust."""
    if not jwt or jwt.count(".") != 2:
        return {}
    payload = jwt.split(".")[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _identity(claims: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
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


def _error_code(body: Mapping[str, Any]) -> str:
    """The OAuth `error` of a response, reduced to safe characters (descriptions are not echoed)."""
    value = body.get("error")
    if not isinstance(value, str):
        return "no error code"
    return re.sub(r"[^A-Za-z0-9_.-]", "", value)[:64] or "no error code"


def _expires_at(body: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return time.time() + float(value)
    return None


async def _token_request(
    endpoint: str, form: str, transport: httpx2.AsyncBaseTransport | None
) -> tuple[int, dict[str, Any]]:
    try:
        async with httpx2.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
            resp = await http.post(endpoint, content=form, headers=_FORM)
    except httpx2.HTTPError as exc:
        raise AuthError(
            f"Could not reach the token endpoint {endpoint} ({type(exc).__name__}). Check your network connection."
        ) from None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return resp.status_code, body if isinstance(body, dict) else {}


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


# -------------------------------------------------------------------------------------------- loopback redirect


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>iTwin Insights MCP</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3em;"><h1>{title}</h1><p>{text}</p></body></html>"""


class _LoopbackReceiver:
    """A one-shot HTTP server on the loopback interface that waits for the authorization response.

    Each connection is handled on its own (browsers open speculative connections that never send a request).
    The first request to the redirect path decides the outcome; anything else gets a 404.
    """

    def __init__(self, *, bind_hosts: tuple[str, ...], port: int, path: str, state: str, issuer: str) -> None:
        self._bind_hosts = bind_hosts
        self._issuer = issuer.rstrip("/")
        self._writers: set[asyncio.StreamWriter] = set()
        self._requested_port = port
        self._path = path
        self._state = state
        self._servers: list[asyncio.Server] = []
        self._outcome: asyncio.Future[str] | None = None
        self.port = port

    async def start(self) -> None:
        self._outcome = asyncio.get_running_loop().create_future()
        first, *others = self._bind_hosts
        try:
            server = await asyncio.start_server(self._handle, host=first, port=self._requested_port)
        except OSError as exc:
            raise AuthError(
                f"Could not listen for the sign-in redirect on {first}:{self._requested_port} ({exc.strerror}). "
                "Close whatever uses that port, or pass --port with another port registered for the app."
            ) from None
        self._servers.append(server)
        self.port = int(server.sockets[0].getsockname()[1])
        for host in others:  # best effort ("localhost" may resolve to ::1 in the browser)
            with contextlib.suppress(OSError):
                self._servers.append(await asyncio.start_server(self._handle, host=host, port=self.port))

    async def wait(self, seconds: float) -> str:
        assert self._outcome is not None
        return await asyncio.wait_for(asyncio.shield(self._outcome), seconds)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):  # idle speculative connections; pending answers are flushed first
            writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        if self._outcome is not None and not self._outcome.done():
            self._outcome.cancel()

    def _decide(self, query: str) -> tuple[int, str, str]:
        assert self._outcome is not None
        if self._outcome.done():
            return 409, "Already handled", "This sign-in attempt has already finished. Return to the terminal."
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        state, code, error = params.get("state", ""), params.get("code"), params.get("error")
        issuer = params.get("iss")  # RFC 9207: when the IdP names itself, it must be the one we asked
        if not secrets.compare_digest(state.encode(), self._state.encode()) or (
            issuer is not None and issuer.rstrip("/") != self._issuer
        ):
            self._outcome.set_exception(
                AuthError(
                    "The sign-in response did not belong to this login attempt (state mismatch) and was rejected. "
                    "Run `itwin-insights-mcp login` again and finish sign-in in the browser tab it opens."
                )
            )
            return 400, "Sign-in rejected", "The response did not match this login attempt. Return to the terminal."
        if error:
            code_text = re.sub(r"[^A-Za-z0-9_.-]", "", error)[:64]
            description = re.sub(r"[^\w .,:;'()/-]", "", params.get("error_description", ""))[:200]
            detail = f" ({description})" if description else ""
            if code_text == "access_denied":
                message = (
                    f"Sign-in was cancelled or consent was denied (access_denied){detail}. Run `itwin-insights-mcp "
                    "login` again and accept the requested permissions."
                )
            else:
                message = (
                    f"The sign-in page returned the error {code_text}{detail}. Check that the client id is a "
                    "Desktop/Mobile (native) app whose redirect URI and scopes match, then run "
                    "`itwin-insights-mcp login` again."
                )
            self._outcome.set_exception(AuthError(message))
            return 400, "Sign-in failed", f"{code_text}{detail}. Return to the terminal for what to do next."
        if not code:
            self._outcome.set_exception(
                AuthError("The sign-in response had no authorization code. Run `itwin-insights-mcp login` again.")
            )
            return 400, "Sign-in failed", "No authorization code was received. Return to the terminal."
        self._outcome.set_result(code)
        return 200, "Signed in", "You are signed in to iTwin Insights MCP. You can close this window."

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request_line = await asyncio.wait_for(reader.readline(), 30)
            for _ in range(100):  # headers, ignored
                line = await asyncio.wait_for(reader.readline(), 30)
                if line in (b"\r\n", b"\n", b""):
                    break
            method, target, *_ = request_line.decode("latin-1").split()
            parts = urlsplit(target)
            if method == "GET" and parts.path == self._path:
                status, title, text = self._decide(parts.query)
            else:
                status, title, text = 404, "Not found", "Nothing here."
            body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}[status]
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, UnicodeError):
            pass  # an idle or malformed connection: drop it
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _redirect_parts(redirect_uri: str | None, port: int) -> tuple[str, str, int]:
    """(host as written in the URI, path, port) of the loopback redirect."""
    if redirect_uri is None:
        return "127.0.0.1", DEFAULT_REDIRECT_PATH, port
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or not _is_loopback_host(parts.hostname):
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
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    if not client_id:
        raise ConfigError("Signing in needs the client id of a Desktop/Mobile (native) app registered with Bentley.")
    base = _normalize_authority(authority)
    scope = desktop_scopes(scopes)
    chosen_store = store if store is not None else default_store()
    config = await discover(base, transport)

    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-] (RFC 7636: 43 to 128)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    uri_host, path, bind_port = _redirect_parts(redirect_uri, port)
    bind_hosts = ("127.0.0.1", "::1") if uri_host.lower() == "localhost" else (uri_host.strip("[]"),)
    receiver = _LoopbackReceiver(bind_hosts=bind_hosts, port=bind_port, path=path, state=state, issuer=config.issuer)
    await receiver.start()
    try:
        shown_host = f"[{uri_host.strip('[]')}]" if ":" in uri_host else uri_host
        redirect = f"http://{shown_host}:{receiver.port}{path}"
        url = prepare_grant_uri(
            config.authorization_endpoint,
            client_id,
            "code",
            redirect_uri=redirect,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
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

    form = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect, client_id=client_id, code_verifier=verifier
    )
    status, body = await _token_request(config.token_endpoint, form, transport)
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if status != 200 or not isinstance(access, str) or not access:
        raise AuthError(
            f"The token endpoint {config.token_endpoint} refused the sign-in (HTTP {status}, {_error_code(body)}). "
            f"Check that {client_id} is a Desktop/Mobile (native) app, that {redirect} is one of its redirect URIs "
            f"and that it may request '{scope}'; then run `itwin-insights-mcp login` again."
        )
    if not isinstance(refresh, str) or not refresh:
        raise AuthError(
            "IMS signed you in but returned no refresh token, so the sign-in cannot be kept. Make sure the app may "
            "request the offline_access scope, then run `itwin-insights-mcp login` again."
        )

    id_claims = _unverified_claims(body.get("id_token") if isinstance(body.get("id_token"), str) else None)
    if id_claims.get("nonce") not in (None, nonce):
        raise AuthError("The sign-in response failed the nonce check and was rejected. Run `itwin-insights-mcp login`.")
    subject, email, name = _identity(id_claims or _unverified_claims(access))
    if subject is None and email is None and config.userinfo_endpoint:
        subject, email, name = await _userinfo(config.userinfo_endpoint, access, transport)

    granted = str(body.get("scope") or scope)
    now = time.time()
    expires_in = body.get("expires_in")
    record = StoredLogin(
        authority=base,
        client_id=client_id,
        refresh_token=refresh,
        scope=granted,
        subject=subject,
        email=email,
        name=name,
        signed_in_at=now,
        expires_at=_expires_at(body, "refresh_expires_in", "refresh_token_expires_in"),
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
        access_token_expires_at=now + float(expires_in) if isinstance(expires_in, int | float) else None,
        refresh_token_expires_at=record.expires_at,
        store=chosen_store.kind,
        location=chosen_store.location,
    )


async def _userinfo(
    endpoint: str, access: str, transport: httpx2.AsyncBaseTransport | None
) -> tuple[str | None, str | None, str | None]:
    """Who the token belongs to, from the userinfo endpoint (display only; failures are not errors)."""
    try:
        async with httpx2.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
            resp = await http.get(endpoint, headers={"Authorization": f"Bearer {access}"})
        body = resp.json() if resp.status_code == 200 else {}
    except (httpx2.HTTPError, ValueError) as exc:
        log.debug("userinfo failed (%s); the sign-in is kept without a display name.", type(exc).__name__)
        return None, None, None
    return _identity(body) if isinstance(body, dict) else (None, None, None)


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
        self._config: OidcConfig | None = None

    def _not_signed_in(self, why: str) -> AuthError:
        return AuthError(f"Not signed in to {self._authority}: {why}. {LOGIN_HINT}")

    async def _load(self) -> StoredLogin | None:
        if self._store is None:
            self._store = default_store()
        return await asyncio.to_thread(self._store.load, self._authority, self._client_id)

    async def _refresh(self) -> None:
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        record = self._record or await self._load()
        if record is None:
            raise self._not_signed_in("no stored sign-in was found")
        if self._config is None:
            self._config = await discover(self._authority, self._transport)
        endpoint = self._config.token_endpoint
        for attempt in (1, 2):
            form = prepare_token_request(
                "refresh_token", refresh_token=record.refresh_token, client_id=record.client_id
            )
            status, body = await _token_request(endpoint, form, self._transport)
            access = body.get("access_token")
            if status == 200 and isinstance(access, str) and access:
                break
            if status >= 500 or status == 429:
                raise AuthError(f"The token endpoint {endpoint} failed (HTTP {status}); try again shortly.")
            latest = await self._load() if attempt == 1 else None
            if latest is not None and latest.refresh_token != record.refresh_token:
                record = latest  # rotated by another process since we read it
                continue
            self._record = None
            raise self._not_signed_in(
                f"the stored sign-in was refused (HTTP {status}, {_error_code(body)}); it expired or was revoked"
            )
        assert isinstance(access, str)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != record.refresh_token:
            record = replace(
                record,
                refresh_token=rotated,
                scope=str(body.get("scope") or record.scope),
                expires_at=_expires_at(body, "refresh_expires_in", "refresh_token_expires_in") or record.expires_at,
            )
            try:
                assert self._store is not None
                await asyncio.to_thread(self._store.save, record)
            except AuthError as exc:  # keep serving with the in-memory token; the next run will need a login
                log.warning("Could not save the renewed sign-in: %s", exc)
        self._record = record
        self._token = access
        expires_in = body.get("expires_in", 3600)
        self._expires_at = self._clock() + (float(expires_in) if isinstance(expires_in, int | float) else 3600.0)
        self.refresh_count += 1
        log.info("Obtained a user token from %s (valid %ss).", self._authority, expires_in)


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
    from authlib.common.urls import add_params_to_qs
    from authlib.oauth2.rfc7009.parameters import prepare_revoke_token_request

    base = _normalize_authority(authority)
    chosen = store if store is not None else default_store()
    record = await asyncio.to_thread(chosen.load, base, client_id)
    if record is None:
        return LogoutResult(False, False, "No stored sign-in was found.", chosen.kind, chosen.location)
    revoked, note = False, None
    try:
        config = await discover(base, transport)
        if config.revocation_endpoint is None:
            note = "IMS does not advertise token revocation; the sign-in was deleted locally and will expire."
        else:
            client_form = add_params_to_qs("", [("client_id", record.client_id)])
            form, headers = prepare_revoke_token_request(record.refresh_token, "refresh_token", body=client_form)
            async with httpx2.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS) as http:
                resp = await http.post(config.revocation_endpoint, content=form, headers=headers)
            revoked = resp.status_code == 200
            if not revoked:
                note = f"IMS did not revoke the sign-in (HTTP {resp.status_code}); it was deleted locally."
    except (AuthError, httpx2.HTTPError) as exc:
        reason = str(exc) if isinstance(exc, AuthError) else type(exc).__name__
        note = f"Could not revoke the sign-in at IMS ({reason}); it was deleted locally."
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
