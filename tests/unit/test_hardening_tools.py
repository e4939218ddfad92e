"""Regression tests for issue 13's tool-layer and client items: ids that are not ids, upstream error bodies that echo
credentials, results that would flood the context, malformed Retry-After, wrong-shaped 2xx and trickling replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client

from itwin_insights_mcp.api.auth import StaticTokenProvider
from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.api.client import InsightsClient, RetryPolicy
from itwin_insights_mcp.api.validation import unencodable
from itwin_insights_mcp.errors import ApiError, TransportError
from itwin_insights_mcp.sandbox.wire import as_uri
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.server.results import error_payload
from itwin_insights_mcp.server.tools import build_request
from itwin_insights_mcp.settings import Settings
from tests.contract.helpers import text_of

pytestmark = pytest.mark.anyio

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2lnbmF0dXJlLXNlY3JldA"
MAPPING = "5d9d7e9e-7f4b-4d8b-9b5a-0c1d2e3f4a5b"
IMODEL = "0d9d7e9e-7f4b-4d8b-9b5a-0c1d2e3f4a5b"


@asynccontextmanager
async def upstream(handler: Callable[[httpx2.Request], httpx2.Response], **settings: Any) -> AsyncIterator[Client]:
    """A server on the Bentley backend whose upstream is `handler` (in process, no network)."""
    options: dict[str, Any] = {"backend": "bentley", "access_token": TOKEN, **settings}
    config = Settings(**options)
    api = InsightsClient(
        base_url="https://api.example.test",
        token_provider=StaticTokenProvider(TOKEN),
        transport=httpx2.MockTransport(handler),
        retry=RetryPolicy(max_retries=0),
        timeout_seconds=config.timeout_seconds,
    )
    async with api, Client(build_server(config, api), raise_exceptions=True) as client:
        yield client


def never(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError(f"nothing may be sent, got {request.method} {request.url}")


@pytest.mark.parametrize("bad", [".", "..", "...", "a/b", "x\n", "\u0000", "", " ", "a\\b", "x" * 2000])
async def test_ids_that_are_not_ids_never_reach_the_api(bad: str) -> None:
    async with upstream(never) as client:
        result = await client.call_tool("delete_group", {"imodelId": IMODEL, "mappingId": MAPPING, "groupId": bad})
    assert result.is_error
    assert error_payload(result)["code"] == "InvalidArguments"
    assert "groupId" in text_of(result) and "nothing was sent" in text_of(result)


def test_build_request_refuses_a_dot_segment_even_without_validation() -> None:
    op = load_catalog()["delete_group_property"]
    args = {"imodelId": IMODEL, "mappingId": MAPPING, "groupId": "g", "propertyId": ".."}
    with pytest.raises(Exception, match="dot segment"):
        build_request(op, args)


async def test_a_valid_id_still_goes_out_percent_encoded() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.raw_path.decode())
        return httpx2.Response(204)

    async with upstream(handler) as client:
        result = await client.call_tool("delete_group", {"imodelId": IMODEL, "mappingId": MAPPING, "groupId": "a b.c"})
    assert not result.is_error
    assert seen == [f"/insights/reporting/datasources/imodels/{IMODEL}/mappings/{MAPPING}/groups/a%20b.c"]


async def test_an_upstream_error_echoing_the_token_is_scrubbed_and_summarised() -> None:
    echoed = {
        "error": {
            "code": "BadGateway",
            "message": f"proxy saw Authorization: Bearer {TOKEN} and cookie=abcdef123456",
            "target": "x" * 5000,
            "details": [{"code": "Echo", "message": f"token={TOKEN}"}] * 100,
        }
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json=echoed)

    async with upstream(handler) as client:
        result = await client.call_tool("get_mapping", {"imodelId": IMODEL, "mappingId": MAPPING})
    dumped = result.model_dump_json(by_alias=True)
    assert result.is_error
    assert TOKEN not in dumped and "abcdef123456" not in dumped and "c2lnbmF0dXJl" not in dumped
    assert "[REDACTED]" in text_of(result)
    assert len(dumped) < 30_000  # 100 details of a 5,000-character target were bounded


async def test_an_html_error_page_echoing_headers_is_scrubbed() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        page = f"<html>headers: {request.headers['authorization']}</html>"
        return httpx2.Response(502, text=page, headers={"content-type": "text/html"})

    async with upstream(handler) as client:
        result = await client.call_tool("list_mappings", {"imodelId": IMODEL})
    assert result.is_error and TOKEN not in result.model_dump_json(by_alias=True)


@pytest.mark.parametrize("body", ['{"mappings": [{"id": "1"', '{"unexpected": true}', "[1, 2, 3]", "<html>ok</html>"])
async def test_a_truncated_or_wrong_shaped_success_is_an_error(body: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text=body, headers={"content-type": "application/json"})

    async with upstream(handler) as client:
        result = await client.call_tool("get_mapping", {"imodelId": IMODEL, "mappingId": MAPPING})
    assert result.is_error and result.structured_content is None
    assert error_payload(result)["code"] == "UnexpectedResponse"


async def test_a_huge_list_is_trimmed_to_the_byte_budget_with_a_note() -> None:
    mapping = {"id": MAPPING, "mappingName": "M", "description": "d" * 100, "extractionEnabled": True}
    body = {"mappings": [mapping] * 200_000, "_links": {"next": {"href": "https://x/?$continuationToken=abc"}}}
    payload = json.dumps(body)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text=payload, headers={"content-type": "application/json"})

    async with upstream(handler, max_result_bytes=65_536) as client:
        result = await client.call_tool("list_mappings", {"imodelId": IMODEL})
    assert not result.is_error
    assert len(result.model_dump_json(by_alias=True).encode()) < 70_000
    assert 0 < len(result.structured_content["mappings"]) < 200_000
    assert result.structured_content["nextContinuationToken"] == "abc"
    assert "showing" in text_of(result) and "of 200000" in text_of(result)


async def test_a_huge_cell_value_is_cut_in_odata_pages() -> None:
    rows = [{"ECInstanceId": f"0x{i:x}", "Big": "y" * 1_000_000} for i in range(10)]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"@odata.context": "c", "value": rows})

    async with upstream(handler, max_result_bytes=65_536) as client:
        args = {"reportId": MAPPING, "region": "EUS", "manifestId": "m", "entityType": "E"}
        result = await client.call_tool("get_odata_entity_page", args)
    assert not result.is_error
    assert len(result.model_dump_json(by_alias=True).encode()) < 70_000
    assert result.structured_content["rowsInPage"] == 10


async def test_a_huge_bad_value_is_quoted_briefly() -> None:
    async with upstream(never) as client:
        result = await client.call_tool("create_mapping", {"imodelId": IMODEL, "mappingName": "!" * 10_000_000})
    assert result.is_error and len(text_of(result)) < 5_000


@pytest.mark.parametrize("header", ["soon", "", "Wed, 99 Foo 2026", "1e400", "nan", "-5"])
async def test_a_malformed_retry_after_falls_back_to_the_default_backoff(header: str) -> None:
    sleeps: list[float] = []
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx2.Response(429, headers={"Retry-After": header})
        return httpx2.Response(200, json={"mappings": []})

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = InsightsClient(
        base_url="https://api.example.test",
        token_provider=StaticTokenProvider(TOKEN),
        transport=httpx2.MockTransport(handler),
        sleep=fake_sleep,
    )
    async with client:
        response = await client.request("GET", "/x")
    assert response.body == {"mappings": []}
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 30


async def test_a_trickling_reply_meets_the_total_deadline() -> None:
    class Trickle(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            async def body() -> AsyncIterator[bytes]:
                for _ in range(1000):
                    await asyncio.sleep(0.05)  # each read is quick; the whole reply never ends
                    yield b" "

            return httpx2.Response(200, headers={"content-type": "application/json"}, content=body())

    client = InsightsClient(
        base_url="https://api.example.test",
        token_provider=StaticTokenProvider(TOKEN),
        transport=Trickle(),
        timeout_seconds=0.5,
        retry=RetryPolicy(max_retries=0),
    )
    async with client:
        with pytest.raises(TransportError, match="timed out"):
            await client.request("GET", "/x")


async def test_api_error_keeps_code_message_and_target() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = {"error": {"code": "MappingNotFound", "message": "Requested Mapping is not available.", "target": "id"}}
        return httpx2.Response(404, json=body)

    client = InsightsClient(
        base_url="https://api.example.test",
        token_provider=StaticTokenProvider(TOKEN),
        transport=httpx2.MockTransport(handler),
    )
    async with client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", "/x")
    assert (caught.value.code, caught.value.message, caught.value.target) == (
        "MappingNotFound",
        "Requested Mapping is not available.",
        "id",
    )


@pytest.mark.parametrize("name", ["x.csv\n", "x.csv\r\n", "../x.csv", ".hidden", "a/b.csv", ""])
def test_export_file_names_with_a_trailing_newline_or_a_path_are_refused(name: str, tmp_path: Any) -> None:
    from itwin_insights_mcp.server.local_tools import export_path

    with pytest.raises(ValueError, match="plain file name"):
        export_path(Settings(export_dir=str(tmp_path)), name)


@pytest.mark.parametrize(
    ("arguments", "where"),
    [
        ({"imodelId": IMODEL, "mappingName": "bad\ud800name"}, "mappingName"),
        ({"imodelId": IMODEL, "mappingName": "ok", "description": "x\udfff"}, "description"),
    ],
)
async def test_a_lone_surrogate_is_refused_before_anything_is_sent(arguments: dict[str, Any], where: str) -> None:
    async with upstream(never) as client:
        result = await client.call_tool("create_mapping", arguments)
    assert result.is_error
    assert error_payload(result)["code"] == "InvalidArguments"
    assert where in text_of(result) and "surrogate" in text_of(result)


def test_unencodable_names_the_key_and_the_position() -> None:
    assert unencodable({"a": ["fine", "é", "\U0001f600"]}) == []
    found = [str(p) for p in unencodable({"a": [1, {"b": "xy\ud83d"}], "\udc00": 1})]
    assert len(found) == 2
    assert "a[1].b" in found[0] and "position 2" in found[0] and "U+D83D" in found[0]
    assert "(a key)" in found[1]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/itwins/é x", "/itwins/%C3%A9%20x"),
        ("/odata/r?api-version=v1", "/odata/r?api-version=v1"),
        ("/a%20b", "/a%20b"),
        ("/a%zz", "/a%25zz"),
    ],
)
def test_sandbox_links_are_valid_uris(path: str, expected: str) -> None:
    assert as_uri(path) == expected
