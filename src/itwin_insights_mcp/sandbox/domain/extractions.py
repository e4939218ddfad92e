"""Extraction runs: what a run request may name, queuing it on the job runner, and reading what a run wrote."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..engine.extraction import extracted_rows, extracted_tables
from ..engine.jobs import JobRunner
from ..errors import invalid, not_found
from ..store import Record, Store
from .caller import Caller
from .imodels import imodel

__all__ = ["check_run_request", "job", "latest_run", "output_rows", "output_tables", "start_extraction"]


def check_run_request(
    store: Store, imodel_id: str, mapping_ids: Sequence[str], changeset_id: str | None, target: str = "imodelId"
) -> None:
    """A run names a known iModel (404 naming `target`), its own mappings and one of its changesets."""
    found = imodel(store, imodel_id, target)
    for mapping_id in mapping_ids:
        if store.get("mapping", mapping_id, parent=imodel_id) is None:
            raise not_found("MappingNotFound", "Mapping", "mappings")
    if changeset_id and changeset_id not in {c["id"] for c in found.get("changesets", [])}:
        raise invalid(
            f"Unknown changesetId {changeset_id!r} for this iModel; list_changesets gives its "
            "changesets (omit changesetId for the latest).",
            "changesetId",
        )


def start_extraction(
    caller: Caller, jobs: JobRunner, imodel_id: str, request: dict[str, Any], target: str = "imodelId"
) -> Record:
    """Check and queue a run (`request`: mappings, changesetId, ecInstanceIds), then start it in the background."""
    with caller.store.transaction():
        check_run_request(
            caller.store,
            imodel_id,
            [item["id"] for item in request.get("mappings", [])],
            request.get("changesetId"),
            target,
        )
        record = jobs.enqueue(imodel_id, request, caller.user_email)
    jobs.start(record.id)
    return record


def job(store: Store, job_id: str, imodel_id: str | None = None) -> Record | None:
    """A run by id (of this iModel when given)."""
    return store.get("job", job_id, parent=imodel_id)


def latest_run(store: Store, mapping_id: str) -> str | None:
    """The id of the mapping's latest successful run, whose tables the reports publish."""
    row = store.conn.execute("SELECT job_id FROM ex_latest WHERE mapping_id = ?", (mapping_id,)).fetchone()
    return str(row[0]) if row else None


def output_tables(store: Store, job_id: str, mapping_id: str) -> dict[str, list[tuple[str, str]]]:
    """The tables one run wrote for one mapping: name -> [(column, dataType)]."""
    return extracted_tables(store.conn, job_id, mapping_id)


def output_rows(store: Store, job_id: str, mapping_id: str, table: str) -> Iterator[list[Any]]:
    """The rows of one output table, in row order."""
    return extracted_rows(store.conn, job_id, mapping_id, table)
