"""Reliability suite set-up: the long switch, the populated sandbox template, and the run's tallies.

Short variants run in CI. `RELIABILITY_LONG=1` raises every bound (examples, kill cycles) and collects the tests
marked `long` (durability at scale, load); without it those are deselected, not skipped, so nothing turns green
by not running.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.sandbox.imodels.seed import ensure_seeded
from itwin_insights_mcp.sandbox.store import Store
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from .world import Known, populate

LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0")
TALLY: Counter[str] = Counter()  # cases tried and failures seen, printed at the end of the run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if LONG:
        return
    kept = [i for i in items if i.get_closest_marker("long") is None]
    dropped = [i for i in items if i.get_closest_marker("long") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        figures = ", ".join(f"{k}: {v:,}" for k, v in sorted(TALLY.items()))
        terminalreporter.write_line(f"reliability ({'long' if LONG else 'short'}): {figures}")


def fuzz_settings(db: str, export_dir: Path, **changes: object) -> Settings:
    """Every tool (profile `all`), the sandbox on `db`, exports under the test's own directory."""
    base = Settings(backend="sandbox", sandbox_db=db, profile="all", export_dir=str(export_dir))
    return base.with_overrides(**changes)


@dataclass(frozen=True)
class World:
    """A seeded sandbox with one of everything (see world.py) and the ids that exist in it."""

    template: Path
    known: Known

    def copy_to(self, directory: Path) -> str:
        target = directory / "sandbox.db"
        shutil.copy(self.template, target)
        return str(target)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Built once per run through the tools themselves, then copied for each test."""
    directory = tmp_path_factory.mktemp("reliability-world")
    path = directory / "sandbox.db"
    store = Store(str(path))
    ensure_seeded(store)
    store.close()
    settings = fuzz_settings(str(path), directory / "exports")

    async def build() -> Known:
        from mcp import Client

        async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as mcp:
            return await populate(mcp)

    known = anyio.run(build)
    checkpoint = Store(str(path))
    checkpoint.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    (directory / "known.json").write_text(json.dumps(known, indent=1))
    return World(path, known)
