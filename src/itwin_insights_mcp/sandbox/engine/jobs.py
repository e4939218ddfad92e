"""Extraction jobs: queued by `run_extraction`, run on one background thread, bounded, never left stuck.

States go Queued -> Running -> Succeeded | Failed, each change logged. The worker uses its own SQLite connections
(one to read, one to write) and writes rows in short batch transactions, so requests never wait for a running
extraction. A job's output is published (`ex_latest`) only when the whole job succeeds; a failed job's rows are
removed. Limits (`SandboxLimits`) bound each group (SQLite steps, seconds) and each job (seconds).

Ownership: every Queued/Running job has a lease (owner, expiry) that its runner's heartbeat renews. A runner fails
only the jobs whose lease expired (their owner died) or its own jobs when it shuts down, so a second process opening
the same database never fails a live job.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store import Record, Store, now_iso
from .extraction import (
    Budget,
    ExtractionIssue,
    LimitExceeded,
    MappingResult,
    discard_output,
    ensure_tables,
    extract_mapping,
    merge_previous_rows,
)

if TYPE_CHECKING:
    from ...settings import Settings

__all__ = ["JobRunner", "SandboxLimits"]

log = logging.getLogger(__name__)

NOT_DONE = "Not completed yet."
RESTARTED = "The sandbox restarted before this extraction finished; run the extraction again."
CANCELLED = "The extraction was cancelled; run the extraction again."

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandbox_job_leases (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
);
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of sandbox extractions (each a documented setting, see docs/architecture.md)."""

    group_query_steps: int = 1_000_000_000  # INSIGHTS_SANDBOX_GROUP_QUERY_STEPS (0: no step limit)
    group_seconds: float = 120.0  # INSIGHTS_SANDBOX_GROUP_SECONDS
    extraction_seconds: float = 1800.0  # INSIGHTS_SANDBOX_EXTRACTION_SECONDS
    max_cell_bytes: int = 65_536  # INSIGHTS_SANDBOX_MAX_CELL_BYTES
    lease_seconds: float = 30.0  # how long a job stays owned without a heartbeat (renewed every third of it)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        return cls(
            group_query_steps=settings.sandbox_group_query_steps,
            group_seconds=settings.sandbox_group_seconds,
            extraction_seconds=settings.sandbox_extraction_seconds,
            max_cell_bytes=settings.sandbox_max_cell_bytes,
        )


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _JobLog:
    """Writes one job's state and log entries (the `logs` of get_extraction_logs)."""

    def __init__(self, conn: sqlite3.Connection, job_id: str, imodel_id: str) -> None:
        self.conn = conn
        self.job_id = job_id
        self.imodel_id = imodel_id
        self.state = "Queued"
        self.reason = "Queued."

    def entry(
        self, level: str, category: str, message: str, *, issues: bool = False, context: tuple[str, str] | None = None
    ) -> None:
        context_type, context_id = context or ("IModel", self.imodel_id)
        data = {
            "state": self.state,
            "reason": self.reason,
            "dateTime": now_iso(),
            "jobId": self.job_id,
            "contextType": context_type,
            "contextId": context_id,
            "level": level,
            "category": category,
            "message": message,
            "containsIssues": issues,
        }
        self.conn.execute(
            "INSERT INTO records (kind, id, parent, data) VALUES ('log', ?, ?, ?)",
            (str(uuid.uuid4()), self.job_id, json.dumps(data)),
        )

    def set_state(
        self, state: str, reason: str, message: str, *, issues: bool = False, level: str = "Information"
    ) -> None:
        """Change the job's state and log it (inside the caller's transaction); a finished job loses its lease."""
        self.state, self.reason = state, reason
        self.conn.execute(
            "UPDATE records SET data = json_set(data, '$.state', ?, '$.reason', ?, '$.containsIssues', json(?)) "
            "WHERE kind = 'job' AND id = ?",
            (state, reason, "true" if issues else "false", self.job_id),
        )
        self.entry(level, "StateChange", message, issues=issues)
        if state in ("Succeeded", "Failed"):
            self.conn.execute("DELETE FROM sandbox_job_leases WHERE job_id = ?", (self.job_id,))

    def transition(
        self, state: str, reason: str, message: str, *, issues: bool = False, level: str = "Information"
    ) -> None:
        """Change the job's state and log it, in one transaction."""
        with _tx(self.conn):
            self.set_state(state, reason, message, issues=issues, level=level)

    def issue(self, issue: ExtractionIssue) -> None:
        self.entry(
            issue.level, issue.category, issue.message, issues=True, context=(issue.context_type, issue.context_id)
        )


