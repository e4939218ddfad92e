"""Hosted OAuth end to end: a real OpenID Connect provider (panva/node-oidc-provider) stands in for IMS, two
replicas share one state database behind a round-robin balancer, and the SDK's own OAuth client signs in.

Shows: discovery, dynamic registration, authorization with PKCE, refresh; each rejection (no token, expired, wrong
audience, wrong issuer, tampered signature, reused code, unregistered redirect, PKCE mismatch); per-user identity
on every upstream request with 50 concurrent sessions of 5 users; and no token anywhere in the logs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from ..conftest import BUILDING_ID
from .hosting import CLIENT_REDIRECT, TLS, Deployment, deployment, sign_in
from .postgres import postgres_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hosted(
    request: pytest.FixtureRequest, template_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Two replicas sharing one store: a SQLite file (one node), or PostgreSQL (several nodes)."""
    workdir = tmp_path_factory.mktemp(f"hosted-{request.param}")
    db = workdir / "sandbox.db"
    db.write_bytes(template_db.read_bytes())
    with ExitStack() as stack:
        state = stack.enter_context(postgres_server()) if request.param == "postgres" else None
        yield stack.enter_context(deployment(str(db), workdir, state))


class MemoryStorage:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def sdk_auth(url: str, user: str, storage: MemoryStorage) -> OAuthClientProvider:
    """The SDK's OAuth client, with a 'browser' that signs `user` in."""
    pending: dict[str, Any] = {}

    async def redirect(authorization_url: str) -> None:
        pending["code"], pending["state"] = await sign_in(authorization_url, user)

    async def callback() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=pending["code"], state=pending["state"])

    metadata = OAuthClientMetadata(
        client_name=f"test client of {user}",
        redirect_uris=[AnyUrl(CLIENT_REDIRECT)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=f"{url}/mcp",
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
    )


@asynccontextmanager
async def mcp_session(url: str, token: str) -> AsyncIterator[Client]:
    """One MCP session of a user holding `token` (each of its requests may reach either replica)."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60, verify=TLS) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


async def tool(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def manual_login(deploy: Deployment, user: str) -> dict[str, Any]:
    """Register, authorize with PKCE and exchange the code by hand; returns the client and the token reply."""
    async with httpx2.AsyncClient(timeout=30, verify=TLS) as http:
        registered = (
            await http.post(
                f"{deploy.url}/register",
                json={
                    "redirect_uris": [CLIENT_REDIRECT],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "client_name": f"manual {user}",
                },
            )
        ).json()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = httpx2.QueryParams(
            {
                "response_type": "code",
                "client_id": registered["client_id"],
                "redirect_uri": CLIENT_REDIRECT,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "s1",
            }
        )
        code, state = await sign_in(f"{deploy.url}/authorize?{query}", user)
        assert state == "s1"
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLIENT_REDIRECT,
            "client_id": registered["client_id"],
            "code_verifier": verifier,
        }
        tokens = (await http.post(f"{deploy.url}/token", data=form)).json()
        return {"client": registered, "tokens": tokens, "code": code, "verifier": verifier, "form": form}


async def test_sdk_client_discovers_registers_signs_in_and_refreshes(hosted: Deployment) -> None:
    storage = MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=sdk_auth(hosted.url, "alice", storage), timeout=60) as http,
        Client(streamable_http_client(f"{hosted.url}/mcp", http_client=http), mode="legacy") as client,
    ):
        created = await client.call_tool("create_mapping", {"imodelId": BUILDING_ID, "mappingName": "AliceMap"})
        assert not created.is_error
        assert created.structured_content["mapping"]["createdBy"] == "alice@example.com"
    assert storage.tokens is not None and storage.tokens.refresh_token and storage.client is not None
    first_refresh = storage.tokens.refresh_token
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == f"{hosted.url}/mcp" and claims["iss"] == hosted.url and claims["exp"] - claims["iat"] <= 900

    # An expiring access token: the SDK client refreshes it with the refresh token before calling.
    storage.tokens = OAuthToken(
        access_token="expired.by.test",
        token_type="Bearer",
        expires_in=1,
        refresh_token=first_refresh,
        scope=storage.tokens.scope,
    )
    await asyncio.sleep(1.2)
    async with (
        httpx2.AsyncClient(auth=sdk_auth(hosted.url, "alice", storage), timeout=60) as http,
        Client(streamable_http_client(f"{hosted.url}/mcp", http_client=http), mode="legacy") as client,
    ):
        listed = await client.call_tool("list_mappings", {"imodelId": BUILDING_ID})
        assert not listed.is_error
    assert storage.tokens.refresh_token != first_refresh  # rotated
    metadata = httpx2.get(f"{hosted.url}/.well-known/oauth-authorization-server").json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["client_id_metadata_document_supported"] is True
    assert sum(1 for hits in hosted.balancer.hits if hits) == 2  # both replicas served this flow


async def test_rejections(hosted: Deployment) -> None:
    url = hosted.url
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    def call(token: str | None) -> httpx2.Response:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.post(f"{url}/mcp", json=init, headers={**headers, **auth}, timeout=30)

    no_token = call(None)
    assert no_token.status_code == 401
    assert 'resource_metadata="' in no_token.headers["www-authenticate"]
    resource = httpx2.get(f"{url}/.well-known/oauth-protected-resource/mcp").json()
    assert resource["resource"] == f"{url}/mcp" and resource["authorization_servers"][0].rstrip("/") == url

    login = await manual_login(hosted, "bob")
    good = login["tokens"]["access_token"]
    assert call(good).status_code == 200
    key = hashlib.sha256(b"itwin-insights-mcp access tokens|" + hosted.state_key.encode()).digest()
    claims = jwt.decode(good, options={"verify_signature": False})
    now = int(time.time())
    forged = {
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, key, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "https://other.example/mcp"}, key, algorithm="HS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "https://evil.example"}, key, algorithm="HS256"),
        "tampered signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "other key": jwt.encode(claims, b"not the server key" * 2, algorithm="HS256"),
    }
    for name, token in forged.items():
        assert call(token).status_code == 401, name

    async with httpx2.AsyncClient(timeout=30) as http:
        reused = await http.post(f"{url}/token", data=login["form"])
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        assert call(good).status_code == 401  # a reused code ends what it produced

        again = await manual_login(hosted, "bob")
        client_id = again["client"]["client_id"]
        bad_redirect = await http.get(
            f"{url}/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": "http://127.0.0.1:9/elsewhere",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
                "state": "s",
            },
        )
        assert bad_redirect.status_code == 400 and "redirect" in bad_redirect.text.lower()
        not_allowed = await http.post(
            f"{url}/register", json={"redirect_uris": ["https://evil.example/cb"], "token_endpoint_auth_method": "none"}
        )
        assert not_allowed.status_code == 400 and not_allowed.json()["error"] == "invalid_redirect_uri"

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = httpx2.QueryParams(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": CLIENT_REDIRECT,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "p",
            }
        )
        code, _ = await sign_in(f"{url}/authorize?{query}", "bob")
        mismatch = await http.post(
            f"{url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CLIENT_REDIRECT,
                "client_id": client_id,
                "code_verifier": secrets.token_urlsafe(48),
            },
        )
        assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_grant"

        refresh = again["tokens"]["refresh_token"]
        rotated = await http.post(
            f"{url}/token", data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id}
        )
        assert rotated.status_code == 200
        replayed = await http.post(
            f"{url}/token", data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id}
        )
        assert replayed.status_code == 400  # a rotated-out refresh token is refused (and ends the family)
        assert call(rotated.json()["access_token"]).status_code == 401


async def test_fifty_sessions_of_five_users_never_cross(hosted: Deployment) -> None:
    users = ["ann", "ben", "cid", "dee", "eve"]
    tokens = {user: (await manual_login(hosted, user))["tokens"]["access_token"] for user in users}
    start = len(hosted.recorded())

    async def session(user: str, index: int) -> str:
        name = f"{user}_{index}"
        async with mcp_session(hosted.url, tokens[user]) as client:
            created = await tool(client, "create_mapping", {"imodelId": BUILDING_ID, "mappingName": name})
            mapping_id = created["mapping"]["id"]
            got = await tool(client, "get_mapping", {"imodelId": BUILDING_ID, "mappingId": mapping_id})
        assert got["mapping"]["createdBy"] == f"{user}@example.com"
        return str(mapping_id)

    owners: dict[str, str] = {}
    results = await asyncio.gather(*(session(user, i) for user in users for i in range(10)))
    for (user, _), mapping_id in zip([(u, i) for u in users for i in range(10)], results, strict=True):
        owners[mapping_id] = user
    recorded = hosted.recorded()[start:]
    assert len(recorded) == 100  # every upstream request, one create and one get per session
    crossings = 0
    for method, path, caller, body in recorded:
        if method == "POST":
            owner = json.loads(body)["mappingName"].split("_")[0]
        else:
            owner = owners[path.rstrip("/").rsplit("/", 1)[-1]]
        crossings += caller != f"{owner}@example.com"
    assert crossings == 0
    assert all(hits > 10 for hits in hosted.balancer.hits)  # both replicas took part


def test_no_token_in_any_log(hosted: Deployment) -> None:
    secrets_seen: set[str] = set()
    for upstream in hosted.sealed_upstream_tokens():
        secrets_seen |= {upstream["access_token"], upstream["refresh_token"] or ""}
    secrets_seen |= {hosted.state_key}
    secrets_seen.discard("")
    assert secrets_seen
    for log in hosted.logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        for secret in secrets_seen:
            assert secret not in text, f"a secret leaked into {log.name}"
        assert "eyJ" not in text or log.name == "idp.log", f"a JWT-looking token in {log.name}"


async def test_redirect_and_metadata_document_attacks_are_refused(hosted: Deployment) -> None:
    """Issue 13 item 1 end to end: a userinfo redirect is refused at registration, a userinfo metadata-document URL
    is never fetched, and the same document at its plain loopback URL signs a user in."""
    hits: list[str] = []
    document: dict[str, Any] = {}

    async def serve_document(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hits.append(head.split(b" ", 2)[1].decode())
        body = json.dumps(document).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve_document, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    plain = f"http://127.0.0.1:{port}/client.json"
    document.update(client_id=plain, redirect_uris=[CLIENT_REDIRECT], client_name="document client")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")

    def authorize_url(client_id: str) -> str:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "d1",
        }
        return f"{hosted.url}/authorize?{httpx2.QueryParams(query)}"

    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            for redirect in ("http://127.0.0.1:80@evil.example/cb", "http://localhost:7777@evil.example/cb"):
                registered = await http.post(
                    f"{hosted.url}/register", json={"redirect_uris": [redirect], "token_endpoint_auth_method": "none"}
                )
                assert registered.status_code == 400 and registered.json()["error"] == "invalid_redirect_uri"

            for attack in (f"http://localhost@127.0.0.1:{port}/client.json", f"http://localhost:{port}@[::1]/x"):
                refused = await http.get(authorize_url(attack))
                assert refused.status_code == 400 and "location" not in refused.headers
            assert hits == []  # never fetched

            code, state = await sign_in(authorize_url(plain), "carol")
            assert state == "d1" and hits == ["/client.json"]
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CLIENT_REDIRECT,
                "client_id": plain,
                "code_verifier": verifier,
            }
            tokens = await http.post(f"{hosted.url}/token", data=form)
            assert tokens.status_code == 200 and tokens.json()["access_token"]
    finally:
        listener.close()
