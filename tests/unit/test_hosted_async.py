"""Hosted OAuth in process, with a guard on the database driver: the whole sign-in (registration, authorization,
the identity provider's callback with a signed ID token, code exchange, token checks, refresh rotation, upstream
token refresh after a 401, revocation) never makes a database call on the event loop. And expired rows are purged
by the HTTP app's own background task, with no traffic at all."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.server import Server
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.routing import Route

from itwin_insights_mcp.hosted import state as state_module
from itwin_insights_mcp.hosted.housekeeping import purge_on_schedule, run_during_lifespan
from itwin_insights_mcp.hosted.ims import IdentityProvider
from itwin_insights_mcp.hosted.modes import hosted_auth
from itwin_insights_mcp.hosted.oauth import InsightsOAuthProvider, UserTokenProvider
from itwin_insights_mcp.hosted.state import PURGE_RETENTION_SECONDS, SharedState
from itwin_insights_mcp.server.http import create_http_app
from itwin_insights_mcp.settings import DEFAULT_REDIRECTS, Settings

pytestmark = pytest.mark.anyio

ISSUER = "https://mcp.example"
IMS = "https://ims.example"
SERVER_CLIENT = "server-client"
CLIENT_REDIRECT = "http://127.0.0.1:7777/callback"


class Ims:
    """An OpenID provider: discovery, JWKS, and a token endpoint minting signed ID tokens for the expected nonce."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.nonce = ""
        self.grants: list[str] = []
        self.transport = httpx2.MockTransport(self.handle)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(
                200,
                json={
                    "issuer": IMS,
                    "authorization_endpoint": f"{IMS}/authorize",
                    "token_endpoint": f"{IMS}/token",
                    "jwks_uri": f"{IMS}/jwks",
                },
            )
        if request.url.path == "/jwks":
            return httpx2.Response(200, json=self.jwks)
        form = dict(parse_qsl(request.content.decode()))
        assert form["client_id"] == SERVER_CLIENT and form["client_secret"] == "server-secret"
        self.grants.append(form["grant_type"])
        serial = len(self.grants)
        reply: dict[str, Any] = {"access_token": f"ims-at-{serial}", "refresh_token": f"ims-rt-{serial}"}
        if form["grant_type"] == "authorization_code":
            now = int(time.time())
            claims = {"iss": IMS, "aud": SERVER_CLIENT, "sub": "ann", "email": "ann@example.com", "nonce": self.nonce}
            reply["id_token"] = jwt.encode(
                {**claims, "iat": now, "exp": now + 300}, self.key, algorithm="RS256", headers={"kid": "k1"}
            )
        return httpx2.Response(200, json={**reply, "expires_in": 3600})


class LoopGuard:
    """Wraps the SQLite driver calls; records each one and whether it ran on a thread with a running event loop."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            self.calls.append((f"{name} on {threading.current_thread().name}", on_loop))
            return fn(*args, **kwargs)

        return guarded

    @property
    def on_loop(self) -> list[str]:
        return [name for name, on_loop in self.calls if on_loop]


@contextmanager
def guarded_driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopGuard]:
    guard = LoopGuard()
    backend = state_module._Sqlite
    monkeypatch.setattr(backend, "read", guard.wrap("read", backend.read))
    monkeypatch.setattr(backend, "transaction", guard.wrap("transaction", backend.transaction))
    yield guard


@pytest.fixture
async def hosted(tmp_path: Path) -> AsyncIterator[tuple[InsightsOAuthProvider, Ims, httpx2.AsyncClient]]:
    ims = Ims()
    provider = InsightsOAuthProvider(
        state=SharedState(str(tmp_path / "state.db"), Fernet.generate_key().decode()),
        ims=IdentityProvider(IMS, SERVER_CLIENT, "server-secret", "openid email", transport=ims.transport),
        issuer=ISSUER,
        resource=f"{ISSUER}/mcp",
        signing_key=b"k" * 32,
        redirect_allowlist=DEFAULT_REDIRECTS,
    )
    routes = create_auth_routes(
        provider,
        AnyHttpUrl(ISSUER),
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
    )
    app = Starlette(routes=[*routes, Route("/oauth/callback", provider.callback)])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ISSUER) as http:
        yield provider, ims, http
    provider.state.close()


def query_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(httpx2.URL(location).query.decode()))


async def test_the_whole_sign_in_makes_no_database_call_on_the_event_loop(
    hosted: tuple[InsightsOAuthProvider, Ims, httpx2.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, ims, http = hosted
    with guarded_driver(monkeypatch) as guard:
        registered = await http.post(
            "/register", json={"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"}
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        authorize = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "c1",
        }
        to_ims = await http.get("/authorize", params=authorize)
        assert to_ims.status_code == 302 and to_ims.headers["location"].startswith(f"{IMS}/authorize?")
        sent = query_of(to_ims.headers["location"])
        assert "resource" not in sent and sent["code_challenge_method"] == "S256"
        ims.nonce = sent["nonce"]  # the user signs in at IMS, which redirects back with its code

        back = await http.get("/oauth/callback", params={"code": "ims-code", "state": sent["state"]})
        assert back.status_code == 302 and back.headers["location"].startswith(CLIENT_REDIRECT)
        returned = query_of(back.headers["location"])
        assert returned["state"] == "c1"
        form = {
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": CLIENT_REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        }
        tokens = (await http.post("/token", data=form)).json()
        access = await provider.load_access_token(tokens["access_token"])
        assert access is not None and access.subject == f"{IMS}|ann"

        rotated = await http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id},
        )
        assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]

        upstream = UserTokenProvider(provider.state, provider.ims, access.subject)
        assert await upstream.get_token() == "ims-at-1"
        upstream.invalidate()  # Bentley answered 401: the next call refreshes at IMS
        assert await upstream.get_token() == "ims-at-2"
        assert ims.grants == ["authorization_code", "refresh_token"]

        # The SDK's revocation form model requires a client_secret field even for public clients: send it empty.
        revocation = {"token": rotated.json()["access_token"], "client_id": client_id, "client_secret": ""}
        revoked = await http.post("/revoke", data=revocation)
        assert revoked.status_code == 200, revoked.text
        assert await provider.load_access_token(rotated.json()["access_token"]) is None

    assert len(guard.calls) >= 15  # the guard saw the driver at work...
    assert guard.on_loop == []  # ...and never on the event loop
    assert all("insights-state" in name for name, _ in guard.calls)


async def test_invalidate_does_no_io_and_a_token_stored_meanwhile_is_used(
    hosted: tuple[InsightsOAuthProvider, Ims, httpx2.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, ims, _ = hosted
    state = provider.state
    seal = state.seal({"access_token": "old", "refresh_token": "r", "expires_at": time.time() + 3600})
    await state.atomic(lambda conn: conn.execute("INSERT INTO upstream_tokens VALUES ('u', ?, 0)", (seal,)))
    upstream = UserTokenProvider(state, provider.ims, "u")
    assert await upstream.get_token() == "old"
    with guarded_driver(monkeypatch) as guard:
        upstream.invalidate()
    assert guard.calls == []
    other = state.seal({"access_token": "stored-by-another-replica", "refresh_token": "r2", "expires_at": 1e12})
    await state.atomic(lambda conn: conn.execute("UPDATE upstream_tokens SET sealed = ?", (other,)))
    assert await upstream.get_token() == "stored-by-another-replica"
    assert ims.grants == []  # no refresh was needed


async def test_a_write_waiting_on_a_locked_database_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """Another replica holds SQLite's write lock for 0.5 s: our write waits for it, the event loop does not."""
    import sqlite3

    path = str(tmp_path / "state.db")
    state = SharedState(path, Fernet.generate_key().decode())
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    write = asyncio.ensure_future(
        state.atomic(lambda conn: conn.execute("INSERT INTO oauth_pending VALUES ('p', '{}', 0)"))
    )
    ticks, started = 0, time.monotonic()
    while not write.done():
        await asyncio.sleep(0.01)
        ticks += 1
    await write
    waited = time.monotonic() - started
    release.join()
    other.close()
    state.close()
    assert waited >= 0.4  # the write really waited for the lock...
    assert ticks >= 20  # ...while the loop kept running (a blocking call would allow one tick)


