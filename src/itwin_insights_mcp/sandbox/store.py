"""SQLite persistence for the sandbox: one file (WAL) or a shared in-memory database.

Every API entity is a row of `records` (kind, id, parent, JSON data) ordered by an insertion sequence, which is what
paging walks. Writes happen inside `transaction()`: a request that fails part-way rolls back and changes nothing.
The request path uses one connection on the event loop thread; background jobs open their own (`connect()`).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Record", "Store", "now_iso"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, parent, id)
);
CREATE INDEX IF NOT EXISTS records_by_id ON records (kind, id);
CREATE INDEX IF NOT EXISTS records_by_parent ON records (kind, parent, seq);
CREATE TABLE IF NOT EXISTS sandbox_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    user_email TEXT NOT NULL, body TEXT
);
CREATE TABLE IF NOT EXISTS sandbox_imodels (
    id TEXT PRIMARY KEY,
    itwin_id TEXT NOT NULL,
    data TEXT NOT NULL
);
"""


def now_iso() -> str:
    """Current time as the API writes it: ISO-8601, seconds, explicit UTC offset."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Record:
    """One stored entity: its kind, id, owning id and the JSON body the API returns (minus `_links`)."""

    seq: int
    kind: str
    id: str
    parent: str
    data: dict[str, Any]


class Store:
    """The sandbox database: records of API entities plus the sample iModels' element tables."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if path == ":memory:":
            # A throwaway file rather than SQLite's shared-cache memory mode, whose table locks ignore busy_timeout
            # and would fail requests while an extraction thread writes.
            self._tempdir = tempfile.TemporaryDirectory(prefix="insights-sandbox-")
            file = Path(self._tempdir.name) / "sandbox.db"
        else:
            file = Path(path).expanduser()
            file.parent.mkdir(parents=True, exist_ok=True)
        self.uri = file.resolve().as_uri()
        self.conn = self.connect()
        self._lock = threading.RLock()
        self.conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        """A new connection to the same database (for a background thread)."""
        conn = sqlite3.connect(self.uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def close(self) -> None:
        self.conn.close()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (re-raised)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- records -----------------------------------------------------------------------------------------------

    @staticmethod
    def _record(row: sqlite3.Row) -> Record:
        return Record(row["seq"], row["kind"], row["id"], row["parent"], json.loads(row["data"]))

    def insert(self, kind: str, parent: str, data: Mapping[str, Any], *, record_id: str | None = None) -> Record:
        rid = record_id or str(data.get("id") or uuid.uuid4())
        body = dict(data)
        cur = self.conn.execute(
            "INSERT INTO records (kind, id, parent, data) VALUES (?, ?, ?, ?)",
            (kind, rid, parent, json.dumps(body)),
        )
        return Record(int(cur.lastrowid or 0), kind, rid, parent, body)

    def get(self, kind: str, record_id: str, *, parent: str | None = None) -> Record | None:
        if parent is None:
            row = self.conn.execute("SELECT * FROM records WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
        else:
            row = self.conn.execute(
                "SELECT * FROM records WHERE kind = ? AND id = ? AND parent = ?", (kind, record_id, parent)
            ).fetchone()
        return self._record(row) if row else None

    def update(self, record: Record, data: Mapping[str, Any]) -> Record:
        body = dict(data)
        self.conn.execute("UPDATE records SET data = ? WHERE seq = ?", (json.dumps(body), record.seq))
        return Record(record.seq, record.kind, record.id, record.parent, body)

    def delete(self, record: Record) -> None:
        self.conn.execute("DELETE FROM records WHERE seq = ?", (record.seq,))

    def children(self, kind: str, parent: str) -> list[Record]:
        rows = self.conn.execute(
            "SELECT * FROM records WHERE kind = ? AND parent = ? ORDER BY seq", (kind, parent)
        ).fetchall()
        return [self._record(r) for r in rows]

    def delete_children(self, kind: str, parent: str) -> None:
        self.conn.execute("DELETE FROM records WHERE kind = ? AND parent = ?", (kind, parent))

    def delete_all(self, kind: str, record_id: str) -> None:
        """Every record of `kind` with this id, whatever its parent (e.g. all links to one mapping)."""
        self.conn.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))

    def record_request(self, at: str, method: str, path: str, user_email: str, body: str) -> None:
        """Keep who called what (the sandbox's `record` mode, for identity tests)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sandbox_requests (at, method, path, user_email, body) VALUES (?, ?, ?, ?, ?)",
                (at, method, path, user_email, body),
            )

    def page(
        self,
        kind: str,
        parent: str | None,
        *,
        after_seq: int,
        limit: int,
        equals: Mapping[str, Any] | None = None,
    ) -> tuple[list[Record], int | None]:
        """Up to `limit` records after `after_seq`, and the seq to continue from (None on the last page)."""
        sql = "SELECT * FROM records WHERE kind = ? AND seq > ?"
        args: list[Any] = [kind, after_seq]
        if parent is not None:
            sql += " AND parent = ?"
            args.append(parent)
        for key, value in (equals or {}).items():
            sql += f" AND json_extract(data, '$.{key}') IS ?"
            args.append(int(value) if isinstance(value, bool) else value)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit + 1)
        rows = self.conn.execute(sql, args).fetchall()
        records = [self._record(r) for r in rows[:limit]]
        next_seq = records[-1].seq if len(rows) > limit else None
        return records, next_seq

    # -- iModels known to the sandbox ----------------------------------------------------------------------------

    def imodel(self, imodel_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM sandbox_imodels WHERE id = ?", (imodel_id,)).fetchone()
        return json.loads(row["data"]) if row else None

    def imodels(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT data FROM sandbox_imodels ORDER BY rowid").fetchall()
        return [json.loads(r["data"]) for r in rows]

    def register_imodel(self, data: Mapping[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sandbox_imodels (id, itwin_id, data) VALUES (?, ?, ?)",
            (data["id"], data["iTwinId"], json.dumps(dict(data))),
        )
