"""Extraction jobs: queued by `run_extraction`, run on one background thread, never left stuck.

States go Queued -> Running -> Succeeded | Failed, each change logged. A job interrupted by a restart is marked
Failed with the reason at the next start (`recover`). The worker uses its own SQLite connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .extraction import ExtractionIssue, ensure_tables, extract_mapping
from .store import Record, Store, now_iso

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)


class JobRunner:
    """Runs extraction jobs one at a time in a background thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        ensure_tables(store.conn)

    def enqueue(self, imodel_id: str, request: dict[str, Any], user_email: str) -> Record:
        """Record a Queued job (inside the caller's transaction); `start` it after commit."""
        now = now_iso()
        job_id = str(uuid.uuid4())
        data = {"id": job_id, "imodelId": imodel_id, "state": "Queued", "reason": "Queued.",
                "containsIssues": False, "startedOn": now, "request": request, "createdBy": user_email}
        record = self._store.insert("job", imodel_id, data)
        _log(self._store.conn, job_id, "Queued", "Queued.", "IModel", imodel_id, "Information", "StateChange",
             f"Extraction of iModel {imodel_id} queued.", False)
        return record

    def start(self, job_id: str) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-extraction")
        self._executor.submit(self._run_safely, job_id)

    def recover(self) -> None:
        """Jobs that were Queued or Running when the sandbox stopped end Failed, with the reason logged."""
        conn = self._store.conn
        rows = conn.execute(
            "SELECT id, parent FROM records WHERE kind = 'job' AND json_extract(data, '$.state') IN ('Queued', 'Running')"
        ).fetchall()
        for job_id, imodel_id in rows:
            reason = "The sandbox restarted before this extraction finished; run the extraction again."
            with self._store.transaction():
                _set_state(conn, job_id, "Failed", reason, True)
                _log(conn, job_id, "Failed", reason, "IModel", imodel_id, "Error", "StateChange", reason, True)

    def shutdown(self) -> None:
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _run_safely(self, job_id: str) -> None:
        conn = self._store.connect()
        try:
            self._run(conn, job_id)
        except InterruptedError:
            log.info("Extraction %s interrupted by shutdown; it will be marked Failed at the next start.", job_id)
        except Exception as exc:
            log.exception("Extraction %s failed", job_id)
            reason = f"The extraction failed unexpectedly ({type(exc).__name__})."
            _in_tx(conn, lambda: (_set_state(conn, job_id, "Failed", reason, True),
                                  _log(conn, job_id, "Failed", reason, "IModel", "", "Error", "Unknown", reason, True)))
        finally:
            conn.close()

    def _run(self, conn: sqlite3.Connection, job_id: str) -> None:
        job = _job(conn, job_id)
        imodel_id = job["imodelId"]
        request = job.get("request") or {}
        _in_tx(conn, lambda: (_set_state(conn, job_id, "Running", "Not completed yet.", False),
                              _log(conn, job_id, "Running", "Not completed yet.", "IModel", imodel_id, "Information",
                                   "StateChange", "Extraction started.", False)))
        mappings = _mappings_to_extract(conn, imodel_id, request)
        issues = False
        if not mappings:
            issues = True
            _in_tx(conn, lambda: _log(conn, job_id, "Running", "Not completed yet.", "IModel", imodel_id, "Warning",
                                      "GroupQuery", f"iModel {imodel_id} has 0 mappings to extract.", True))
        changeset_index = _changeset_index(conn, imodel_id, request.get("changesetId"))
        for mapping in mappings:
            issues |= self._extract_one(conn, job_id, imodel_id, mapping, request, changeset_index)
        reason = "Completed with issues; see the logs." if issues else "Completed"
        _in_tx(conn, lambda: (_set_state(conn, job_id, "Succeeded", reason, issues),
                              _log(conn, job_id, "Succeeded", reason, "IModel", imodel_id, "Information",
                                   "StateChange", "Extraction finished.", issues)))

    def _extract_one(self, conn: sqlite3.Connection, job_id: str, imodel_id: str, mapping: dict[str, Any],
                     request: dict[str, Any], changeset_index: int) -> bool:
        mapping_id = mapping["id"]
        latest = conn.execute("SELECT changeset_index FROM ex_latest WHERE mapping_id = ?", (mapping_id,)).fetchone()
        if latest is not None and latest[0] > changeset_index:
            message = (f"Mapping '{mapping['mappingName']}' was already extracted from a newer changeset "
                       f"(index {latest[0]}); it is not re-extracted from index {changeset_index}. Copy the mapping "
                       "to extract an older state.")
            _in_tx(conn, lambda: _log(conn, job_id, "Running", "Not completed yet.", "Mapping", mapping_id, "Warning",
                                      "GroupQuery", message, True))
            return True
        groups = [_row_data(r) for r in conn.execute(
            "SELECT data FROM records WHERE kind = 'group' AND parent = ? ORDER BY seq", (mapping_id,))]
        properties: dict[str, list[dict[str, Any]]] = {}
        for group in groups:
            properties[group["id"]] = [_row_data(r) for r in conn.execute(
                "SELECT data FROM records WHERE kind = 'property' AND parent = ? ORDER BY seq", (group["id"],))]
        result = extract_mapping(conn, job_id=job_id, imodel_id=imodel_id, mapping_id=mapping_id, groups=groups,
                                 properties=properties, ecinstance_ids=request.get("ecInstanceIds"),
                                 cancelled=self._stopping.is_set)

        def finish() -> None:
            for issue in result.issues:
                _log_issue(conn, job_id, issue)
            summary = ", ".join(f"{name}: {count} rows" for name, count in result.tables.items()) or "no tables"
            _log(conn, job_id, "Running", "Not completed yet.", "Mapping", mapping_id, "Information", "Unknown",
                 f"Mapping '{mapping['mappingName']}' extracted ({summary}).", bool(result.issues))
            previous = conn.execute("SELECT job_id FROM ex_latest WHERE mapping_id = ?", (mapping_id,)).fetchone()
            conn.execute("INSERT OR REPLACE INTO ex_latest VALUES (?, ?, ?, ?)",
                         (mapping_id, job_id, changeset_index, now_iso()))
            if previous is not None and previous[0] != job_id:
                conn.execute("DELETE FROM ex_rows WHERE job_id = ? AND mapping_id = ?", (previous[0], mapping_id))
                conn.execute("DELETE FROM ex_tables WHERE job_id = ? AND mapping_id = ?", (previous[0], mapping_id))

        _in_tx(conn, finish)
        return bool(result.issues)


