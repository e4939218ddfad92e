"""The one OpenID Connect client (`api/signin.py`) against a fake provider: https required except loopback, one
discovery for many callers, the grant forms (public and confidential clients), revocation, and ID tokens checked
against the provider's JWKS (signature, issuer, audience, expiry, nonce, key rotation)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from itwin_insights_mcp.api.signin import (
    OidcClient,
    TokenReply,
    discover,
    identity,
    pkce_pair,
    require_secure,
    unverified_claims,
)
from itwin_insights_mcp.errors import AuthError

pytestmark = pytest.mark.anyio

AUTHORITY = "https://ims.example.test"
CLIENT = "web-client"


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    """An RSA key and its public JWK."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


class Provider:
    """Discovery, JWKS, token and revocation endpoints; counts and records what it was sent."""

    def __init__(self, *, revocation: bool = True, insecure: str | None = None) -> None:
        self.discoveries = 0
        self.jwks_fetches = 0
        self.forms: list[dict[str, str]] = []
        self.revocation = revocation
        self.insecure = insecure
        self.key, self.jwk = new_key("k1")
        self.published = [self.jwk]
        self.transport = httpx2.MockTransport(self.handle)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            self.discoveries += 1
            await asyncio.sleep(0.02)  # long enough for concurrent callers to pile up
            doc = {
                "issuer": AUTHORITY,
                "authorization_endpoint": f"{AUTHORITY}/authorize",
                "token_endpoint": self.insecure or f"{AUTHORITY}/token",
                "jwks_uri": f"{AUTHORITY}/jwks",
                "userinfo_endpoint": f"{AUTHORITY}/userinfo",
            }
            if self.revocation:
                doc["revocation_endpoint"] = f"{AUTHORITY}/revoke"
            return httpx2.Response(200, json=doc)
        if path == "/jwks":
            self.jwks_fetches += 1
            return httpx2.Response(200, json={"keys": self.published})
        form = dict(parse_qsl(request.content.decode()))
        self.forms.append(form)
        if path == "/token":
            if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "spent":
                return httpx2.Response(400, json={"error": "invalid_grant<script>", "error_description": "spent"})
            return httpx2.Response(200, json={"access_token": "at", "refresh_token": "rt", "expires_in": 600})
        if path == "/revoke":
            return httpx2.Response(200)
        return httpx2.Response(404)

    def id_token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": AUTHORITY, "aud": CLIENT, "sub": "u1", "nonce": "n1", "iat": now, "exp": now + 300}
        return jwt.encode({**claims, **overrides}, self.key, algorithm="RS256", headers={"kid": self.jwk["kid"]})


@pytest.mark.parametrize(
    "url",
    ["https://ims.bentley.com", "http://127.0.0.1:8080", "http://localhost:5/x", "http://[::1]:9/token"],
)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    assert require_secure(url, "authority") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://ims.bentley.com",
        "http://localhost@evil.example/token",  # userinfo: the host is evil.example
        "http://127.0.0.1.evil.example/token",
        "http://127.1/token",  # read as loopback by some parsers only
        "ftp://ims.bentley.com",
        "not a url",
    ],
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(AuthError, match="not an https URL"):
        require_secure(url, "authority")


async def test_an_http_endpoint_in_discovery_is_refused() -> None:
    provider = Provider(insecure="http://ims.example.test/token")
    with pytest.raises(AuthError, match=r"token endpoint 'http://ims\.example\.test/token' is not an https URL"):
        await discover(AUTHORITY, provider.transport)


def test_hosted_and_desktop_clients_refuse_a_plain_http_authority() -> None:
    with pytest.raises(AuthError, match="https"):
        OidcClient("http://ims.example.test", CLIENT)


async def test_one_discovery_serves_many_concurrent_callers() -> None:
    provider = Provider()
    client = OidcClient(AUTHORITY + "/", CLIENT, transport=provider.transport)
    configs = await asyncio.gather(*(client.config() for _ in range(20)))
    assert provider.discoveries == 1
    assert {c.token_endpoint for c in configs} == {f"{AUTHORITY}/token"}
    assert configs[0].jwks_uri == f"{AUTHORITY}/jwks" and configs[0].revocation_endpoint == f"{AUTHORITY}/revoke"


async def test_public_client_forms_carry_no_secret_and_confidential_ones_do() -> None:
    provider = Provider()
    public = OidcClient(AUTHORITY, "native", transport=provider.transport)
    reply = await public.exchange_code("c1", "v" * 43, "http://127.0.0.1:5/callback")
    assert reply.ok and reply.access_token == "at" and reply.refresh_token == "rt"
    assert provider.forms[-1] == {
        "grant_type": "authorization_code",
        "code": "c1",
        "redirect_uri": "http://127.0.0.1:5/callback",
        "code_verifier": "v" * 43,
        "client_id": "native",
    }
    confidential = OidcClient(AUTHORITY, "svc", client_secret="s3cret", transport=provider.transport)
    await confidential.client_credentials("itwin-platform")
    assert provider.forms[-1] == {
        "grant_type": "client_credentials",
        "scope": "itwin-platform",
        "client_id": "svc",
        "client_secret": "s3cret",
    }
    await confidential.refresh("r1")
    assert provider.forms[-1]["grant_type"] == "refresh_token" and provider.forms[-1]["refresh_token"] == "r1"


async def test_a_refusal_is_a_reply_with_a_sanitised_error_code() -> None:
    provider = Provider()
    reply = await OidcClient(AUTHORITY, CLIENT, transport=provider.transport).refresh("spent")
    assert not reply.ok and reply.status == 400
    assert reply.error_code == "invalid_grantscript"  # the description is never echoed, markup stripped


