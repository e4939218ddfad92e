"""Job ownership (issue 13 item 8): two sandboxes on one database file. A live job is never failed by the other
process, even long after its lease would have run out without a heartbeat; a job whose owner died is failed (and its
rows removed) once its lease expires."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

from itwin_insights_mcp.sandbox.app import Sandbox
from itwin_insights_mcp.sandbox.engine.jobs import RESTARTED, SandboxLimits

from ..conftest import BUILDING_ID
from .test_sandbox_limits_extraction import HEAVY_QUERY, _mapping, _rows, _run, _state, _wait, running

LEASE = 0.6  # seconds; the heartbeat renews every 0.2 s


def _limits() -> SandboxLimits:
    return SandboxLimits(group_query_steps=0, group_seconds=600, lease_seconds=LEASE)


def test_a_second_process_never_fails_a_live_job(sandbox_db: str) -> None:
    with running(sandbox_db, _limits()) as first:
        _mapping(first, "Heavy", {"Heavy": HEAVY_QUERY})
        job_id = _run(first)
        _wait(first, job_id, ("Running",))
        time.sleep(3 * LEASE)  # past the first lease: only the heartbeat keeps the job owned
        with running(sandbox_db, _limits()) as second:  # start() runs recover() on the same file
            time.sleep(2 * LEASE)  # and its own heartbeat looks for orphans meanwhile
            assert _state(second, job_id)["state"] == "Running"
        assert _state(first, job_id)["state"] == "Running"
        first.jobs.cancel(job_id)
        assert _wait(first, job_id, timeout=10) == "Failed"


def test_a_job_whose_owner_died_is_failed_when_its_lease_expires(sandbox_db: str) -> None:
    # An owner that enqueues and is then killed: no heartbeat runs for it (never started) and it is never closed.
    dead = Sandbox(sandbox_db, limits=_limits())
    with dead.store.transaction() as conn:
        job = dead.jobs.enqueue(BUILDING_ID, {}, "someone@example.com")
        conn.execute(  # rows it had written before dying
            "INSERT INTO ex_rows VALUES (?, 'm', 't', 0, '[]'), (?, 'm', 't', 1, '[]')", (job.id, job.id)
        )
    with running(sandbox_db, _limits()) as survivor:
        assert _wait(survivor, job.id, ("Failed",), timeout=10 * LEASE) == "Failed"  # found by the heartbeat
        assert _state(survivor, job.id)["reason"] == RESTARTED
        assert _rows(survivor, job.id) == 0
    dead.store.conn.close()


def test_recover_at_start_fails_expired_and_unleased_jobs_only(sandbox_db: str) -> None:
    owner = Sandbox(sandbox_db, limits=_limits())  # not started: no heartbeat renews the leases set below
    with owner.store.transaction() as conn:
        expired = owner.jobs.enqueue(BUILDING_ID, {}, "a@example.com")
        unleased = owner.jobs.enqueue(BUILDING_ID, {}, "b@example.com")  # as written by an older sandbox
        live = owner.jobs.enqueue(BUILDING_ID, {}, "c@example.com")
        conn.execute("UPDATE sandbox_job_leases SET expires = 0 WHERE job_id = ?", (expired.id,))
        conn.execute("DELETE FROM sandbox_job_leases WHERE job_id = ?", (unleased.id,))
        conn.execute("UPDATE sandbox_job_leases SET expires = ? WHERE job_id = ?", (time.time() + 3600, live.id))
    other = Sandbox(sandbox_db, limits=_limits())
    other.start()
    try:
        assert _state(other, expired.id)["state"] == "Failed"
        assert _state(other, unleased.id)["state"] == "Failed"
        assert _state(other, live.id)["state"] == "Queued"
    finally:
        other.close()
    owner.close()  # a clean shutdown fails its own unfinished job at once, with the reason
    with closing(sqlite3.connect(sandbox_db)) as conn:
        (data,) = conn.execute("SELECT data FROM records WHERE kind = 'job' AND id = ?", (live.id,)).fetchone()
    assert json.loads(data)["state"] == "Failed" and json.loads(data)["reason"] == RESTARTED
