"""What a local tool is given (`LocalContext`, with its `Clock`) and where its files may go (`export_path`): apart
from the tools themselves, so the tool modules and the resource reader share them without importing each other."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server import ServerRequestContext

from ..api.catalog import Catalog
from ..api.client import InsightsClient
from ..settings import Settings

__all__ = ["FILE_NAME", "Clock", "LocalContext", "export_path"]

# `$(?!\n)`: Python's `$` also matches before a final newline (`x.csv\n`); this means end of text in every engine.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$(?!\n)")


@dataclass(frozen=True)
class Clock:
    """Where waiting tools read the time and how they pause: passed in, so tests run waits on virtual time."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class LocalContext:
    """What a local tool may use: the shared client, the settings, the catalog, the MCP request and the clock."""

    client: InsightsClient
    settings: Settings
    catalog: Catalog
    request: ServerRequestContext[Any] | None
    clock: Clock = field(default_factory=Clock)


def export_path(settings: Settings, file_name: str) -> Path:
    """The file inside the export directory; anything that would land elsewhere is refused."""
    if not FILE_NAME.match(file_name) or ".." in file_name:
        raise ValueError(f"fileName {file_name!r} must be a plain file name (letters, digits, . _ -).")
    root = Path(settings.export_dir).expanduser().resolve()
    target = (root / file_name).resolve()
    if target.parent != root:
        raise ValueError(f"fileName {file_name!r} would leave the export directory.")
    return target