async def test_an_unreachable_token_endpoint_is_an_auth_error() -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("no route", request=request)

    client = OidcClient(AUTHORITY, CLIENT, transport=httpx2.MockTransport(down))
    with pytest.raises(AuthError, match="Could not reach the token endpoint"):
        await client.client_credentials("s", endpoint=f"{AUTHORITY}/connect/token")


async def test_revocation_when_advertised_and_none_when_not() -> None:
    provider = Provider()
    assert await OidcClient(AUTHORITY, CLIENT, transport=provider.transport).revoke("rt", "refresh_token") == 200
    assert provider.forms[-1] == {"token": "rt", "token_type_hint": "refresh_token", "client_id": CLIENT}
    quiet = Provider(revocation=False)
    assert await OidcClient(AUTHORITY, CLIENT, transport=quiet.transport).revoke("rt", "refresh_token") is None
    assert quiet.forms == []


async def test_authorization_url_has_pkce_state_nonce_and_no_resource() -> None:
    provider = Provider()
    verifier, challenge = pkce_pair()
    url = await OidcClient(AUTHORITY, CLIENT, transport=provider.transport).authorization_url(
        redirect_uri="https://mcp.example/oauth/callback",
        scope="openid email",
        state="s1",
        nonce="n1",
        challenge=challenge,
    )
    parsed = httpx2.URL(url)
    query = dict(parsed.params)
    assert f"{parsed.scheme}://{parsed.host}{parsed.path}" == f"{AUTHORITY}/authorize"
    assert query == {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": "https://mcp.example/oauth/callback",
        "scope": "openid email",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert challenge == expected and 43 <= len(verifier) <= 128


async def test_an_id_token_is_verified_against_the_jwks() -> None:
    provider = Provider()
    client = OidcClient(AUTHORITY, CLIENT, transport=provider.transport)
    claims = await client.verify_id_token(provider.id_token(email="ann@example.com"), "n1")
    assert claims["sub"] == "u1" and claims["email"] == "ann@example.com"
    await client.verify_id_token(provider.id_token(), "n1")
    assert provider.jwks_fetches == 1  # the key set is cached


@pytest.mark.parametrize(
    ("overrides", "nonce", "reason"),
    [
        ({}, "other", "nonce"),
        ({"aud": "someone-else"}, "n1", "InvalidAudienceError"),
        ({"iss": "https://evil.example"}, "n1", "InvalidIssuerError"),
        ({"exp": int(time.time()) - 600}, "n1", "ExpiredSignatureError"),
    ],
)
async def test_an_id_token_that_does_not_match_is_refused(overrides: dict[str, Any], nonce: str, reason: str) -> None:
    provider = Provider()
    with pytest.raises(AuthError, match=reason):
        await OidcClient(AUTHORITY, CLIENT, transport=provider.transport).verify_id_token(
            provider.id_token(**overrides), nonce
        )


async def test_a_forged_id_token_is_refused() -> None:
    provider = Provider()
    client = OidcClient(AUTHORITY, CLIENT, transport=provider.transport)
    forger, _ = new_key("k1")  # same kid, another key
    now = int(time.time())
    forged = jwt.encode(
        {"iss": AUTHORITY, "aud": CLIENT, "sub": "u1", "nonce": "n1", "iat": now, "exp": now + 60},
        forger,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(AuthError, match="InvalidSignatureError"):
        await client.verify_id_token(forged, "n1")
    unsigned = jwt.encode({"iss": AUTHORITY, "aud": CLIENT, "nonce": "n1"}, "", algorithm="none")
    with pytest.raises(AuthError, match="not valid"):
        await client.verify_id_token(unsigned, "n1")


async def test_a_rotated_signing_key_is_fetched_once() -> None:
    provider = Provider()
    client = OidcClient(AUTHORITY, CLIENT, transport=provider.transport)
    await client.verify_id_token(provider.id_token(), "n1")
    provider.key, provider.jwk = new_key("k2")
    provider.published = [provider.jwk]
    assert (await client.verify_id_token(provider.id_token(), "n1"))["sub"] == "u1"
    assert provider.jwks_fetches == 2
    stranger, stranger_jwk = new_key("k3")  # published nowhere
    provider.key, provider.jwk = stranger, stranger_jwk
    with pytest.raises(AuthError, match="key it does not publish"):
        await client.verify_id_token(provider.id_token(), "n1")
    assert provider.jwks_fetches == 3  # one more try, not a loop
    with pytest.raises(AuthError, match="key it does not publish"):
        await OidcClient(AUTHORITY, CLIENT, transport=provider.transport).verify_id_token(provider.id_token(), "n1")
    assert provider.jwks_fetches == 4  # a set fetched just now is not fetched twice


def test_claims_are_read_with_pyjwt_for_display_only() -> None:
    token = jwt.encode({"sub": "u1", "email": "ann@example.com", "name": "Ann"}, "k" * 32, algorithm="HS256")
    assert identity(unverified_claims(token)) == ("u1", "ann@example.com", "Ann")
    assert unverified_claims("not-a-jwt") == {} and unverified_claims(None) == {}
    assert identity({"given_name": "Ada", "family_name": "L", "upn": "ada@corp"}) == (None, "ada@corp", "Ada L")


def test_token_reply_reads_numbers_and_tokens_defensively() -> None:
    reply = TokenReply(200, {"access_token": "", "expires_in": True, "refresh_expires_in": 60})
    assert not reply.ok and reply.access_token is None
    assert reply.seconds("expires_in", default=3600.0) == 3600.0  # a boolean is not a duration
    assert reply.seconds("refresh_token_expires_in", "refresh_expires_in") == 60.0
    assert TokenReply(400, {}).error_code == "no error code"
