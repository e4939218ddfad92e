"""Extraction under limits (issue 13 items 4, 5, 7): a bad or heavy group fails alone with its name and reason, the
good groups' output is kept, over-long cells are stored as null with a Warning, a job over its time limit ends
Failed without leaving rows, and requests never wait for a running extraction."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from itwin_insights_mcp.sandbox.app import Sandbox
from itwin_insights_mcp.sandbox.engine.jobs import SandboxLimits

from ..conftest import BUILDING_ID, ITWIN_ID

# Never true, and SQLite cannot use an index for it: ~3,000^3 row combinations, hours of CPU without a limit.
HEAVY_QUERY = (
    "SELECT a.ECInstanceId FROM bis.Element a JOIN bis.Element b ON a.ECInstanceId <> b.ECInstanceId "
    "JOIN bis.Element c ON b.ECInstanceId <> c.ECInstanceId WHERE a.UserLabel || b.UserLabel || c.UserLabel = 'never'"
)
GOOD_QUERY = "SELECT * FROM Building.Door"  # 300 doors in the sample building


@contextmanager
def running(db: str, limits: SandboxLimits) -> Iterator[Sandbox]:
    sandbox = Sandbox(db, limits=limits)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.close()


def _insert(sandbox: Sandbox, kind: str, parent: str, data: dict[str, Any]) -> str:
    with sandbox.store.transaction():
        return sandbox.store.insert(kind, parent, {"id": str(uuid.uuid4()), **data}).id


def _mapping(sandbox: Sandbox, name: str, groups: dict[str, str], **extra: Any) -> tuple[str, dict[str, str]]:
    """A mapping with groups (name -> query); returns its id and the group ids by name."""
    mapping_id = _insert(
        sandbox, "mapping", BUILDING_ID, {"mappingName": name, "extractionEnabled": True, "imodelId": BUILDING_ID}
    )
    ids = {}
    for group_name, query in groups.items():
        ids[group_name] = _insert(sandbox, "group", mapping_id, {"groupName": group_name, "query": query, **extra})
    return mapping_id, ids


def _custom(sandbox: Sandbox, group_id: str, name: str, formula: str) -> None:
    _insert(sandbox, "property", group_id, {"kind": "custom", "propertyName": name, "formula": formula})


def _run(sandbox: Sandbox, request: dict[str, Any] | None = None) -> str:
    with sandbox.store.transaction():
        job = sandbox.jobs.enqueue(BUILDING_ID, request or {}, "someone@example.com")
    sandbox.jobs.start(job.id)
    return job.id


def _state(sandbox: Sandbox, job_id: str) -> dict[str, Any]:
    record = sandbox.store.get("job", job_id)
    assert record is not None
    return record.data


def _wait(sandbox: Sandbox, job_id: str, states: tuple[str, ...] = ("Succeeded", "Failed"), timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = str(_state(sandbox, job_id)["state"])
        if state in states:
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {_state(sandbox, job_id)['state']}")


def _logs(sandbox: Sandbox, job_id: str) -> list[dict[str, Any]]:
    return [r.data for r in sandbox.store.children("log", job_id)]


def _rows(sandbox: Sandbox, job_id: str) -> int:
    return int(sandbox.store.conn.execute("SELECT count(*) FROM ex_rows WHERE job_id = ?", (job_id,)).fetchone()[0])


def _published(sandbox: Sandbox, mapping_id: str) -> dict[str, int]:
    """Table -> row count of the mapping's published output."""
    rows = sandbox.store.conn.execute(
        "SELECT t.table_name, count(r.row_no) FROM ex_latest l JOIN ex_tables t ON t.job_id = l.job_id "
        "AND t.mapping_id = l.mapping_id LEFT JOIN ex_rows r ON r.job_id = t.job_id AND r.mapping_id = t.mapping_id "
        "AND r.table_name = t.table_name WHERE l.mapping_id = ? GROUP BY t.table_name",
        (mapping_id,),
    ).fetchall()
    return {name: count for name, count in rows}


