"""The hosted OAuth provider behind the SDK's own /register and /authorize routes (issue 13 item 1).

The two attacks from the issue are refused where they enter: dynamic registration, /authorize (also for a client
stored under the old rules) and the Client ID Metadata Document fetch, which is never even attempted for them.
Legitimate loopback, Claude and VS Code clients still get through to the identity provider.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from itwin_insights_mcp.errors import ConfigError
from itwin_insights_mcp.hosted.ims import IdentityProvider
from itwin_insights_mcp.hosted.modes import hosted_auth
from itwin_insights_mcp.hosted.oauth import InsightsOAuthProvider, UserTokenProvider
from itwin_insights_mcp.hosted.state import SharedState
from itwin_insights_mcp.settings import DEFAULT_REDIRECTS, Settings

pytestmark = pytest.mark.anyio

ISSUER = "https://mcp.example"
IMS_AUTHORIZE = "https://ims.example/authorize"
IMS_TOKEN = "https://ims.example/token"
ATTACK_REDIRECT = "http://127.0.0.1:80@evil.example/cb"
ATTACK_CIMD = "http://localhost@192.0.2.2:8000/x"
GOOD_CIMD = "https://client.example/meta.json"
LOOPBACK_CIMD = "http://127.0.0.1:5/client.json"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class Documents:
    """What the metadata-document fetch would find, and every request it made."""

    def __init__(self) -> None:
        self.served: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(str(request.url))
        document = self.served.get(str(request.url))
        return httpx2.Response(200, json=document) if document else httpx2.Response(404)

    def serve(self, client_id: str, redirect_uris: list[str], **extra: Any) -> None:
        self.served[client_id] = {"client_id": client_id, "redirect_uris": redirect_uris, **extra}


class Harness:
    """The provider, the SDK's auth routes over it, and an HTTP client into them."""

    def __init__(self, provider: InsightsOAuthProvider, http: httpx2.AsyncClient, documents: Documents) -> None:
        self.provider = provider
        self.http = http
        self.documents = documents

    def rows(self, table: str) -> int:
        row = self.provider.state.query_one(f"SELECT COUNT(*) FROM {table}", ())
        assert row is not None
        return int(row[0])

    def store_client(self, client_id: str, redirect_uris: list[str]) -> None:
        """A client row as registration wrote it before redirect URIs were parsed (the old rules let it in)."""
        data = {
            "client_id": client_id,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        with self.provider.state.transaction() as conn:
            conn.execute("INSERT INTO oauth_clients VALUES (?, ?, NULL)", (client_id, json.dumps(data)))

    async def register(self, redirect_uris: list[str]) -> httpx2.Response:
        return await self.http.post(
            "/register", json={"redirect_uris": redirect_uris, "token_endpoint_auth_method": "none"}
        )

    async def authorize(self, client_id: str, redirect_uri: str | None) -> httpx2.Response:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "state": "s1",
        }
        if redirect_uri is not None:
            params["redirect_uri"] = redirect_uri
        return await self.http.get("/authorize", params=params)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    documents = Documents()
    discovery = {"issuer": "https://ims.example", "authorization_endpoint": IMS_AUTHORIZE, "token_endpoint": IMS_TOKEN}
    ims = IdentityProvider(
        "https://ims.example",
        "server-client",
        "server-secret",
        "openid",
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json=discovery)),
    )  # only the authorize leg is exercised here
    provider = InsightsOAuthProvider(
        state=SharedState(str(tmp_path / "state.db"), Fernet.generate_key().decode()),
        ims=ims,
        issuer=ISSUER,
        resource=f"{ISSUER}/mcp",
        signing_key=b"k" * 32,
        redirect_allowlist=DEFAULT_REDIRECTS,
        cimd_transport=httpx2.MockTransport(documents.handle),
    )
    routes = create_auth_routes(
        provider,
        AnyHttpUrl(ISSUER),
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
    )
    app = Starlette(routes=routes)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ISSUER) as http:
        yield Harness(provider, http, documents)


def assert_not_sent_to_attacker(reply: httpx2.Response) -> None:
    """Refused on the page itself: no redirect anywhere, no sign-in started."""
    assert reply.status_code == 400, reply.text
    assert "location" not in reply.headers
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "redirect",
    [
        ATTACK_REDIRECT,
        "http://localhost@evil.example:5/cb",
        "http://localhost:5@evil.example/cb",
        "http://127.0.0.1.evil.example:5/cb",
        "https://claude.ai.evil.example/api/mcp/auth_callback",
    ],
)
async def test_registration_refuses_redirects_that_only_look_allowed(harness: Harness, redirect: str) -> None:
    reply = await harness.register(["http://127.0.0.1:7777/callback", redirect])
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_redirect_uri"
    assert harness.rows("oauth_clients") == 0


@pytest.mark.parametrize(
    "redirect",
    [
        "http://127.0.0.1:53682/callback",
        "http://localhost:7777/cb",
        "https://claude.ai/api/mcp/auth_callback",
        "https://vscode.dev/redirect",
    ],
)
async def test_legitimate_clients_register_and_reach_the_identity_provider(harness: Harness, redirect: str) -> None:
    reply = await harness.register([redirect])
    assert reply.status_code == 201, reply.text
    client_id = reply.json()["client_id"]
    started = await harness.authorize(client_id, redirect)
    assert started.status_code == 302
    assert started.headers["location"].startswith(f"{IMS_AUTHORIZE}?")
    assert harness.rows("oauth_pending") == 1


