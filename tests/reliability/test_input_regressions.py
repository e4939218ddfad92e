"""Regressions for inputs that used to cost the server (issue 13, items 5, 6, 7, 9, 12 and 14), through MCP.

Each call must come back as a success or a clear `isError` (never a 5xx, an internal error or a traceback, see
verdict.py), fast, and leave the store consistent.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from ..conftest import BUILDING_ID
from .conftest import World, fuzz_settings
from .harness import McpSession
from .integrity import integrity_problems
from .verdict import reply_problems


@pytest.fixture
def session(world: World, tmp_path: Path) -> Iterator[tuple[McpSession, str]]:
    db = world.copy_to(tmp_path)
    with McpSession(fuzz_settings(db, tmp_path / "exports"), call_timeout=60) as mcp:
        yield mcp, db
    assert integrity_problems(db) == []


def _sound(mcp: McpSession, tool: str, arguments: dict[str, Any], *, within: float = 10.0) -> CallToolResult:
    """Call a tool; it must answer soundly (verdict.py) within `within` seconds. Returns the result."""
    started = time.perf_counter()
    result = mcp.call(tool, arguments)
    elapsed = time.perf_counter() - started
    assert not isinstance(result, str), f"{tool}: {result}"
    injected = [v for v in arguments.values() if isinstance(v, str)]
    problems = reply_problems(result, mcp.tools[tool].output_schema, injected)
    assert problems == [], f"{tool}: {problems}"
    assert elapsed < within, f"{tool} took {elapsed:.1f} s"
    return result


def _ok(mcp: McpSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = _sound(mcp, tool, arguments)
    assert not result.is_error, (tool, result.content)
    return dict(result.structured_content or {})


def _group_ids(world: World) -> dict[str, str]:
    return {"imodelId": BUILDING_ID, "mappingId": world.known["mappingId"][0], "groupId": world.known["groupId"][0]}


def _token(seq: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def test_a_huge_bad_value_is_not_echoed(session: tuple[McpSession, str]) -> None:
    mcp, _db = session
    result = _sound(mcp, "create_mapping", {"imodelId": BUILDING_ID, "mappingName": "x" * 1_000_000})
    assert result.is_error
    assert sum(len(getattr(c, "text", "")) for c in result.content) < 10_000


@pytest.mark.parametrize(
    "formula",
    [
        "1" + " + 1" * 700,  # 601+ flat terms used to raise RecursionError (500)
        "0x" + "f" * 100_000,  # used to raise OverflowError (500)
        "1" + " + 1" * 250_000,  # 1 MB: used to stall every call for 7 s, then 500
        "(" * 5_000 + "1" + ")" * 5_000,
    ],
    ids=["601-terms", "huge-hex", "1MB", "deep-parens"],
)
def test_a_hostile_formula_is_answered_fast(session: tuple[McpSession, str], world: World, formula: str) -> None:
    mcp, _db = session
    arguments = {**_group_ids(world), "propertyName": "Hostile", "formula": formula}
    _sound(mcp, "create_custom_calculation", arguments, within=5.0)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM Building.Wall WHERE " + "(" * 47 + "1 = 1" + ")" * 47,
        "SELECT * FROM Building.Wall WHERE " + " OR ".join(f"ECInstanceId = {n}" for n in range(500)),
        "SELECT * FROM Building.Wall LIMIT 99999999999999999999999",
    ],
    ids=["47-parens", "500-or-terms", "huge-limit"],
)
def test_a_bad_group_fails_alone(session: tuple[McpSession, str], query: str) -> None:
    mcp, db = session
    ids = {"imodelId": BUILDING_ID}
    mapping = _ok(mcp, "create_mapping", {**ids, "mappingName": "Alone"})["mapping"]["id"]
    ids["mappingId"] = mapping
    _ok(mcp, "create_group", {**ids, "groupName": "Good", "query": "SELECT * FROM Building.Door"})
    created = _sound(mcp, "create_group", {**ids, "groupName": "Bad", "query": query})
    if created.is_error:
        return  # refused up front, with a clear error: the extraction never sees it
    run = _ok(mcp, "run_extraction", {"imodelId": BUILDING_ID, "mappings": [{"id": mapping}]})["run"]["id"]
    done = _ok(mcp, "wait_for_extraction", {"jobId": run})
    assert done["state"] == "Succeeded", done  # the good group's output survives
    logs = json.dumps(_ok(mcp, "list_extraction_logs", {"jobId": run}))
    assert "Bad" in logs and "RecursionError" not in logs and "OverflowError" not in logs
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM ex_tables WHERE job_id = ?", (run,))}
    finally:
        conn.close()
    assert any("Good" in t for t in tables), tables


def test_a_lone_surrogate_in_a_formula_does_not_break_the_feed(session: tuple[McpSession, str], world: World) -> None:
    mcp, _db = session
    arguments = {**_group_ids(world), "propertyName": "Surrogate", "formula": "'a' + '\ud800'"}
    if _sound(mcp, "create_custom_calculation", arguments).is_error:
        return  # refused: nothing can break later
    run = _ok(mcp, "run_extraction", {"imodelId": BUILDING_ID})["run"]["id"]
    _ok(mcp, "wait_for_extraction", {"jobId": run})
    report = world.known["reportId"][0]
    for region, manifest, entity in zip(
        world.known["region"], world.known["manifestId"], world.known["entityType"], strict=True
    ):
        page = {"reportId": report, "region": region, "manifestId": manifest, "entityType": entity}
        _sound(mcp, "get_odata_entity_page", page)
        _sound(mcp, "export_odata_entity", page)


@pytest.mark.parametrize("seq", [2**70, -(2**70), 1e308, "x", None, [1]], ids=repr)
def test_a_continuation_token_beyond_64_bits_is_a_clear_error(session: tuple[McpSession, str], seq: object) -> None:
    mcp, _db = session
    _sound(mcp, "list_mappings", {"imodelId": BUILDING_ID, "continuationToken": _token(seq)})


def test_an_odata_sequence_beyond_64_bits_is_a_clear_error(session: tuple[McpSession, str], world: World) -> None:
    mcp, _db = session
    page = {
        "reportId": world.known["reportId"][0],
        "region": world.known["region"][0],
        "manifestId": world.known["manifestId"][0],
        "entityType": world.known["entityType"][0],
    }
    for sequence in (2**63, 2**70):
        _sound(mcp, "get_odata_entity_page", {**page, "sequence": sequence})


@pytest.mark.parametrize("name", ["x.csv\n", "x\n", "a\r", "x.csv\x00"])
def test_an_export_file_name_with_a_line_break_is_refused(
    session: tuple[McpSession, str], world: World, name: str
) -> None:
    mcp, _db = session
    page = {
        "reportId": world.known["reportId"][0],
        "region": world.known["region"][0],
        "manifestId": world.known["manifestId"][0],
        "entityType": world.known["entityType"][0],
        "fileName": name,
    }
    result = _sound(mcp, "export_odata_entity", page)
    assert result.is_error
