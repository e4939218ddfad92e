"""Shared fixtures: a seeded sandbox database made once per run, copied per test, and MCP clients on it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.sandbox.imodel import SANDBOX_IMODELS, SANDBOX_ITWINS
from itwin_insights_mcp.sandbox.seed import ensure_seeded
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
