"""End to end over streamable HTTP: a real `serve --transport http` process on 127.0.0.1."""

from __future__ import annotations

import subprocess

import httpx2
import pytest
from mcp import Client

from itwin_insights_mcp_build.distribution import mcpb_manifest

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
    async with Client(f"{base}/mcp", mode=mode) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == {t["name"] for t in mcpb_manifest()["tools"]}  # the default surface
        result = await client.call_tool("list_reports", {"projectId": ITWIN_ID})
        assert not result.is_error and result.structured_content["reports"] == []
        created = await client.call_tool("create_report", {"projectId": ITWIN_ID, "displayName": "Over HTTP"})
        assert not created.is_error


def test_healthz_and_host_origin_checks(serve_process: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, _ = serve_process
    health = httpx2.get(f"{base}/healthz")
    assert health.json() == {"status": "ok", "version": health.json()["version"], "backend": "sandbox", "auth": "none"}
    ok = httpx2.post(f"{base}/mcp", json=INIT, headers=HEADERS)
    assert ok.status_code == 200
    rebinding = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Host": "evil.example.com"})
    assert rebinding.status_code == 421
    foreign = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Origin": "https://evil.example.com"})
    assert foreign.status_code == 403
    local_origin = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Origin": "http://localhost:3000"})
    assert local_origin.status_code == 200


def test_non_loopback_bind_requires_auth_and_allowed_hosts(sandbox_db: str) -> None:
    from .conftest import COMMAND, child_env

    def serve(**env: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [COMMAND, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
            capture_output=True,
            env=child_env(sandbox_db, **env),
            timeout=30,
            check=False,
        )

    open_to_all = serve()
    assert open_to_all.returncode == 2 and b"--auth service" in open_to_all.stderr
    keyed = serve(ITWIN_INSIGHTS_AUTH="service", ITWIN_INSIGHTS_API_KEYS="k1")
    assert keyed.returncode == 2 and b"ITWIN_INSIGHTS_ALLOWED_HOSTS" in keyed.stderr
    no_keys = serve(ITWIN_INSIGHTS_AUTH="service")
    assert no_keys.returncode == 2 and b"ITWIN_INSIGHTS_API_KEYS" in no_keys.stderr


def test_service_mode_requires_an_api_key(sandbox_db: str) -> None:
    from .conftest import COMMAND, child_env, free_port, wait_for

    port = free_port()
    env = child_env(sandbox_db, ITWIN_INSIGHTS_AUTH="service", ITWIN_INSIGHTS_API_KEYS="key-one,key-two")
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process)
        assert httpx2.post(f"{base}/mcp", json=INIT, headers=HEADERS).status_code == 401
        wrong = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Authorization": "Bearer key-three"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
        right = httpx2.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "Authorization": "Bearer key-two"})
        assert right.status_code == 200
        assert httpx2.get(f"{base}/healthz").json()["auth"] == "service"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"key-one" not in stderr and b"key-two" not in stderr
