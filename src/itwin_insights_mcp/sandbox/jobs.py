"""Extraction jobs: queued by `run_extraction`, run on one background thread, never left stuck.

States go Queued -> Running -> Succeeded | Failed, each change logged. A job interrupted by a restart is marked
Failed with the reason at the next start (`recover`). The worker uses its own SQLite connection, and every state
change and log entry is written in a transaction of its own, so a reader never sees half a transition.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from .extraction import ExtractionIssue, ensure_tables, extract_mapping, merge_previous_rows
from .store import Record, Store, now_iso

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

NOT_DONE = "Not completed yet."
RESTARTED = "The sandbox restarted before this extraction finished; run the extraction again."


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

    def transition(
        self, state: str, reason: str, message: str, *, issues: bool = False, level: str = "Information"
    ) -> None:
        """Change the job's state and log it, in one transaction."""
        self.state, self.reason = state, reason
        with _tx(self.conn):
            self.conn.execute(
                "UPDATE records SET data = json_set(data, '$.state', ?, '$.reason', ?, '$.containsIssues', json(?)) "
                "WHERE kind = 'job' AND id = ?",
                (state, reason, "true" if issues else "false", self.job_id),
            )
            self.entry(level, "StateChange", message, issues=issues)

    def issue(self, issue: ExtractionIssue) -> None:
        self.entry(
            issue.level, issue.category, issue.message, issues=True, context=(issue.context_type, issue.context_id)
        )


class JobRunner:
    """Runs extraction jobs one at a time in a background thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        ensure_tables(store.conn)

    def enqueue(self, imodel_id: str, request: dict[str, Any], user_email: str) -> Record:
        """Record a Queued job (inside the caller's transaction); `start` it after commit."""
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
        _JobLog(self._store.conn, job_id, imodel_id).entry(
            "Information", "StateChange", f"Extraction of iModel {imodel_id} queued."
        )
        return record

    def start(self, job_id: str) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-extraction")
        self._executor.submit(self._run_safely, job_id)

    def recover(self) -> None:
        """Jobs that were Queued or Running when the sandbox stopped end Failed, with the reason logged."""
        conn = self._store.conn
        rows = conn.execute(
            "SELECT id, parent FROM records WHERE kind = 'job' "
            "AND json_extract(data, '$.state') IN ('Queued', 'Running')"
        ).fetchall()
        for job_id, imodel_id in rows:
            _JobLog(conn, job_id, imodel_id).transition("Failed", RESTARTED, RESTARTED, issues=True, level="Error")

    def shutdown(self) -> None:
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _run_safely(self, job_id: str) -> None:
        conn = self._store.connect()
        try:
            job = _load(conn, "job", job_id)[0]
            journal = _JobLog(conn, job_id, job["imodelId"])
            try:
                self._run(journal, job)
            except InterruptedError:
                log.info("Extraction %s interrupted by shutdown; it is marked Failed at the next start.", job_id)
            except Exception as exc:
                log.exception("Extraction %s failed", job_id)
                reason = f"The extraction failed unexpectedly ({type(exc).__name__})."
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                journal.transition("Failed", reason, reason, issues=True, level="Error")
        finally:
            conn.close()

    def _run(self, journal: _JobLog, job: dict[str, Any]) -> None:
        conn, imodel_id = journal.conn, journal.imodel_id
        request = job.get("request") or {}
        journal.transition("Running", NOT_DONE, "Extraction started.")
        mappings = _mappings_to_extract(conn, imodel_id, request)
        issues = False
        if not mappings:
            issues = True
            with _tx(conn):
                journal.entry("Warning", "GroupQuery", f"iModel {imodel_id} has 0 mappings to extract.", issues=True)
        changeset_index = _changeset_index(conn, imodel_id, request.get("changesetId"))
        for mapping in mappings:
            issues |= self._extract_one(journal, mapping, request, changeset_index)
        reason = "Completed with issues; see the logs." if issues else "Completed"
        journal.transition("Succeeded", reason, "Extraction finished.", issues=issues)

    def _extract_one(
        self, journal: _JobLog, mapping: dict[str, Any], request: dict[str, Any], changeset_index: int
    ) -> bool:
        conn, mapping_id = journal.conn, mapping["id"]
        context = ("Mapping", mapping_id)
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
                    context=context,
                )
            return True
        groups = _load(conn, "group", parent=mapping_id)
        properties = {group["id"]: _load(conn, "property", parent=group["id"]) for group in groups}
        instance_ids = request.get("ecInstanceIds") or None
        result = extract_mapping(
            conn,
            job_id=journal.job_id,
            imodel_id=journal.imodel_id,
            mapping_id=mapping_id,
            groups=groups,
            properties=properties,
            ecinstance_ids=instance_ids,
            cancelled=self._stopping.is_set,
        )
        with _tx(conn):
            if instance_ids and previous is not None:
                # A partial run refreshes only the named instances; every other row carries over.
                merge_previous_rows(
                    conn,
                    job_id=journal.job_id,
                    previous_job_id=previous[0],
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
            extraction = {
                "extractionId": journal.job_id,
                "extractionTimestamp": now_iso(),
                "changesetIndex": changeset_index,
                "mappingTimestamp": mapping.get("modifiedOn"),
            }
            conn.execute(
                "INSERT OR REPLACE INTO records (kind, id, parent, data) VALUES ('mapping_extraction', ?, ?, ?)",
                (journal.job_id, mapping_id, json.dumps(extraction)),
            )
            conn.execute(
                "INSERT OR REPLACE INTO ex_latest VALUES (?, ?, ?, ?)",
                (mapping_id, journal.job_id, changeset_index, now_iso()),
            )
            if previous is not None and previous[0] != journal.job_id:
                conn.execute("DELETE FROM ex_rows WHERE job_id = ? AND mapping_id = ?", (previous[0], mapping_id))
                conn.execute("DELETE FROM ex_tables WHERE job_id = ? AND mapping_id = ?", (previous[0], mapping_id))
        return bool(result.issues)


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
