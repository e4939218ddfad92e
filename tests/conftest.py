"""Shared fixtures: a seeded sandbox database made once per run, copied per test, and MCP clients on it."""

from __future__ import annotations

import asyncio
import shutil
import time
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


class BriskClock:
    """Time for in-process servers under test: a pause lasts a tenth of its length in real time but counts in full,
    so `wait_for_extraction` keeps its pace and limits in (virtual) seconds without holding a test for whole
    seconds. Tests that check the waiting itself pass their own clock (tests/unit/test_wait_for_extraction.py)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def now(self) -> float:
        return time.monotonic() + self.ahead

    async def sleep(self, seconds: float) -> None:
        real = seconds / 10
        self.ahead += seconds - real
        await asyncio.sleep(real)


@pytest.fixture(autouse=True)
def brisk_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every server built by `build_server` without a clock gets a BriskClock (one per tool call)."""
    from itwin_insights_mcp.server import app
    from itwin_insights_mcp.server.local_tools import Clock

    def brisk() -> Clock:
        clock = BriskClock()
        return Clock(now=clock.now, sleep=clock.sleep)

    monkeypatch.setattr(app, "Clock", brisk)


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


# -- kinds of test (markers registered in pyproject.toml) ----------------------------------------------------------
# The development loop leaves out the slow and outside-Python kinds:
#     pytest -m "not (e2e or packaging or external or slow)"
# `.ci/run` runs plain `pytest`, so every kind still runs in CI. Keys are node-id prefixes below tests/.
KINDS: dict[str, tuple[str, ...]] = {
    "e2e/": ("e2e",),  # the installed command as a child process, real sockets
    "e2e/test_packaging.py": ("packaging", "external"),  # builds wheel, sdist and .mcpb (npx)
    "e2e/test_node_hosts.py": ("external",),  # the pinned TypeScript SDK and Inspector (npm)
    "e2e/test_oauth.py": ("external",),  # an OpenID Connect provider from npm, a throwaway PostgreSQL
    "unit/test_schema_patterns.py": ("external",),  # node checks each pattern as a JavaScript host would
    "unit/test_capability.py::test_spectral_finds_no_error_in_any_profile": ("external",),  # Spectral from npm
    "unit/test_hardening_tools.py::test_a_huge_list_is_trimmed_to_the_byte_budget_with_a_note": ("slow",),
    "unit/test_jobs.py::test_a_second_process_never_fails_a_live_job": ("slow",),  # two processes, lease expiry
    "reliability/": ("slow",),  # generated hostile input at scale (about two minutes in its short form)
    "reliability/test_durability.py": ("e2e",),  # kill -9 of a real server process mid-write
    "reliability/test_transport_regressions.py": ("e2e",),  # uvicorn on 127.0.0.1, raw HTTP
    "reliability/test_load.py": ("e2e",),  # many concurrent clients against a real server
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its kinds from `KINDS`, so that `-m` can select or leave them out."""
    root = Path(__file__).parent
    for item in items:
        node = item.nodeid.split("::", 1)
        path = Path(item.path).resolve()
        if not path.is_relative_to(root):
            continue
        relative = path.relative_to(root).as_posix() + ("::" + node[1] if len(node) > 1 else "")
        for prefix, kinds in KINDS.items():
            if relative.startswith(prefix):
                for kind in kinds:
                    item.add_marker(kind)