@dataclass
class _Extracted:
    """One mapping's finished but unpublished output."""

    mapping: dict[str, Any]
    previous_job: str | None
    changeset_index: int
    result: MappingResult


class JobRunner:
    """Runs extraction jobs one at a time in a background thread, under `limits`, holding leases on its jobs."""

    def __init__(self, store: Store, limits: SandboxLimits | None = None) -> None:
        self._store = store
        self.limits = limits or SandboxLimits()
        self.owner = str(uuid.uuid4())
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._heartbeat: threading.Thread | None = None
        ensure_tables(store.conn)
        store.conn.executescript(LEASE_SCHEMA)

    # -- queueing and ownership -------------------------------------------------------------------------------

    def enqueue(self, imodel_id: str, request: dict[str, Any], user_email: str) -> Record:
        """Record a Queued job and this runner's lease on it (inside the caller's transaction); `start` it after."""
        job_id = str(uuid.uuid4())
        data = {
            "id": job_id,
            "imodelId": imodel_id,
            "state": "Queued",
            "reason": "Queued.",
            "containsIssues": False,
            "startedOn": now_iso(),
            "request": request,
            "createdBy": user_email,
        }
        record = self._store.insert("job", imodel_id, data)
        self._store.conn.execute(
            "INSERT OR REPLACE INTO sandbox_job_leases VALUES (?, ?, ?)",
            (job_id, self.owner, time.time() + self.limits.lease_seconds),
        )
        _JobLog(self._store.conn, job_id, imodel_id).entry(
            "Information", "StateChange", f"Extraction of iModel {imodel_id} queued."
        )
        return record

    def start(self, job_id: str) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-extraction")
        self._start_heartbeat()
        self._executor.submit(self._run_safely, job_id)

    def cancel(self, job_id: str) -> None:
        """Stop a Queued or Running job of this runner: it ends Failed with a log entry; the next job runs."""
        self._cancelled.add(job_id)

    def recover(self) -> None:
        """Fail the Queued/Running jobs whose owner is gone (lease expired or none), with the reason logged.

        Jobs leased by a live runner (this process or another one on the same database) are left alone. From then
        on the heartbeat keeps this runner's leases fresh and fails jobs whose owner dies later.
        """
        self._fail_orphans(self._store.connect())
        self._start_heartbeat()

    def shutdown(self) -> None:
        """Stop the worker and heartbeat; this runner's unfinished jobs end Failed now (it will not finish them)."""
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._heartbeat is not None:
            self._heartbeat.join()
        conn = self._store.connect()
        try:
            owned = conn.execute("SELECT job_id FROM sandbox_job_leases WHERE owner = ?", (self.owner,)).fetchall()
            for (job_id,) in owned:
                self._fail(conn, job_id, RESTARTED)
        finally:
            conn.close()

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="sandbox-job-lease", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        """Renew this runner's leases, and fail jobs whose owner died, every third of the lease."""
        conn = self._store.connect()
        try:
            while not self._stopping.wait(self.limits.lease_seconds / 3):
                with _tx(conn):
                    conn.execute(
                        "UPDATE sandbox_job_leases SET expires = ? WHERE owner = ?",
                        (time.time() + self.limits.lease_seconds, self.owner),
                    )
                self._fail_orphans(conn, close=False)
        except sqlite3.Error:
            log.exception("The extraction lease heartbeat stopped")
        finally:
            conn.close()

    def _fail_orphans(self, conn: sqlite3.Connection, *, close: bool = True) -> None:
        try:
            rows = conn.execute(
                "SELECT r.id FROM records r LEFT JOIN sandbox_job_leases l ON l.job_id = r.id "
                "WHERE r.kind = 'job' AND json_extract(r.data, '$.state') IN ('Queued', 'Running') "
                "AND (l.job_id IS NULL OR (l.owner != ? AND l.expires < ?))",
                (self.owner, time.time()),
            ).fetchall()
            for (job_id,) in rows:
                self._fail(conn, job_id, RESTARTED)
        finally:
            if close:
                conn.close()

    @staticmethod
    def _fail(conn: sqlite3.Connection, job_id: str, reason: str) -> None:
        """End a job Failed with `reason` and remove whatever rows it wrote (never a published output)."""
        row = conn.execute("SELECT parent FROM records WHERE kind = 'job' AND id = ?", (job_id,)).fetchone()
        if row is None:
            with _tx(conn):
                conn.execute("DELETE FROM sandbox_job_leases WHERE job_id = ?", (job_id,))
            return
        discard_output(conn, job_id)
        _JobLog(conn, job_id, row[0]).transition("Failed", reason, reason, issues=True, level="Error")

    # -- running ------------------------------------------------------------------------------------------------

    def _why_stop(self, job_id: str) -> Callable[[], str | None]:
        def reason() -> str | None:
            if self._stopping.is_set():
                return RESTARTED
            return CANCELLED if job_id in self._cancelled else None

        return reason

    def _budget(self, job_id: str) -> Budget:
        return Budget(
            group_steps=self.limits.group_query_steps,
            group_seconds=self.limits.group_seconds,
            job_seconds=self.limits.extraction_seconds,
            cancelled=self._why_stop(job_id),
        )

    def _run_safely(self, job_id: str) -> None:
        conn = self._store.connect()
        read = self._store.connect()
        try:
            job = _load(conn, "job", job_id)[0]
            journal = _JobLog(conn, job_id, job["imodelId"])
            if job.get("state") != "Queued":
                return  # already failed (cancelled, or taken as orphaned)
            try:
                self._run(journal, read, job)
            except LimitExceeded as exc:
                self._end_failed(journal, exc.message)
            except Exception as exc:
                log.exception("Extraction %s failed", job_id)
                self._end_failed(journal, f"The extraction failed unexpectedly ({type(exc).__name__}).")
        finally:
            self._cancelled.discard(job_id)
            read.close()
            conn.close()

    def _end_failed(self, journal: _JobLog, reason: str) -> None:
        conn = journal.conn
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        discard_output(conn, journal.job_id)
        journal.transition("Failed", reason, reason, issues=True, level="Error")

    def _run(self, journal: _JobLog, read: sqlite3.Connection, job: dict[str, Any]) -> None:
        conn, imodel_id = journal.conn, journal.imodel_id
        request = job.get("request") or {}
        budget = self._budget(journal.job_id)
        budget.check()
        journal.transition("Running", NOT_DONE, "Extraction started.")
        mappings = _mappings_to_extract(conn, imodel_id, request)
        issues = False
        if not mappings:
            issues = True
            with _tx(conn):
                journal.entry("Warning", "GroupQuery", f"iModel {imodel_id} has 0 mappings to extract.", issues=True)
        changeset_index = _changeset_index(conn, imodel_id, request.get("changesetId"))
        done: list[_Extracted] = []
        try:
            for mapping in mappings:
                extracted = self._extract_one(journal, read, budget, mapping, request, changeset_index)
                if extracted is None:
                    issues = True
                    continue
                done.append(extracted)
                issues |= bool(extracted.result.issues)
        except LimitExceeded:
            with _tx(conn):  # what was learned before the limit tripped stays in the log
                for extracted in done:
                    for issue in extracted.result.issues:
                        journal.issue(issue)
            raise
        reason = "Completed with issues; see the logs." if issues else "Completed"
        with _tx(conn):
            for extracted in done:
                self._publish(journal, extracted, request.get("ecInstanceIds") or None)
            journal.set_state("Succeeded", reason, "Extraction finished.", issues=issues)
        for extracted in done:
            if extracted.previous_job is not None and extracted.previous_job != journal.job_id:
                discard_output(conn, extracted.previous_job, extracted.mapping["id"])

    def _extract_one(
        self,
        journal: _JobLog,
        read: sqlite3.Connection,
        budget: Budget,
        mapping: dict[str, Any],
        request: dict[str, Any],
        changeset_index: int,
    ) -> _Extracted | None:
        conn, mapping_id = journal.conn, mapping["id"]
        previous = conn.execute(
            "SELECT job_id, changeset_index FROM ex_latest WHERE mapping_id = ?", (mapping_id,)
        ).fetchone()
        if previous is not None and previous[1] > changeset_index:
            with _tx(conn):
                journal.entry(
                    "Warning",
                    "GroupQuery",
                    (
                        f"Mapping '{mapping['mappingName']}' was already extracted from a newer changeset (index "
                        f"{previous[1]}); it is not re-extracted from index {changeset_index}. Copy the mapping to "
                        "extract an older state."
                    ),
                    issues=True,
                    context=("Mapping", mapping_id),
                )
            return None
        groups = _load(conn, "group", parent=mapping_id)
        properties = {group["id"]: _load(conn, "property", parent=group["id"]) for group in groups}
        result = extract_mapping(
            conn,
            job_id=journal.job_id,
            imodel_id=journal.imodel_id,
            mapping_id=mapping_id,
            groups=groups,
            properties=properties,
            ecinstance_ids=request.get("ecInstanceIds") or None,
            read=read,
            budget=budget,
            max_cell_bytes=self.limits.max_cell_bytes,
        )
        return _Extracted(mapping, previous[0] if previous else None, changeset_index, result)

    @staticmethod
    def _publish(journal: _JobLog, extracted: _Extracted, instance_ids: list[str] | None) -> None:
        """Log one mapping's issues and point the OData feed at its new output (inside the caller's transaction)."""
        conn, mapping, result = journal.conn, extracted.mapping, extracted.result
        mapping_id, context = mapping["id"], ("Mapping", mapping["id"])
        if instance_ids and extracted.previous_job is not None:
            # A partial run refreshes only the named instances; every other row carries over.
            merge_previous_rows(
                conn,
                job_id=journal.job_id,
                previous_job_id=extracted.previous_job,
                mapping_id=mapping_id,
                replaced=instance_ids,
                tables=result.tables,
            )
        for issue in result.issues:
            journal.issue(issue)
        summary = ", ".join(f"{name}: {count} rows" for name, count in result.tables.items()) or "no tables"
        journal.entry(
            "Information",
            "Unknown",
            f"Mapping '{mapping['mappingName']}' extracted ({summary}).",
            issues=bool(result.issues),
            context=context,
        )
        record = {
            "extractionId": journal.job_id,
            "extractionTimestamp": now_iso(),
            "changesetIndex": extracted.changeset_index,
            "mappingTimestamp": mapping.get("modifiedOn"),
        }
        conn.execute(
            "INSERT OR REPLACE INTO records (kind, id, parent, data) VALUES ('mapping_extraction', ?, ?, ?)",
            (journal.job_id, mapping_id, json.dumps(record)),
        )
        conn.execute(
            "INSERT OR REPLACE INTO ex_latest VALUES (?, ?, ?, ?)",
            (mapping_id, journal.job_id, extracted.changeset_index, now_iso()),
        )


