"""End to end over streamable HTTP: a real `serve --transport http` process on 127.0.0.1."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from mcp import Client

from ..conftest import ITWIN_ID

pytestmark = pytest.mark.anyio

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_session(serve_process: tuple[str, subprocess.Popen[bytes]], mode: str) -> None:
    base, _ = serve_process
    async with Client(f"{base}/mcp", mode=mode) as client:  # type: ignore[arg-type]
        tools = await client.list_tools()
        assert len(tools.tools) == 69
        result = await client.call_tool("list_reports", {"projectId": ITWIN_ID})
        assert not result.is_error and result.structured_content["reports"] == []  # type: ignore[index]
        created = await client.call_tool("create_report", {"projectId": ITWIN_ID, "displayName": "Over HTTP"})
        assert not created.is_error


def test_healthz_and_host_origin_checks(serve_process: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, _ = serve_process
    health = httpx.get(f"{base}/healthz")
    assert health.json() == {"status": "ok", "version": health.json()["version"], "backend": "sandbox", "auth": "none"}
    ok = httpx.post(f"{base}/mcp", json=INIT, headers=HEADERS)
    assert ok.status_code == 200
    rebinding = httpx.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Host": "evil.example.com"})
    assert rebinding.status_code == 421
    foreign = httpx.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Origin": "https://evil.example.com"})
    assert foreign.status_code == 403
    local_origin = httpx.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Origin": "http://localhost:3000"})
    assert local_origin.status_code == 200


def test_non_loopback_bind_requires_allowed_hosts(sandbox_db: str) -> None:
    from .conftest import COMMAND, child_env

    done = subprocess.run(
        [COMMAND, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        env=child_env(sandbox_db),
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and b"ITWIN_INSIGHTS_ALLOWED_HOSTS" in done.stderr


async def list_over_http(url: str, headers: dict[str, str]) -> set[str]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        return {t.name for t in (await client.list_tools()).tools}


async def test_headers_narrow_but_never_widen(sandbox_db: str) -> None:
    from .conftest import http_server

    with http_server(sandbox_db, "--toolsets", "reports,odata") as (base, _):
        url = f"{base}/mcp"
        everything = await list_over_http(url, {})
        assert everything and all(not n.startswith(("list_mappings", "create_group")) for n in everything)
        odata = await list_over_http(url, {"X-MCP-Toolsets": "odata"})
        assert odata == {
            "get_odata_service",
            "get_odata_metadata",
            "get_odata_entity_page",
            "export_odata_entity",
            "read_skill",
            "auth_status",
        }
        read_only = await list_over_http(url, {"X-MCP-Read-Only": "true"})
        assert read_only and "create_report" not in read_only and "get_report" in read_only
        widened = await list_over_http(url, {"X-MCP-Toolsets": "mappings", "X-MCP-Tools": "list_mappings"})
        assert widened == {"read_skill", "auth_status"}  # a header cannot add what the server does not expose
        excluded = await list_over_http(url, {"X-MCP-Exclude-Tools": "delete_report"})
        assert excluded == everything - {"delete_report"}
