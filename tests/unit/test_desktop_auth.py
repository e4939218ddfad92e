"""Desktop sign-in against a fake IMS: PKCE login over a real loopback redirect, stores, refresh, logout, whoami.

The IdP's discovery, token and revocation endpoints are an `httpx2.MockTransport`; the browser is a function that
checks the authorization URL and then really GETs the loopback redirect on 127.0.0.1 from a thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx2
import keyring
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from keyring.backend import KeyringBackend
from keyring.backends import fail

from itwin_insights_mcp.api import desktop_auth
from itwin_insights_mcp.api.desktop_auth import (
    FileStore,
    KeyringStore,
    RefreshTokenProvider,
    StoredLogin,
    default_store,
    desktop_scopes,
    discover,
    has_stored_login,
    login,
    logout,
    whoami,
)
from itwin_insights_mcp.errors import AuthError, ConfigError

pytestmark = pytest.mark.anyio

AUTHORITY = "https://ims.example.test"
CLIENT_ID = "native-insights-client"
SECRET_MARK = "SECRET"  # every token the fake IdP issues contains this, so leaks are easy to find


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig-{SECRET_MARK}00"  # a well-formed (12-character) segment


class FakeIdP:
    """Discovery, token (authorization_code + refresh_token with rotation) and revocation endpoints."""

    def __init__(self, *, revocation: bool = True, revoke_status: int = 200, latency: float = 0.0) -> None:
        self.revocation = revocation
        self.revoke_status = revoke_status
        self.latency = latency
        self.pending: dict[str, dict[str, str]] = {}  # code -> what the authorization request carried
        self.valid_refresh: set[str] = set()
        self.issued: list[str] = []  # every token handed out
        self.refresh_calls = 0
        self.code_exchanges = 0
        self.pkce_verified = False
        self.refuse_code = False
        self.rotate = True
        self.revoked: list[dict[str, str]] = []
        self.on_revoke: Callable[[], None] | None = None
        self._serial = 0
        self.transport = httpx2.MockTransport(self.handle)

    def _token(self, kind: str) -> str:
        self._serial += 1
        token = f"{kind}-{SECRET_MARK}-{self._serial:04d}"
        self.issued.append(token)
        return token

    def authorize(self, query: dict[str, str]) -> str:
        """What the IdP does after the user signs in: remember the request and mint a code."""
        code = self._token("code")
        self.pending[code] = query
        return code

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            doc = {
                "issuer": AUTHORITY,
                "authorization_endpoint": f"{AUTHORITY}/connect/authorize",
                "token_endpoint": f"{AUTHORITY}/connect/token",
                "userinfo_endpoint": f"{AUTHORITY}/connect/userinfo",
            }
            if self.revocation:
                doc["revocation_endpoint"] = f"{AUTHORITY}/connect/revocation"
            return httpx2.Response(200, json=doc)
        form = dict(parse_qsl(request.content.decode()))
        if path == "/connect/token" and request.method == "POST":
            assert "client_secret" not in form, "a public client sends no secret"
            assert form.get("client_id") == CLIENT_ID
            if form.get("grant_type") == "authorization_code":
                return self._exchange(form)
            if form.get("grant_type") == "refresh_token":
                return self._refresh(form)
            return httpx2.Response(400, json={"error": "unsupported_grant_type"})
        if path == "/connect/revocation" and request.method == "POST":
            if self.on_revoke is not None:
                self.on_revoke()
            self.revoked.append(form)
            self.valid_refresh.discard(form.get("token", ""))
            return httpx2.Response(self.revoke_status)
        return httpx2.Response(404)

    def _exchange(self, form: dict[str, str]) -> httpx2.Response:
        self.code_exchanges += 1
        if self.refuse_code:
            return httpx2.Response(400, json={"error": "invalid_grant", "error_description": form.get("code")})
        auth = self.pending.pop(form.get("code", ""), None)
        if auth is None:
            return httpx2.Response(400, json={"error": "invalid_grant"})
        verifier = form.get("code_verifier", "")
        assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier), "RFC 7636 verifier shape"
        if create_s256_code_challenge(verifier) != auth["code_challenge"]:
            return httpx2.Response(400, json={"error": "invalid_grant", "error_description": "PKCE"})
        self.pkce_verified = True
        assert form.get("redirect_uri") == auth["redirect_uri"]
        refresh = self._token("refresh")
        self.valid_refresh.add(refresh)
        id_token = _jwt({"sub": "user-42", "email": "ada@example.com", "name": "Ada L", "nonce": auth["nonce"]})
        self.issued.append(id_token)
        return httpx2.Response(
            200,
            json={
                "access_token": self._token("access"),
                "refresh_token": refresh,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": auth["scope"],
            },
        )

    def _refresh(self, form: dict[str, str]) -> httpx2.Response:
        self.refresh_calls += 1
        old = form.get("refresh_token", "")
        if old not in self.valid_refresh:
            return httpx2.Response(400, json={"error": "invalid_grant", "error_description": f"bad token {old}"})
        body: dict[str, Any] = {"access_token": self._token("access"), "token_type": "Bearer", "expires_in": 3600}
        if self.rotate:
            self.valid_refresh.discard(old)  # one-time use, as IMS does
            body["refresh_token"] = self._token("refresh")
            self.valid_refresh.add(body["refresh_token"])
        return httpx2.Response(200, json=body)


class Browser:
    """Stands in for the user's browser: checks the authorization URL, then follows the loopback redirect."""

    def __init__(self, idp: FakeIdP, *, mode: str = "ok", expect_host: str = "127.0.0.1") -> None:
        self.idp = idp
        self.mode = mode
        self.expect_host = expect_host
        self.urls: list[str] = []
        self.pages: list[httpx2.Response] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        self.urls.append(url)
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{AUTHORITY}/connect/authorize"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
        assert query["client_id"] == CLIENT_ID
        assert query["scope"].split() == ["itwin-platform", "offline_access"]
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        redirect = urlsplit(query["redirect_uri"])
        assert redirect.scheme == "http" and redirect.hostname == self.expect_host and redirect.port
        if self.mode == "silent":
            return True
        if self.mode == "denied":
            params = {"error": "access_denied", "error_description": "The user denied consent", "state": query["state"]}
        elif self.mode == "wrong_state":
            params = {"code": self.idp.authorize(query), "state": "not-the-state"}
        else:
            params = {"code": self.idp.authorize(query), "state": query["state"], "iss": AUTHORITY}
        target = f"{query['redirect_uri']}?{urlencode(params)}"
        thread = threading.Thread(target=self._follow, args=(target,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return True

    def _follow(self, target: str) -> None:
        try:
            with httpx2.Client(trust_env=False, timeout=10) as http:
                self.pages.append(http.get(target))
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)
        assert not self.errors, self.errors


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "config" / "credentials.json")


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The CI situation: `keyring` is installed but only has its `fail` backend."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user config dir or keyring choice."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(desktop_auth.TOKEN_STORE_ENV, raising=False)