def test_bad_groups_fail_alone_with_name_and_reason(sandbox_db: str) -> None:
    bad = {
        "Nested47": "SELECT * FROM bis.Element WHERE " + "(" * 47 + "ECInstanceId > 0" + ")" * 47,
        "HugeLimit": "SELECT * FROM bis.Element LIMIT 99999999999999999999",
        "Heavy": HEAVY_QUERY,
    }
    good = {
        "Doors": GOOD_QUERY,
        "Or500": "SELECT * FROM Building.Door WHERE " + " OR ".join(f"UserLabel = 'x{i}'" for i in range(500)),
    }
    with running(sandbox_db, SandboxLimits(group_query_steps=5_000_000)) as sandbox:
        mapping_id, _ = _mapping(sandbox, "M", {**good, **bad})
        job_id = _run(sandbox)
        assert _wait(sandbox, job_id) == "Succeeded"
        status = _state(sandbox, job_id)
        assert status["containsIssues"] is True
        errors = {e["message"].split("'")[1]: e for e in _logs(sandbox, job_id) if e["level"] == "Error"}
        assert set(errors) == set(bad)
        assert "parentheses" in errors["Nested47"]["message"]
        assert "LIMIT" in errors["HugeLimit"]["message"] and "out of range" in errors["HugeLimit"]["message"]
        assert "cost limit" in errors["Heavy"]["message"] and "GROUP_QUERY_STEPS" in errors["Heavy"]["message"]
        assert all(e["contextType"] == "Group" for e in errors.values())
        assert _published(sandbox, mapping_id) == {"Doors": 300, "Or500": 0}


def test_group_over_its_time_limit_fails_alone(sandbox_db: str) -> None:
    with running(sandbox_db, SandboxLimits(group_query_steps=0, group_seconds=0.3)) as sandbox:
        mapping_id, _ = _mapping(sandbox, "M", {"Heavy": HEAVY_QUERY, "Doors": GOOD_QUERY})
        job_id = _run(sandbox)
        assert _wait(sandbox, job_id) == "Succeeded"
        errors = [e["message"] for e in _logs(sandbox, job_id) if e["level"] == "Error"]
        assert len(errors) == 1 and "Group 'Heavy'" in errors[0] and "GROUP_SECONDS" in errors[0]
        assert _published(sandbox, mapping_id) == {"Doors": 300}


