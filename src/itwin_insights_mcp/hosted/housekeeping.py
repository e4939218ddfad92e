"""Background work of a hosted replica while its HTTP app runs: expired OAuth rows purged on a schedule.

`purge_on_schedule` purges when due (`SharedState.purge_if_due`, off the event loop) and sleeps the state's purge
interval, for ever; a database error is logged and tried again at the next interval, never the end of the task.
`run_during_lifespan` starts such work with the app's lifespan and cancels it at shutdown, then closes the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from starlette.applications import Starlette
from starlette.types import Lifespan

from .state import SharedState

__all__ = ["purge_on_schedule", "run_during_lifespan"]

log = logging.getLogger(__name__)


async def purge_on_schedule(state: SharedState, interval: float | None = None) -> None:
    """Purge expired rows now and then every `interval` seconds (default: the state's purge interval)."""
    every = state.purge_interval if interval is None else interval
    while True:
        try:
            await state.purge_due()
        except Exception as exc:  # a database hiccup must not end the schedule
            log.warning("Purging expired sign-in rows failed (%s); trying again in %gs.", type(exc).__name__, every)
        await asyncio.sleep(every)


def run_during_lifespan(app: Starlette, work: Callable[[], Awaitable[None]], state: SharedState | None = None) -> None:
    """Run `work()` as a task for as long as `app`'s lifespan (inside the existing one); close `state` after."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[Mapping[str, Any] | None]:
        async with inner(application) as value:
            task = asyncio.ensure_future(work())
            try:
                yield value
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                if state is not None:
                    await asyncio.to_thread(state.close)

    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)  # yields whatever the inner lifespan yields