def _assert_no_secrets(*texts: str, idp: FakeIdP) -> None:
    for text in texts:
        assert SECRET_MARK not in text
        for token in idp.issued:
            assert token not in text


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged, minus the simulated browser's own request lines (they carry the one-time code in the
    URL, as a real browser's history would; the server under test never logs it)."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith("httpcore")
        and "http://127.0.0.1" not in record.getMessage()
        and "http://localhost" not in record.getMessage()
    )


def _seed(store: FileStore, idp: FakeIdP, **extra: Any) -> str:
    refresh = idp._token("refresh")
    idp.valid_refresh.add(refresh)
    store.save(
        StoredLogin(
            authority=AUTHORITY,
            client_id=CLIENT_ID,
            refresh_token=refresh,
            scope="itwin-platform offline_access",
            subject="user-42",
            email="ada@example.com",
            **extra,
        )
    )
    return refresh


# ------------------------------------------------------------------------------------------------------ login


async def test_login_stores_refresh_token_in_0600_file_and_reveals_no_token(
    idp: FakeIdP, store: FileStore, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    browser = Browser(idp)
    result = await login(AUTHORITY, CLIENT_ID, open_browser=browser, store=store, transport=idp.transport, timeout=20)
    browser.join()

    assert idp.pkce_verified and idp.code_exchanges == 1
    assert browser.pages[0].status_code == 200 and "close this window" in browser.pages[0].text
    assert (result.email, result.subject, result.name) == ("ada@example.com", "user-42", "Ada L")
    assert result.scopes == ("itwin-platform", "offline_access")
    assert result.store == "file" and result.location == str(store.path)
    assert result.access_token_expires_at is not None

    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    saved = store.load(AUTHORITY, CLIENT_ID)
    assert saved is not None and saved.refresh_token in idp.valid_refresh
    assert store.load(AUTHORITY) == saved  # "the current sign-in" without naming the client
    assert [p.name for p in store.path.parent.iterdir()] == ["credentials.json"]  # no temp file left behind

    out = capsys.readouterr()
    assert any(r.name.startswith("itwin_insights_mcp") for r in caplog.records)
    _assert_no_secrets(
        _logged(caplog), out.out, out.err, repr(result), json.dumps(result.to_dict()), repr(saved), idp=idp
    )


async def test_login_rejects_state_mismatch(idp: FakeIdP, store: FileStore) -> None:
    browser = Browser(idp, mode="wrong_state")
    with pytest.raises(AuthError, match="state mismatch") as caught:
        await login(AUTHORITY, CLIENT_ID, open_browser=browser, store=store, transport=idp.transport, timeout=20)
    browser.join()
    assert "itwin-insights-mcp login" in str(caught.value)
    assert browser.pages[0].status_code == 400
    assert idp.code_exchanges == 0 and not store.path.exists()


async def test_login_reports_access_denied(idp: FakeIdP, store: FileStore) -> None:
    browser = Browser(idp, mode="denied")
    with pytest.raises(AuthError, match="access_denied") as caught:
        await login(AUTHORITY, CLIENT_ID, open_browser=browser, store=store, transport=idp.transport, timeout=20)
    browser.join()
    assert "itwin-insights-mcp login" in str(caught.value)
    assert "denied" in browser.pages[0].text
    assert idp.code_exchanges == 0 and not store.path.exists()


async def test_login_times_out_with_a_next_step(idp: FakeIdP, store: FileStore) -> None:
    browser = Browser(idp, mode="silent")
    with pytest.raises(AuthError, match=r"within 0\.3 s.*--no-browser"):
        await login(AUTHORITY, CLIENT_ID, open_browser=browser, store=store, transport=idp.transport, timeout=0.3)
    assert browser.urls and not store.path.exists()


async def test_login_token_endpoint_refusal_names_the_fix_not_the_code(idp: FakeIdP, store: FileStore) -> None:
    idp.refuse_code = True
    browser = Browser(idp)
    with pytest.raises(AuthError) as caught:
        await login(AUTHORITY, CLIENT_ID, open_browser=browser, store=store, transport=idp.transport, timeout=20)
    browser.join()
    message = str(caught.value)
    assert "HTTP 400, invalid_grant" in message and "redirect URIs" in message and "login" in message
    _assert_no_secrets(message, idp=idp)
    assert not store.path.exists()


async def test_login_with_registered_localhost_redirect_uri(idp: FakeIdP, store: FileStore) -> None:
    browser = Browser(idp, expect_host="localhost")
    result = await login(
        AUTHORITY,
        CLIENT_ID,
        "itwin-platform",  # offline_access is added
        open_browser=browser,
        redirect_uri="http://localhost:0/signin-callback",
        store=store,
        transport=idp.transport,
        timeout=20,
    )
    browser.join()
    assert urlsplit(parse_qs(urlsplit(browser.urls[0]).query)["redirect_uri"][0]).path == "/signin-callback"
    assert result.scopes == ("itwin-platform", "offline_access")


async def test_login_refuses_a_non_loopback_redirect(idp: FakeIdP, store: FileStore) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        await login(
            AUTHORITY,
            CLIENT_ID,
            open_browser=Browser(idp),
            redirect_uri="https://evil.example/cb",
            store=store,
            transport=idp.transport,
        )


def test_desktop_scopes_always_ask_for_offline_access() -> None:
    assert desktop_scopes(None) == "itwin-platform offline_access"
    assert desktop_scopes("itwin-platform") == "itwin-platform offline_access"
    assert desktop_scopes("offline_access itwin-platform offline_access") == "offline_access itwin-platform"


# -------------------------------------------------------------------------------------------------- discovery


async def test_discover_reads_the_endpoints(idp: FakeIdP) -> None:
    config = await discover(AUTHORITY + "/", idp.transport)
    assert config.token_endpoint == f"{AUTHORITY}/connect/token"
    assert config.revocation_endpoint == f"{AUTHORITY}/connect/revocation"
    assert config.userinfo_endpoint == f"{AUTHORITY}/connect/userinfo"


async def test_discover_unreachable_or_wrong_authority_is_a_clear_auth_error() -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("no route", request=request)

    with pytest.raises(AuthError, match=r"Could not reach .*ITWIN_AUTHORITY"):
        await discover(AUTHORITY, httpx2.MockTransport(down))
    with pytest.raises(AuthError, match=r"HTTP 404.*ITWIN_AUTHORITY"):
        await discover(AUTHORITY, httpx2.MockTransport(lambda r: httpx2.Response(404)))
    with pytest.raises(AuthError, match="https"):
        await discover("http://ims.example.test")


# ------------------------------------------------------------------------------------------- refresh provider


async def test_refresh_provider_refreshes_once_under_concurrency_and_saves_rotation(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    idp = FakeIdP(latency=0.05)
    first = _seed(store, idp)
    provider = RefreshTokenProvider(authority=AUTHORITY, client_id=CLIENT_ID, store=store, transport=idp.transport)
    assert provider.can_refresh is True

    tokens = await asyncio.gather(*(provider.get_token() for _ in range(20)))

    assert len(set(tokens)) == 1 and tokens[0].startswith("access-")
    assert idp.refresh_calls == 1 and provider.refresh_count == 1
    saved = store.load(AUTHORITY, CLIENT_ID)
    assert saved is not None and saved.refresh_token != first and saved.refresh_token in idp.valid_refresh
    assert saved.email == "ada@example.com"  # identity kept across the rotation
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600

    provider.invalidate()  # after a 401: the next call refreshes with the rotated token
    assert await provider.get_token() != tokens[0]
    assert idp.refresh_calls == 2
    _assert_no_secrets(caplog.text, idp=idp)


async def test_refresh_refused_asks_to_log_in_without_token_text(idp: FakeIdP, store: FileStore) -> None:
    refresh = _seed(store, idp)
    idp.valid_refresh.clear()  # expired or revoked at IMS
    provider = RefreshTokenProvider(authority=AUTHORITY, client_id=CLIENT_ID, store=store, transport=idp.transport)
    with pytest.raises(AuthError) as caught:
        await provider.get_token()
    message = str(caught.value)
    assert message.startswith("Not signed in") and "itwin-insights-mcp login" in message
    assert refresh not in message
    _assert_no_secrets(message, repr(caught.value), idp=idp)
    assert idp.refresh_calls == 1


async def test_no_stored_login_is_not_signed_in(idp: FakeIdP, store: FileStore) -> None:
    provider = RefreshTokenProvider(authority=AUTHORITY, store=store, transport=idp.transport)
    with pytest.raises(AuthError, match=r"Not signed in.*itwin-insights-mcp login"):
        await provider.get_token()
    assert idp.refresh_calls == 0
    assert has_stored_login(AUTHORITY, store=store) is False


async def test_refresh_picks_up_a_token_rotated_by_another_process(idp: FakeIdP, store: FileStore) -> None:
    _seed(store, idp)
    ours = RefreshTokenProvider(authority=AUTHORITY, store=store, transport=idp.transport)
    await ours.get_token()  # rotates; keeps the new refresh token in memory too
    other = RefreshTokenProvider(authority=AUTHORITY, store=store, transport=idp.transport)
    await other.get_token()  # another `serve` rotates again: ours now holds a spent token
    ours.invalidate()
    token = await ours.get_token()  # refused once, re-reads the store, succeeds
    assert token.startswith("access-") and idp.refresh_calls == 4


async def test_refresh_without_rotation_keeps_the_stored_token(idp: FakeIdP, store: FileStore) -> None:
    idp.rotate = False
    refresh = _seed(store, idp)
    provider = RefreshTokenProvider(authority=AUTHORITY, store=store, transport=idp.transport)
    await provider.get_token()
    saved = store.load(AUTHORITY)
    assert saved is not None and saved.refresh_token == refresh


# ------------------------------------------------------------------------------------------- logout, whoami


async def test_logout_revokes_then_deletes(idp: FakeIdP, store: FileStore) -> None:
    refresh = _seed(store, idp)
    idp.on_revoke = lambda: assert_still_stored(store)
    result = await logout(AUTHORITY, store=store, transport=idp.transport)
    assert result.signed_out and result.revoked and result.note is None
    assert idp.revoked == [{"token": refresh, "token_type_hint": "refresh_token", "client_id": CLIENT_ID}]
    assert store.load(AUTHORITY) is None and not store.path.exists()
    _assert_no_secrets(json.dumps(result.to_dict()), idp=idp)
    again = await logout(AUTHORITY, store=store, transport=idp.transport)
    assert not again.signed_out and "No stored sign-in" in (again.note or "")


def assert_still_stored(store: FileStore) -> None:
    assert store.load(AUTHORITY) is not None, "revoke first, delete after"


async def test_logout_deletes_locally_when_revocation_fails(store: FileStore, caplog: pytest.LogCaptureFixture) -> None:
    idp = FakeIdP(revoke_status=503)
    _seed(store, idp)
    result = await logout(AUTHORITY, CLIENT_ID, store=store, transport=idp.transport)
    assert result.signed_out and not result.revoked and "HTTP 503" in (result.note or "")
    assert store.load(AUTHORITY) is None

    unadvertised = FakeIdP(revocation=False)
    _seed(store, unadvertised)
    result = await logout(AUTHORITY, store=store, transport=unadvertised.transport)
    assert result.signed_out and not result.revoked and "does not advertise" in (result.note or "")
    assert store.load(AUTHORITY) is None
    _assert_no_secrets(caplog.text, idp=idp)
    _assert_no_secrets(caplog.text, idp=unadvertised)


async def test_whoami_shows_identity_scopes_and_expiry_without_tokens(idp: FakeIdP, store: FileStore) -> None:
    assert whoami(AUTHORITY, store=store) == {
        "authority": AUTHORITY,
        "store": "file",
        "location": str(store.path),
        "signed_in": False,
        "hint": desktop_auth.LOGIN_HINT,
    }
    _seed(store, idp, signed_in_at=1_700_000_000.0, expires_at=1_800_000_000.0)
    info = whoami(AUTHORITY + "/", store=store, now=lambda: 1_750_000_000.0)
    assert info["signed_in"] is True and info["email"] == "ada@example.com" and info["subject"] == "user-42"
    assert info["scopes"] == ["itwin-platform", "offline_access"]
    assert info["refresh_token_expires_at"] == "2027-01-15T08:00:00+00:00"
    assert info["expired"] is False and info["store"] == "file"
    _assert_no_secrets(json.dumps(info), idp=idp)


# -------------------------------------------------------------------------------------------------- the stores


def test_file_store_tightens_loose_permissions(
    idp: FakeIdP, store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    _seed(store, idp)
    os.chmod(store.path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert store.load(AUTHORITY) is not None
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "tightened" in caplog.text
    _assert_no_secrets(caplog.text, idp=idp)


def test_file_store_writes_0600_even_with_a_permissive_umask(idp: FakeIdP, store: FileStore) -> None:
    old = os.umask(0)
    try:
        _seed(store, idp)
        _seed(store, idp)  # rewrite: atomic replace keeps 0600
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.delete(AUTHORITY) is True and not store.path.exists()
    assert store.delete(AUTHORITY) is False


def test_file_store_keys_by_authority_and_client(idp: FakeIdP, store: FileStore) -> None:
    _seed(store, idp)
    other = StoredLogin(authority="https://qa-ims.example.test", client_id="other", refresh_token="r-" + SECRET_MARK)
    store.save(other)
    assert store.load("https://qa-ims.example.test") == other
    loaded = store.load(AUTHORITY)
    assert loaded is not None and loaded.client_id == CLIENT_ID
    assert store.load(AUTHORITY, "someone-else") is None


class MemoryKeyring(KeyringBackend):
    """A working keyring backend kept in memory."""

    priority = 5

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.mark.usefixtures("no_keyring")
def test_default_store_falls_back_to_the_file_quietly_without_a_keyring(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.INFO):
        chosen = default_store()
    assert isinstance(chosen, FileStore) and chosen.path.name == "credentials.json"
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(recwarn) == 0
    assert isinstance(default_store("file"), FileStore)
    with pytest.raises(ConfigError, match="no usable OS keyring"):
        default_store("keyring")
    monkeypatch.setenv(desktop_auth.TOKEN_STORE_ENV, "keyring")
    with pytest.raises(ConfigError, match=f"{desktop_auth.TOKEN_STORE_ENV}=file"):
        default_store()
    monkeypatch.setenv(desktop_auth.TOKEN_STORE_ENV, "vault")
    with pytest.raises(ConfigError, match="auto, keyring or file"):
        default_store()


def test_default_store_prefers_a_usable_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        assert isinstance(default_store(), KeyringStore)
        monkeypatch.setenv(desktop_auth.TOKEN_STORE_ENV, "file")
        assert isinstance(default_store(), FileStore)
    finally:
        keyring.set_keyring(previous)


def test_keyring_store_round_trip(idp: FakeIdP) -> None:
    backend = MemoryKeyring()
    store = KeyringStore(backend)
    assert store.load(AUTHORITY) is None
    record = StoredLogin(authority=AUTHORITY, client_id=CLIENT_ID, refresh_token=idp._token("refresh"), scope="a b")
    store.save(record)
    assert store.load(AUTHORITY) == record == store.load(AUTHORITY, CLIENT_ID)
    assert "keyring" in store.location and SECRET_MARK not in store.location
    assert has_stored_login(AUTHORITY, store=store)
    assert store.delete(AUTHORITY) is True
    assert backend.entries == {} and store.load(AUTHORITY) is None
    assert store.delete(AUTHORITY) is False
