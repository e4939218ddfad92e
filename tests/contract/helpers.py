"""Small helpers for contract tests: call a tool and insist on success or on a specific error."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import Client
from mcp.types import CallToolResult, TextContent

from itwin_insights_mcp.server.results import error_payload


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured content (or {} for empty replies)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {text_of(result)}"
    return dict(result.structured_content or {})


async def fails(client: Client, tool: str, status: int | None, code: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail with this API status and code; returns the error payload."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {text_of(result)}"
    assert result.structured_content is None, f"{tool}: an error result must carry no structuredContent"
    error = error_payload(result)
    assert error.get("code") == code, f"{tool}: expected {code}, got {error} / {text_of(result)}"
    if status is not None:
        assert error.get("status") == status
    assert "Next step" in text_of(result) or code in ("InvalidArguments", "ToolNotAvailable")
    return dict(error)


async def wait_for_state(client: Client, job_id: str, *, within: float = 60.0) -> dict[str, Any]:
    """Poll get_extraction_status until the job leaves Queued/Running."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status = (await ok(client, "get_extraction_status", jobId=job_id))["status"]
        if status["state"] not in ("Queued", "Running"):
            return dict(status)
        assert asyncio.get_running_loop().time() < deadline, f"extraction {job_id} still {status['state']}"
        await asyncio.sleep(0.05)