def _load(
    conn: sqlite3.Connection, kind: str, record_id: str | None = None, parent: str | None = None
) -> list[dict[str, Any]]:
    """Stored records of a kind, by id or by parent, in insertion order."""
    if record_id is not None:
        rows = conn.execute("SELECT data FROM records WHERE kind = ? AND id = ?", (kind, record_id)).fetchall()
    else:
        rows = conn.execute(
            "SELECT data FROM records WHERE kind = ? AND parent = ? ORDER BY seq", (kind, parent)
        ).fetchall()
    if record_id is not None and not rows:
        raise LookupError(f"{kind} {record_id}")
    return [json.loads(r[0]) for r in rows]


def _mappings_to_extract(conn: sqlite3.Connection, imodel_id: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The requested mappings (even with extraction disabled), else every mapping with extraction enabled."""
    mappings = _load(conn, "mapping", parent=imodel_id)
    wanted = [m["id"] for m in request.get("mappings") or []]
    if wanted:
        return [m for m in mappings if m["id"] in wanted]
    return [m for m in mappings if m.get("extractionEnabled", True)]


def _changeset_index(conn: sqlite3.Connection, imodel_id: str, changeset_id: str | None) -> int:
    """The index of the requested changeset, else of the latest one."""
    row = conn.execute("SELECT data FROM sandbox_imodels WHERE id = ?", (imodel_id,)).fetchone()
    changesets = json.loads(row[0]).get("changesets", []) if row else []
    for cs in changesets:
        if changeset_id and cs["id"] == changeset_id:
            return int(cs["index"])
    return max((int(cs["index"]) for cs in changesets), default=0)
