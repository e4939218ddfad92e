"""Hosts we did not write: the TypeScript SDK 1.x client (over stdio and streamable HTTP) and the MCP Inspector CLI.

`tests/hosts/check.mjs` calls every tool of the `all` profile once successfully and once with a bad argument or an
unknown id, and prints a JSON summary. TS SDK 1.x hosts validate `structuredContent` against the tool's outputSchema
on every result, errors included, and throw -32602 when it does not match, so the agent never sees our error text;
Python SDK hosts do not, which is why the in-process contract tests cannot catch it. npm is required: CI installs
it, so a missing npm fails this test rather than skipping it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from .conftest import COMMAND

HOSTS = Path(__file__).parents[1] / "hosts"


def ensure_installed() -> None:
    """`npm ci` the pinned host packages unless node_modules was installed from the current package-lock.json."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are needed for the host checks (.ci/run installs them)"
    installed = HOSTS / "node_modules" / ".package-lock.json"
    lock = HOSTS / "package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HOSTS, check=True, timeout=300)


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    """One run of the host checks (stdio, HTTP, Inspector CLI) against the installed command."""
    ensure_installed()
    done = subprocess.run(
        ["node", "check.mjs", "--command", COMMAND], cwd=HOSTS, capture_output=True, text=True, timeout=240
    )
    assert done.stdout.strip(), f"the host check printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) == result["ok"], "exit status and summary disagree"
    return result


def all_profile_tools() -> set[str]:
    """The tools the `all` profile lists, asked of the server in process (not through the host under test)."""

    async def listed() -> set[str]:
        settings = Settings(backend="sandbox", sandbox_db=":memory:", profile="all")
        async with open_client(settings) as api, Client(build_server(settings, api)) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    return anyio.run(listed)


def run_of(summary: dict[str, Any], transport: str) -> dict[str, Any]:
    return next(run for run in summary["runs"] if run["transport"] == transport)


def describe(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"- {tool}: {'; '.join(found)}" for tool, found in sorted(problems.items()))


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_ts_sdk_client_calls_every_tool_without_a_client_side_exception(
    summary: dict[str, Any], transport: str
) -> None:
    run = run_of(summary, transport)
    assert summary["sdk"].startswith("1."), "the check must use the TypeScript SDK 1.x client"
    assert run["aborted"] is None, f"the walk stopped early: {run['aborted']}"
    assert run["tools"] == len(all_profile_tools()), "the TS client did not list every tool of the `all` profile"
    assert run["calls"] >= 2 * run["tools"]
    assert not run["problems"], (
        f"{len(run['clientExceptions'])} tools threw in the TS SDK {summary['sdk']} client over {transport} "
        f"({', '.join(run['clientExceptions'])}); all findings:\n{describe(run['problems'])}"
    )


def test_inspector_cli_shows_results_and_error_text(summary: dict[str, Any]) -> None:
    inspector = summary["inspectorCli"]
    assert len(inspector["checks"]) == 6
    assert not inspector["problems"], f"Inspector CLI {summary['inspector']}:\n" + "\n".join(inspector["problems"])
