"""Regressions for what an upstream (Bentley, or a proxy in front of it) can do to a tool call (issue 13, 3/12/13).

The server runs with the Bentley backend, pointed in process at a fake upstream whose behaviour each test picks
by the mapping id it asks for: echo the request headers in an error body, answer 200 with a truncated or
wrong-shaped body, or answer 429 with a `Retry-After` that is not a number.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from itwin_insights_mcp.api.auth import StaticTokenProvider
from itwin_insights_mcp.api.client import InsightsClient, RetryPolicy
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXVzZXI.U0VDUkVULVNJR05BVFVSRQ"  # a fake bearer token
IMODEL = "11111111-1111-4111-8111-111111111111"
MAPPING = {"id": "m", "mappingName": "M", "description": "", "extractionEnabled": True, "_links": {}}
_seen: dict[str, int] = {}


async def _upstream(request: Request) -> Response:
    behaviour = request.path_params["mappingId"]
    _seen[behaviour] = _seen.get(behaviour, 0) + 1
    headers = {k: v for k, v in request.headers.items()}
    if behaviour == "echo-json":
        message = f"Bad request; you sent {json.dumps(headers)}"
        return JSONResponse({"error": {"code": "InvalidRequest", "message": message}}, status_code=400)
    if behaviour == "echo-text":
        return PlainTextResponse(f"proxy error, request was: {headers}", status_code=400)
    if behaviour == "truncated":
        return Response('{"mapping": {"id": "m", "mappingNa', media_type="application/json")
    if behaviour == "wrong-shape":
        return JSONResponse({"mapping": ["not", "an", "object"]})
    if behaviour == "retry-soon":
        if _seen[behaviour] == 1:
            return JSONResponse(
                {"error": {"code": "TooManyRequests"}}, status_code=429, headers={"Retry-After": "soon"}
            )
        return JSONResponse({"mapping": MAPPING})
    return JSONResponse({"error": {"code": "MappingNotFound", "message": "no"}}, status_code=404)


UPSTREAM = Starlette(
    routes=[Route("/insights/reporting/datasources/imodels/{imodelId}/mappings/{mappingId}", _upstream)]
)


@pytest.fixture
async def bentley() -> AsyncIterator[Client]:
    settings = Settings(backend="bentley", access_token=SECRET, profile="all")
    api = InsightsClient(
        base_url="https://api.bentley.example",
        token_provider=StaticTokenProvider(SECRET),
        transport=httpx2.ASGITransport(app=UPSTREAM),
        retry=RetryPolicy(max_retries=2, max_wait_seconds=1.0, max_total_wait_seconds=2.0, backoff_base_seconds=0.01),
    )
    async with api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def _get_mapping(client: Client, behaviour: str) -> CallToolResult:
    return await client.call_tool("get_mapping", {"imodelId": IMODEL, "mappingId": behaviour})


@pytest.mark.parametrize("behaviour", ["echo-json", "echo-text"])
async def test_upstream_error_never_puts_the_token_in_front_of_the_agent(bentley: Client, behaviour: str) -> None:
    result = await _get_mapping(bentley, behaviour)
    everything = _text(result) + json.dumps(result.structured_content or {})
    assert result.is_error
    assert SECRET not in everything
    assert SECRET.split(".")[2] not in everything  # not even the signature part


@pytest.mark.parametrize("behaviour", ["truncated", "wrong-shape"])
async def test_a_broken_200_body_is_an_error_not_a_success(bentley: Client, behaviour: str) -> None:
    result = await _get_mapping(bentley, behaviour)
    assert result.is_error, _text(result)
    assert "Internal error" not in _text(result)


async def test_a_retry_after_that_is_not_a_number_means_a_default_backoff(bentley: Client) -> None:
    _seen.pop("retry-soon", None)
    result = await _get_mapping(bentley, "retry-soon")
    assert not result.is_error, _text(result)
    assert _seen["retry-soon"] == 2
    structured: dict[str, Any] = dict(result.structured_content or {})
    assert structured["mapping"]["id"] == "m"
