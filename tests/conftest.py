"""Shared fixtures: a seeded sandbox database made once per run, copied per test, and MCP clients on it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.sandbox.imodels import SANDBOX_IMODELS, SANDBOX_ITWINS
from itwin_insights_mcp.sandbox.imodels.seed import ensure_seeded
from itwin_insights_mcp.sandbox.store import Store
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

ITWIN_ID = SANDBOX_ITWINS[0].id
BUILDING_ID = SANDBOX_IMODELS[0].id
SITE_ID = SANDBOX_IMODELS[1].id


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run under anyio (the MCP SDK's own layer) on asyncio; modules opt in with `pytestmark`."""
    return "asyncio"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data, generated once per test run."""
    path = tmp_path_factory.mktemp("template") / "sandbox.db"
    store = Store(str(path))
    ensure_seeded(store)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture
def sandbox_db(template_db: Path, tmp_path: Path) -> str:
    """A private copy of the seeded database for one test."""
    target = tmp_path / "sandbox.db"
    shutil.copy(template_db, target)
    return str(target)


@pytest.fixture
def sandbox_settings(sandbox_db: str) -> Settings:
    return Settings(backend="sandbox", sandbox_db=sandbox_db)


@pytest.fixture
async def mcp(sandbox_settings: Settings) -> AsyncIterator[Client]:
    """A real MCP client session, in process, on a server backed by the sandbox."""
    async with open_client(sandbox_settings) as api:
        server = build_server(sandbox_settings, api)
        async with Client(server, raise_exceptions=True) as client:
            yield client


@pytest.fixture(autouse=True)
def results_conform_to_output_schema(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every tool result any test receives is checked as a TypeScript-SDK 1.x host checks it: when the tool declares
    an `outputSchema`, `structuredContent` (error results included) must be absent or conform (Draft 2020-12)."""
    from jsonschema import Draft202012Validator

    original = Client.call_tool
    checked: list[str] = []

    async def call_tool(self: Client, name: str, arguments: dict[str, Any] | None = None, *a: Any, **k: Any) -> Any:
        result = await original(self, name, arguments, *a, **k)
        schemas: dict[str, dict[str, Any] | None] | None = getattr(self, "_conformance_schemas", None)
        if schemas is None or name not in schemas:
            listed = await self.list_tools()
            schemas = {tool.name: tool.output_schema for tool in listed.tools}
            self._conformance_schemas = schemas  # type: ignore[attr-defined]
        schema = schemas.get(name)
        if schema is not None and result.structured_content is not None:
            errors = sorted(Draft202012Validator(schema).iter_errors(result.structured_content), key=str)
            assert not errors, f"{name}: structuredContent does not match its outputSchema: {errors[0].message}"
        elif schema is not None:
            assert result.is_error, f"{name}: declares an outputSchema but returned no structuredContent"
        checked.append(name)
        return result

    monkeypatch.setattr(Client, "call_tool", call_tool)
    return checked
