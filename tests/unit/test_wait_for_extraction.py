"""wait_for_extraction on virtual time: a scripted API and an injected clock, so no big iModel and no wall clock.

The clock (`LocalContext.clock`) is the only time source the tool reads and the only way it pauses; here `sleep`
advances a counter instead of waiting, so each test runs in milliseconds and checks exact seconds and pauses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

import pytest

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.api.client import ApiResponse, InsightsClient
from itwin_insights_mcp.errors import ApiError
from itwin_insights_mcp.server.local_tools import Clock, LocalContext, wait_for_extraction
from itwin_insights_mcp.server.results import error_payload
from itwin_insights_mcp.settings import Settings

pytestmark = pytest.mark.anyio

CATALOG = load_catalog()
V1_STATUS = CATALOG["get_extraction_status"].full_path.split("{")[0]
GM_STATUS = CATALOG["gm_get_extraction_status"].full_path.split("{")[0]


class VirtualClock:
    """Time that moves only when the tool sleeps; records every pause."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def read(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a checkpoint, as the real sleep is

    def clock(self) -> Clock:
        return Clock(now=self.read, sleep=self.sleep)


class ScriptedApi:
    """Answers status requests from a script of v1 states (the last repeats); the G&M path answers `gm_state`."""

    def __init__(self, states: list[str], *, v1_missing: bool = False, gm_state: str | None = None) -> None:
        self.states = states
        self.v1_missing = v1_missing
        self.gm_state = gm_state
        self.paths: list[str] = []

    async def request(self, method: str, path: str, **_: Any) -> ApiResponse:
        self.paths.append(path)
        if path.startswith(GM_STATUS):
            if self.gm_state is None:
                raise ApiError(404, "ExtractionNotFound", "Requested Extraction is not available.")
            return ApiResponse(200, "application/json", {"extraction": {"state": self.gm_state}})
        if self.v1_missing:
            raise ApiError(404, "ExtractionStatusNotFound", "Requested Extraction Status is not available.")
        state = self.states[min(len(self.paths) - 1, len(self.states) - 1)]
        return ApiResponse(200, "application/json", {"status": {"state": state, "reason": "", "containsIssues": False}})


class Progress:
    """Stands in for the MCP request: collects the progress notifications the tool sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, float | None, str | None]] = []
        self.session = SimpleNamespace(report_progress=self.report)

    async def report(self, value: float, total: float | None = None, message: str | None = None) -> None:
        self.sent.append((value, total, message))


async def wait(
    api: ScriptedApi, time: VirtualClock, progress: Progress | None = None, **arguments: Any
) -> tuple[dict[str, Any], bool]:
    context = LocalContext(
        cast(InsightsClient, api), Settings(backend="sandbox"), CATALOG, cast(Any, progress), time.clock()
    )
    result = await wait_for_extraction(context, {"jobId": "job-1", **arguments})
    data: Mapping[str, Any] = result.structured_content or error_payload(result)
    return dict(data), bool(result.is_error)


async def test_a_short_wait_returns_still_running_with_progress_on_time() -> None:
    api, time, progress = ScriptedApi(["Queued", "Running"]), VirtualClock(), Progress()
    data, failed = await wait(api, time, progress, waitSeconds=2)
    assert not failed
    assert data["done"] is False and data["state"] == "Running" and data["waitedSeconds"] == 2.0
    assert "again" in data["nextStep"]
    assert time.sleeps == [1.0, 1.0]  # it came back at the limit instead of holding the call
    assert [(value, total) for value, total, _ in progress.sent] == [(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)]
    assert [message for _, _, message in progress.sent][:2] == ["Queued: Queued", "Running: Running"]


async def test_the_pace_slows_from_every_second_to_every_three() -> None:
    time = VirtualClock()
    data, _ = await wait(ScriptedApi(["Running"]), time, waitSeconds=45)
    assert data["done"] is False and data["waitedSeconds"] == 45.0
    # 1 s while under 5 s, 2 s while under 20 s, then 3 s; never past the limit.
    assert time.sleeps == [1.0] * 5 + [2.0] * 8 + [3.0] * 8
    assert sum(time.sleeps) == 45.0


async def test_a_finished_run_stops_polling_and_says_what_next() -> None:
    api, time = ScriptedApi(["Queued", "Running", "Succeeded"]), VirtualClock()
    data, _ = await wait(api, time)
    assert data["done"] is True and data["state"] == "Succeeded" and data["waitedSeconds"] == 2.0
    assert len(api.paths) == 3 and time.sleeps == [1.0, 1.0]
    assert "list_extraction_logs" in data["nextStep"]

    failed, _ = await wait(ScriptedApi(["Failed"]), VirtualClock())
    assert failed["done"] is True and "why it failed" in failed["nextStep"]


async def test_an_unknown_v1_run_is_looked_up_in_grouping_and_mapping() -> None:
    api = ScriptedApi([], v1_missing=True, gm_state="PartiallySucceeded")
    data, failed = await wait(api, VirtualClock())
    assert not failed and data["state"] == "PartiallySucceeded" and data["containsIssues"] is True
    assert [p.startswith(GM_STATUS) for p in api.paths] == [False, True]
    assert api.paths[0].startswith(V1_STATUS)


async def test_a_run_neither_api_knows_is_the_v1_404() -> None:
    data, failed = await wait(ScriptedApi([], v1_missing=True), VirtualClock())
    assert failed and data["status"] == 404 and data["code"] == "ExtractionStatusNotFound"