async def stale_rows(state: SharedState) -> int:
    row = await state.one("SELECT COUNT(*) FROM oauth_pending WHERE id LIKE 'stale%'", ())
    assert row is not None
    return int(row[0])


async def add_stale_row(state: SharedState, name: str) -> None:
    expired = time.time() - PURGE_RETENTION_SECONDS - 60
    await state.atomic(lambda conn: conn.execute("INSERT INTO oauth_pending VALUES (?, '{}', ?)", (name, expired)))


async def wait_until_gone(state: SharedState, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while await stale_rows(state):
        assert time.monotonic() < deadline, "expired rows were not purged"
        await asyncio.sleep(0.02)


async def test_expired_rows_are_purged_on_a_schedule_during_the_lifespan(tmp_path: Path) -> None:
    state = SharedState(str(tmp_path / "state.db"), Fernet.generate_key().decode(), purge_interval=0.1)
    await add_stale_row(state, "stale-1")
    app = Starlette()
    run_during_lifespan(app, lambda: purge_on_schedule(state), state)
    async with app.router.lifespan_context(app):
        await wait_until_gone(state)  # at start-up, with no traffic
        await add_stale_row(state, "stale-2")
        await wait_until_gone(state)  # and again on the next round
    with pytest.raises(RuntimeError):  # the lifespan's end stopped the task and closed the state's threads
        await state.one("SELECT 1", ())


async def test_the_schedule_survives_a_failing_database(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = SharedState(str(tmp_path / "state.db"), Fernet.generate_key().decode(), purge_interval=0.05)
    failures = [1, 2]

    def flaky(now: float | None = None) -> bool:
        if failures:
            failures.pop()
            raise OSError("database is down")
        return SharedState.purge_if_due(state, now)

    state.purge_if_due = flaky  # type: ignore[method-assign]
    await add_stale_row(state, "stale-1")
    task = asyncio.ensure_future(purge_on_schedule(state, interval=0.02))
    try:
        await wait_until_gone(state)
    finally:
        task.cancel()
        state.close()
    assert failures == [] and "Purging expired sign-in rows failed (OSError)" in caplog.text


async def test_the_http_app_of_the_oauth_mode_purges_at_start_up(tmp_path: Path) -> None:
    settings = Settings(
        auth_mode="oauth",
        transport="http",
        public_url="https://mcp.example",
        client_id="server-client",
        client_secret="server-secret",
        state_key=Fernet.generate_key().decode(),
        state_db=str(tmp_path / "state.db"),
    )
    hosted = hosted_auth(settings)
    assert hosted.state is not None
    await add_stale_row(hosted.state, "stale-1")
    app = create_http_app(settings, Server("purge-test"), hosted)
    async with app.router.lifespan_context(app):
        await wait_until_gone(hosted.state)