async def test_authorize_refuses_a_client_stored_with_the_attack_redirect(harness: Harness) -> None:
    harness.store_client("old-client", [ATTACK_REDIRECT])
    for redirect in (ATTACK_REDIRECT, None):  # named, or implied by the single registered URI
        assert_not_sent_to_attacker(await harness.authorize("old-client", redirect))
    assert harness.rows("oauth_pending") == 0


async def test_authorize_refuses_an_unregistered_redirect(harness: Harness) -> None:
    client_id = (await harness.register(["http://127.0.0.1:7777/callback"])).json()["client_id"]
    assert_not_sent_to_attacker(await harness.authorize(client_id, ATTACK_REDIRECT))
    assert harness.rows("oauth_pending") == 0


@pytest.mark.parametrize(
    "client_id",
    [
        ATTACK_CIMD,
        "http://localhost:80@192.0.2.2/x",
        "http://192.0.2.2/x",
        "http://localhost.evil/x",
        "http://2130706433:5/x",
        "https://169.254.169.254/latest/meta-data",
    ],
)
async def test_a_metadata_document_url_that_is_not_https_or_loopback_is_never_fetched(
    harness: Harness, client_id: str
) -> None:
    harness.documents.serve(client_id, ["http://127.0.0.1:7777/callback"])  # it would even be a valid document
    reply = await harness.authorize(client_id, "http://127.0.0.1:7777/callback")
    assert reply.status_code == 400 and "not found" in reply.text
    assert harness.documents.requests == []
    assert harness.rows("oauth_clients") == 0


@pytest.mark.parametrize("client_id", [GOOD_CIMD, LOOPBACK_CIMD])
async def test_a_metadata_document_over_https_or_loopback_http_is_used(harness: Harness, client_id: str) -> None:
    harness.documents.serve(client_id, ["http://127.0.0.1:7777/callback"], client_name="Doc client")
    reply = await harness.authorize(client_id, "http://127.0.0.1:7777/callback")
    assert reply.status_code == 302 and reply.headers["location"].startswith(f"{IMS_AUTHORIZE}?")
    assert harness.documents.requests == [client_id]
    assert harness.rows("oauth_clients") == 1  # cached for CIMD_TTL


@pytest.mark.parametrize(
    "document",
    [
        {"client_id": GOOD_CIMD, "redirect_uris": [ATTACK_REDIRECT]},
        {"client_id": GOOD_CIMD, "redirect_uris": ["http://127.0.0.1:7777/callback", "https://evil.example/cb"]},
        {"client_id": "https://other.example/meta.json", "redirect_uris": ["http://127.0.0.1:7777/callback"]},
        {"client_id": GOOD_CIMD, "redirect_uris": "http://127.0.0.1:7777/callback"},
        {"client_id": GOOD_CIMD, "redirect_uris": []},
    ],
)
async def test_a_metadata_document_with_a_bad_redirect_or_identity_is_refused(
    harness: Harness, document: dict[str, Any]
) -> None:
    harness.documents.served[GOOD_CIMD] = document
    assert_not_sent_to_attacker(await harness.authorize(GOOD_CIMD, ATTACK_REDIRECT))
    assert harness.documents.requests  # fetched, then refused
    assert harness.rows("oauth_clients") == 0 and harness.rows("oauth_pending") == 0


async def test_sign_in_and_registration_purge_expired_rows(harness: Harness) -> None:
    with harness.provider.state.transaction() as conn:
        conn.execute("INSERT INTO oauth_pending VALUES ('stale', '{}', ?)", (time.time() - 2 * 86400,))
    reply = await harness.register(["http://127.0.0.1:7777/callback"])
    assert reply.status_code == 201
    assert harness.provider.state.query_one("SELECT 1 FROM oauth_pending WHERE id = 'stale'", ()) is None


def test_an_unusable_allowlist_entry_stops_the_oauth_mode_at_start_up(tmp_path: Path) -> None:
    settings = Settings(
        auth_mode="oauth",
        public_url="https://mcp.example",
        client_id="server-client",
        client_secret="server-secret",
        state_key=Fernet.generate_key().decode(),
        state_db=str(tmp_path / "state.db"),
        redirect_allowlist=("http://127.0.0.1:*", "http://intranet.example/*"),
    )
    with pytest.raises(ConfigError, match="http is allowed only for loopback"):
        hosted_auth(settings)


class SlowIms:
    """An identity provider whose refresh takes a moment and is counted."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        self.refreshes += 1
        await asyncio.sleep(0.05)
        return {"access_token": f"fresh-{self.refreshes}", "expires_in": 3600}


async def test_refresh_locks_serialise_one_user_and_are_not_kept_afterwards(harness: Harness) -> None:
    state = harness.provider.state
    subjects = [f"https://ims.example|user{i}" for i in range(20)]
    with state.transaction() as conn:
        for subject in subjects:
            sealed = state.seal({"access_token": "old", "refresh_token": "r", "expires_at": 0})
            conn.execute("INSERT INTO upstream_tokens VALUES (?, ?, ?)", (subject, sealed, time.time()))
    ims = SlowIms()
    calls = [UserTokenProvider(state, ims, subject).get_token() for subject in subjects for _ in range(3)]  # type: ignore[arg-type]
    tokens = await asyncio.gather(*calls)
    assert ims.refreshes == len(subjects)  # three concurrent calls per user, one refresh each
    assert all(token.startswith("fresh-") for token in tokens)
    gc.collect()
    assert len(UserTokenProvider._locks) == 0  # nothing kept per user once no refresh is in flight
