"""InsightsClient: retries, error mapping, paging tokens and token refresh, against httpx2.MockTransport."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from itwin_insights_mcp.api.auth import ClientCredentialsProvider, StaticTokenProvider
from itwin_insights_mcp.api.client import InsightsClient, RetryPolicy, next_page_token
from itwin_insights_mcp.errors import ApiError, AuthError, TransportError

pytestmark = pytest.mark.anyio


class Recorder:
    """A MockTransport handler that answers from a script and remembers every request."""

    def __init__(self, *responses: httpx2.Response | Exception) -> None:
        self.script = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def make_client(handler: Recorder, sleeps: list[float], **policy: float) -> InsightsClient:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return InsightsClient(
        base_url="https://api.example.test",
        token_provider=StaticTokenProvider("tok-123"),
        transport=httpx2.MockTransport(handler),
        retry=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=fake_sleep,
    )


def ok(body: object) -> httpx2.Response:
    return httpx2.Response(200, json=body)


async def test_429_is_retried_after_retry_after_then_succeeds() -> None:
    handler = Recorder(
        httpx2.Response(
            429, headers={"Retry-After": "2"}, json={"error": {"code": "TooManyRequests", "message": "slow down"}}
        ),
        ok({"report": {"id": "r1"}}),
    )
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        response = await client.request("POST", "/insights/reporting/reports", json_body={"displayName": "x"})
    assert response.body == {"report": {"id": "r1"}}
    assert response.attempts == 2
    assert len(handler.requests) == 2
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.25  # Retry-After honoured, plus bounded jitter


async def test_429_gives_up_when_retry_after_exceeds_the_cap() -> None:
    handler = Recorder(
        httpx2.Response(
            429, headers={"Retry-After": "120"}, json={"error": {"code": "TooManyRequests", "message": "wait"}}
        )
    )
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", "/x")
    assert caught.value.status == 429
    assert caught.value.code == "TooManyRequests"
    assert caught.value.retry_after == 120
    assert sleeps == [] and len(handler.requests) == 1


async def test_429_retries_are_bounded_in_count() -> None:
    handler = Recorder(
        httpx2.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "TooManyRequests", "message": "x"}})
    )
    sleeps: list[float] = []
    async with make_client(handler, sleeps, max_retries=3) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", "/x")
    assert len(handler.requests) == 4
    assert caught.value.attempts == 4


async def test_post_is_not_retried_on_503() -> None:
    handler = Recorder(httpx2.Response(503, text="unavailable"), ok({}))
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("POST", "/insights/reporting/datasources/imodels/m/extraction/run")
    assert caught.value.status == 503
    assert len(handler.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_idempotent_methods_are_retried_on_503(method: str) -> None:
    handler = Recorder(httpx2.Response(503), httpx2.Response(502), ok({"ok": True}))
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        response = await client.request(method, "/x")
    assert response.body == {"ok": True}
    assert len(handler.requests) == 3 and len(sleeps) == 2


async def test_post_connection_error_is_not_retried_and_says_why() -> None:
    handler = Recorder(httpx2.ConnectError("refused"))
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        with pytest.raises(TransportError) as caught:
            await client.request("POST", "/x")
    assert len(handler.requests) == 1
    assert "not retried" in str(caught.value)
    assert "tok-123" not in str(caught.value)


async def test_get_connection_error_is_retried() -> None:
    handler = Recorder(httpx2.ReadTimeout("slow"), ok({"v": 1}))
    sleeps: list[float] = []
    async with make_client(handler, sleeps) as client:
        response = await client.request("GET", "/x")
    assert response.body == {"v": 1} and len(handler.requests) == 2


async def test_error_body_is_mapped_with_code_target_and_details() -> None:
    body = {
        "error": {
            "code": "InvalidInsightsRequest",
            "message": "Bad formula.",
            "target": "formula",
            "details": [{"code": "InvalidValue", "message": "x", "target": "formula"}],
        }
    }
    handler = Recorder(httpx2.Response(422, json=body))
    async with make_client(handler, []) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("POST", "/x", json_body={})
    error = caught.value
    assert (error.status, error.code, error.message, error.target) == (
        422,
        "InvalidInsightsRequest",
        "Bad formula.",
        "formula",
    )
    assert error.details[0].code == "InvalidValue"


async def test_non_json_error_body_keeps_status_and_text() -> None:
    handler = Recorder(httpx2.Response(500, text="<html>boom</html>"))
    async with make_client(handler, [], max_retries=0) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", "/x")
    assert caught.value.code == "Http500" and "boom" in caught.value.message


async def test_request_carries_bearer_and_accept_headers() -> None:
    handler = Recorder(httpx2.Response(204))
    async with make_client(handler, []) as client:
        response = await client.request("DELETE", "/x", accept="application/vnd.bentley.itwin-platform.v2+json")
    sent = handler.requests[0]
    assert sent.headers["authorization"] == "Bearer tok-123"
    assert sent.headers["accept"] == "application/vnd.bentley.itwin-platform.v2+json"
    assert response.body is None and response.status == 204


def test_next_page_token_reads_links_next() -> None:
    body = {
        "_links": {
            "self": {"href": "https://h/x?$top=2"},
            "next": {"href": "https://h/x/?$top=2&$continuationToken=abc%3D%3D"},
        }
    }
    assert next_page_token(body) == "abc=="
    assert next_page_token({"_links": {"self": {"href": "https://h/x"}}}) is None
    assert next_page_token({"_links": {"next": None}}) is None
    assert next_page_token({"_links": {"next": {"href": "https://h/i?$skip=200&$top=100"}}}, "$skip") == "200"
    assert next_page_token("not a dict") is None


def token_endpoint(counter: dict[str, int], delay: float = 0.05) -> httpx2.MockTransport:
    async def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx2.Response(200, json={"token_endpoint": "https://ims.example.test/connect/token"})
        if request.url.path == "/connect/token":
            counter["token"] += 1
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            assert form["grant_type"] == "client_credentials"
            await asyncio.sleep(delay)
            return httpx2.Response(
                200, json={"access_token": f"svc-{counter['token']}", "expires_in": 3600, "token_type": "Bearer"}
            )
        counter["api"] += 1
        return httpx2.Response(200, json={"auth": request.headers["authorization"]})

    return httpx2.MockTransport(handler)


async def test_client_credentials_refresh_once_under_20_concurrent_calls() -> None:
    counter = {"token": 0, "api": 0}
    transport = token_endpoint(counter)
    provider = ClientCredentialsProvider(
        client_id="app",
        client_secret="s3cret",
        authority="https://ims.example.test",
        scopes="itwin-platform",
        transport=transport,
    )
    async with InsightsClient(
        base_url="https://api.example.test", token_provider=provider, transport=transport
    ) as client:
        results = await asyncio.gather(*(client.request("GET", f"/r/{i}") for i in range(20)))
    assert counter["token"] == 1
    assert provider.refresh_count == 1
    assert {r.body["auth"] for r in results} == {"Bearer svc-1"}


async def test_client_credentials_refresh_before_expiry() -> None:
    now = [1000.0]
    counter = {"token": 0, "api": 0}
    provider = ClientCredentialsProvider(
        client_id="app",
        client_secret="s",
        authority="https://ims.example.test",
        scopes="itwin-platform",
        transport=token_endpoint(counter, 0),
        clock=lambda: now[0],
    )
    assert await provider.get_token() == "svc-1"
    now[0] += 3600 - 30  # inside the refresh margin
    assert await provider.get_token() == "svc-2"
    assert counter["token"] == 2


async def test_refused_credentials_raise_auth_error_without_the_secret() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if "openid-configuration" in request.url.path:
            return httpx2.Response(404)
        return httpx2.Response(400, json={"error": "invalid_client"})

    provider = ClientCredentialsProvider(
        client_id="app",
        client_secret="very-secret-value",
        authority="https://ims.example.test",
        scopes="itwin-platform",
        transport=httpx2.MockTransport(handler),
    )
    with pytest.raises(AuthError) as caught:
        await provider.get_token()
    assert "very-secret-value" not in str(caught.value)
    assert "/connect/token" in str(caught.value)


async def test_401_with_refreshable_provider_retries_once_with_a_new_token() -> None:
    counter = {"token": 0, "api": 0}
    token_transport = token_endpoint(counter, 0)
    seen: list[str] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        if len(seen) == 1:
            return httpx2.Response(401, json={"error": {"code": "Unauthorized", "message": "expired"}})
        return httpx2.Response(200, json={"ok": True})

    provider = ClientCredentialsProvider(
        client_id="a",
        client_secret="b",
        authority="https://ims.example.test",
        scopes="itwin-platform",
        transport=token_transport,
    )
    async with InsightsClient(
        base_url="https://api.example.test", token_provider=provider, transport=httpx2.MockTransport(api)
    ) as client:
        response = await client.request("GET", "/x")
    assert response.body == {"ok": True}
    assert seen == ["Bearer svc-1", "Bearer svc-2"]
    assert json.dumps(seen)  # both tokens went only to the API under test