def _row_data(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(row[0])
    return value


def _job(conn: sqlite3.Connection, job_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT data FROM records WHERE kind = 'job' AND id = ?", (job_id,)).fetchone()
    if row is None:
        raise LookupError(job_id)
    return _row_data(row)


def _mappings_to_extract(conn: sqlite3.Connection, imodel_id: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The requested mappings (even with extraction disabled), else every mapping with extraction enabled."""
    rows = [_row_data(r) for r in conn.execute(
        "SELECT data FROM records WHERE kind = 'mapping' AND parent = ? ORDER BY seq", (imodel_id,))]
    wanted = [m["id"] for m in request.get("mappings") or []]
    if wanted:
        return [m for m in rows if m["id"] in wanted]
    return [m for m in rows if m.get("extractionEnabled", True)]


def _changeset_index(conn: sqlite3.Connection, imodel_id: str, changeset_id: str | None) -> int:
    row = conn.execute("SELECT data FROM sandbox_imodels WHERE id = ?", (imodel_id,)).fetchone()
    changesets = json.loads(row[0]).get("changesets", []) if row else []
    if changeset_id:
        for cs in changesets:
            if cs["id"] == changeset_id:
                return int(cs["index"])
    return max((int(cs["index"]) for cs in changesets), default=0)


def _in_tx(conn: sqlite3.Connection, work: Any) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _set_state(conn: sqlite3.Connection, job_id: str, state: str, reason: str, issues: bool) -> None:
    conn.execute(
        "UPDATE records SET data = json_set(data, '$.state', ?, '$.reason', ?, '$.containsIssues', json(?)) "
        "WHERE kind = 'job' AND id = ?", (state, reason, "true" if issues else "false", job_id))


def _log(conn: sqlite3.Connection, job_id: str, state: str, reason: str, context_type: str, context_id: str,
         level: str, category: str, message: str, contains_issues: bool) -> None:
    entry = {"state": state, "reason": reason, "dateTime": now_iso(), "jobId": job_id, "contextType": context_type,
             "contextId": context_id, "level": level, "category": category, "message": message,
             "containsIssues": contains_issues}
    conn.execute("INSERT INTO records (kind, id, parent, data) VALUES ('log', ?, ?, ?)",
                 (str(uuid.uuid4()), job_id, json.dumps(entry)))


def _log_issue(conn: sqlite3.Connection, job_id: str, issue: ExtractionIssue) -> None:
    _log(conn, job_id, "Running", "Not completed yet.", issue.context_type, issue.context_id, issue.level,
         issue.category, issue.message, True)
