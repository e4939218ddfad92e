"""The running sandbox: its store, its background jobs, its settings and the base path of each API family.

Handlers reach it through `Call.sandbox`; it knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping

from .engine.jobs import JobRunner, SandboxLimits
from .imodels.seed import ensure_seeded
from .store import Store

__all__ = ["Sandbox"]


class Sandbox:
    """The emulator's state: its store, its background jobs and its settings."""

    def __init__(
        self,
        db_path: str,
        *,
        token: str | None = None,
        odata_page_size: int = 1000,
        record: bool = False,
        limits: SandboxLimits | None = None,
        base_paths: Mapping[str, str] | None = None,
    ) -> None:
        self.store = Store(db_path)
        self.token = token
        self.record = record  # keep who called what (method, path, caller, body), for identity tests
        self.odata_page_size = odata_page_size
        self.jobs = JobRunner(self.store, limits)
        self.base_paths: dict[str, str] = dict(base_paths or {})  # family name -> its base path (the catalog's)

    def start(self) -> None:
        ensure_seeded(self.store)
        self.jobs.recover()

    def close(self) -> None:
        self.jobs.shutdown()
        self.store.close()
