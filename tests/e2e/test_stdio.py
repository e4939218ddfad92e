"""End to end over stdio: the installed command as a child process, driven by the SDK's own client."""

from __future__ import annotations

import json
import subprocess

import pytest
from mcp import Client, StdioServerParameters

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.settings import PROFILES

from ..conftest import ITWIN_ID
from .conftest import COMMAND, child_env

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_session_lists_every_tool_and_calls_one(sandbox_db: str, mode: str) -> None:
    params = StdioServerParameters(command=COMMAND, args=["serve"], env=child_env(sandbox_db))
    async with Client(params, mode=mode) as client:
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        default = set(PROFILES["reporting-v1"] or ())
        assert names == {op.tool for op in load_catalog().current() if op.toolset in default} | {
            "wait_for_extraction",
            "export_odata_entity",
            "read_skill",
            "auth_status",
            "describe_imodel",
            "query_imodel",
            "manage_exports",
        }
        assert len([op for op in load_catalog().current() if op.family.name == "reporting-v1"]) == 60
        result = await client.call_tool("list_imodels", {"iTwinId": ITWIN_ID})
        assert not result.is_error
        assert {m["displayName"] for m in result.structured_content["iModels"]} == {
            "Sample Office Building",
            "Sample Site Utilities",
        }
        wrong = await client.call_tool("get_report", {"reportId": "nope"})
        assert wrong.is_error and "ReportNotFound" in wrong.content[0].text  # type: ignore[union-attr]


def test_stdout_carries_only_protocol_messages(sandbox_db: str) -> None:
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_itwins", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_mapping", "arguments": {}}},
    ]
    process = subprocess.Popen(
        [COMMAND, "serve", "--log-level", "DEBUG"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(sandbox_db),
    )
    assert process.stdin is not None and process.stdout is not None
    for request in requests:
        process.stdin.write((json.dumps(request) + "\n").encode())
    process.stdin.flush()
    answered: list[bytes] = []
    while len([line for line in answered if b'"id"' in line]) < 4:  # read until every request is answered
        line = process.stdout.readline()
        assert line, "the server closed stdout early"
        answered.append(line)
    process.stdin.close()
    process.wait(timeout=30)
    stdout = b"".join(answered) + process.stdout.read()
    stderr = process.stderr.read()  # type: ignore[union-attr]
    lines = [line for line in stdout.decode().splitlines() if line.strip()]
    messages = [json.loads(line) for line in lines]  # every line is JSON-RPC, nothing else
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    assert sorted(m["id"] for m in messages if "id" in m) == [1, 2, 3, 4]
    invalid = next(m for m in messages if m.get("id") == 4)
    assert invalid["result"]["isError"] is True and "imodelId" in invalid["result"]["content"][0]["text"]
    assert b"SANDBOX" in stderr  # the loud notice goes to stderr


def test_help_and_bad_configuration_exit_cleanly(tmp_path: object) -> None:
    shown = subprocess.run([COMMAND, "--help"], capture_output=True, check=True, timeout=30)
    assert b"serve" in shown.stdout and b"sandbox" in shown.stdout
    serve_help = subprocess.run([COMMAND, "serve", "--help"], capture_output=True, check=True, timeout=30)
    assert b"ITWIN_INSIGHTS_BACKEND" in serve_help.stdout
    env = child_env("unused.db", ITWIN_INSIGHTS_BACKEND="bentley")
    bad = subprocess.run([COMMAND, "serve"], capture_output=True, env=env, timeout=30, check=False)
    assert bad.returncode == 2
    assert b"needs credentials" in bad.stderr and b"Traceback" not in bad.stderr