def test_over_long_computed_strings_are_stored_as_null_with_a_warning(sandbox_db: str) -> None:
    with running(sandbox_db, SandboxLimits(max_cell_bytes=100_000)) as sandbox:
        mapping_id, groups = _mapping(sandbox, "M", {"Doors": GOOD_QUERY})
        _custom(sandbox, groups["Doors"], "Pad", "padstart('x', 65535, 'ab')")
        chain = " + ".join(["Pad"] * 10)  # 655,350 characters per row without the limit
        _custom(sandbox, groups["Doors"], "Big", chain)
        _custom(sandbox, groups["Doors"], "Bigger", " + ".join(["Big"] * 10))
        job_id = _run(sandbox)
        assert _wait(sandbox, job_id) == "Succeeded"
        warnings = [e["message"] for e in _logs(sandbox, job_id) if e["level"] == "Warning"]
        assert any("column 'Big'" in w and "300 value(s)" in w and "MAX_CELL_BYTES" in w for w in warnings)
        (data,) = sandbox.store.conn.execute(
            "SELECT data FROM ex_rows WHERE job_id = ? AND row_no = 0", (job_id,)
        ).fetchone()
        (columns,) = sandbox.store.conn.execute("SELECT columns FROM ex_tables WHERE job_id = ?", (job_id,)).fetchone()
        row = dict(zip([c[0] for c in json.loads(columns)], json.loads(data), strict=True))
        assert len(row["Pad"]) == 65535 and row["Big"] is None
        assert row["Bigger"] is None or len(str(row["Bigger"])) < 100  # built from nulls, not from the big value
        biggest = sandbox.store.conn.execute(
            "SELECT max(length(data)) FROM ex_rows WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        assert biggest < 3 * 100_000
        assert _published(sandbox, mapping_id) == {"Doors": 300}


def test_job_over_its_time_limit_ends_failed_without_rows_and_the_next_job_runs(sandbox_db: str) -> None:
    limits = SandboxLimits(group_query_steps=0, group_seconds=600, extraction_seconds=0.5)
    with running(sandbox_db, limits) as sandbox:
        first, _ = _mapping(sandbox, "First", {"Doors": GOOD_QUERY})
        previous = _run(sandbox, {"mappings": [{"id": first}]})
        assert _wait(sandbox, previous) == "Succeeded"
        _insert(sandbox, "group", first, {"groupName": "Heavy", "query": HEAVY_QUERY})
        doomed = _run(sandbox, {"mappings": [{"id": first}]})
        other, _ = _mapping(sandbox, "Other", {"Doors": GOOD_QUERY})
        after = _run(sandbox, {"mappings": [{"id": other}]})  # queued behind the doomed job
        assert _wait(sandbox, doomed) == "Failed"
        status = _state(sandbox, doomed)
        assert "time limit" in status["reason"] and "INSIGHTS_SANDBOX_EXTRACTION_SECONDS" in status["reason"]
        assert _logs(sandbox, doomed)[-1]["level"] == "Error"
        assert _rows(sandbox, doomed) == 0  # the Doors rows it had written are gone
        assert _published(sandbox, first) == {"Doors": 300}  # the previous output still serves
        assert _wait(sandbox, after) == "Succeeded"
        assert _published(sandbox, other) == {"Doors": 300}


def test_writes_complete_while_a_heavy_extraction_runs(sandbox_db: str) -> None:
    with running(sandbox_db, SandboxLimits(group_query_steps=0, group_seconds=600)) as sandbox:
        _mapping(sandbox, "M", {"Heavy": HEAVY_QUERY})
        job_id = _run(sandbox)
        _wait(sandbox, job_id, ("Running",))
        time.sleep(0.2)  # the worker is inside the heavy query now
        for i in range(5):  # each write needs the write lock; before, it waited 30 s and failed
            with sandbox.store.transaction():
                sandbox.store.insert("report", ITWIN_ID, {"displayName": f"R{i}", "deleted": False})
        assert _state(sandbox, job_id)["state"] == "Running"  # the writes did not wait for the extraction
        assert len(sandbox.store.children("report", ITWIN_ID)) == 5
        sandbox.jobs.cancel(job_id)
        assert _wait(sandbox, job_id, timeout=10) == "Failed"
        assert "cancelled" in _state(sandbox, job_id)["reason"]


def test_cancelled_job_ends_failed_and_the_next_job_runs(sandbox_db: str) -> None:
    with running(sandbox_db, SandboxLimits(group_query_steps=0, group_seconds=600)) as sandbox:
        heavy, _ = _mapping(sandbox, "Heavy", {"Heavy": HEAVY_QUERY})
        good, _ = _mapping(sandbox, "Good", {"Doors": GOOD_QUERY})
        job_id = _run(sandbox, {"mappings": [{"id": heavy}]})
        queued = _run(sandbox, {"mappings": [{"id": good}]})
        _wait(sandbox, job_id, ("Running",))
        time.sleep(0.3)
        assert _state(sandbox, queued)["state"] == "Queued"
        sandbox.jobs.cancel(job_id)
        assert _wait(sandbox, job_id, timeout=10) == "Failed"
        last = _logs(sandbox, job_id)[-1]
        assert last["level"] == "Error" and "cancelled" in last["message"]
        assert _wait(sandbox, queued) == "Succeeded"
        assert _published(sandbox, good) == {"Doors": 300}
