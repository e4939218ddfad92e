"""State that every replica of a hosted server must share: OAuth clients, pending sign-ins, codes, refresh tokens,
revoked access tokens and each user's Bentley (IMS) tokens.

It lives in an existing database, never in one process's memory: a SQLite file (WAL) that the replicas on one node
share, or PostgreSQL (`ITWIN_INSIGHTS_STATE_DB=postgresql://...`) for replicas on several nodes. The SQL is written
once for both (upserts with ON CONFLICT, RETURNING, `?` placeholders translated for PostgreSQL). Secrets are never
stored in clear: codes and refresh tokens as SHA-256 hashes, IMS tokens sealed with Fernet
(`ITWIN_INSIGHTS_STATE_KEY`, the same on every replica). Expired rows are deleted a day after they expire, by each
replica at most every ten minutes (`purge_if_due`: a background task of the HTTP app, and the paths that add rows),
so the tables stay as small as the live sign-ins.

The database drivers block, so async code never calls them on the event loop: `one`, `atomic` and `purge_due` run
the blocking calls on this store's own small thread pool (`STATE_THREADS` threads, each with its own connection).
The blocking methods (`transaction`, `query_one`, `purge_expired`, `purge_if_due`) are for that pool, scripts and
tests.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography.fernet import Fernet, InvalidToken

from ..errors import ConfigError

__all__ = [
    "PURGE_INTERVAL_SECONDS",
    "PURGE_RETENTION_SECONDS",
    "STATE_THREADS",
    "SharedState",
    "StateConnection",
    "digest",
]

PURGE_INTERVAL_SECONDS = 600.0  # a replica purges expired rows at most this often
PURGE_RETENTION_SECONDS = 86400.0  # expired rows are kept a day, then deleted
STATE_THREADS = 4  # database calls in flight at once per replica (and connections held: one per thread)

T = TypeVar("T")

TABLES = (
    "CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, data TEXT NOT NULL, "
    "expires DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS oauth_pending (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
    "expires DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oauth_codes (code_hash TEXT PRIMARY KEY, data TEXT NOT NULL, "
    "expires DOUBLE PRECISION NOT NULL, used INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS oauth_refresh (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, data TEXT NOT NULL, "
    "expires DOUBLE PRECISION NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS oauth_refresh_family ON oauth_refresh (family)",
    "CREATE TABLE IF NOT EXISTS oauth_revoked (jti TEXT PRIMARY KEY, family TEXT, expires DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS upstream_tokens (subject TEXT PRIMARY KEY, sealed TEXT NOT NULL, "
    "updated DOUBLE PRECISION NOT NULL)",
)


def digest(secret: str) -> str:
    """How secrets are keyed at rest."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Cursor(Protocol):
    """The part of a DB-API cursor the state code uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Sequence[Any] | None: ...


class StateConnection(Protocol):
    """One connection inside a transaction; SQL uses `?` placeholders on every backend."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...


class _Sqlite:
    """One node: a SQLite file in WAL mode, one connection per thread, BEGIN IMMEDIATE for writes."""

    def __init__(self, path: str) -> None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._path = str(Path(path).expanduser())
        self._local = threading.local()
        conn = self._connect()
        for statement in TABLES:
            conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
        return conn

    def read(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._connect().execute(sql, tuple(args)).fetchone()
        return row

    @contextmanager
    def transaction(self) -> Iterator[StateConnection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class _PgConnection:
    """A psycopg connection speaking the `?` placeholders the state code writes."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(sql.replace("?", "%s"), tuple(args))
        return cursor


class _Postgres:
    """Several nodes: PostgreSQL, one autocommit connection per thread, explicit transactions."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "ITWIN_INSIGHTS_STATE_DB is a PostgreSQL URL: install the driver with "
                "`pip install 'itwin-insights-mcp[postgres]'`."
            ) from None
        self._psycopg = psycopg
        self._url = url
        self._local = threading.local()
        conn = self._connect()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(7412093)")  # replicas starting together create tables once
            for statement in TABLES:
                conn.execute(statement)

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            except self._psycopg.Error as exc:
                raise ConfigError(f"Cannot reach the state database ({type(exc).__name__}).") from None
            self._local.conn = conn
        return conn

    def read(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._connect().execute(sql.replace("?", "%s"), tuple(args)).fetchone()
        return row

    @contextmanager
    def transaction(self) -> Iterator[StateConnection]:
        conn = self._connect()
        with conn.transaction():
            yield _PgConnection(conn)


class SharedState:
    """The hosted server's shared store."""

    def __init__(self, location: str, key: str, *, purge_interval: float = PURGE_INTERVAL_SECONDS) -> None:
        self.purge_interval = purge_interval
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                "ITWIN_INSIGHTS_STATE_KEY must be a Fernet key (32 url-safe base64 bytes). Make one with: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
        postgres = location.startswith(("postgresql://", "postgres://"))
        self.backend: _Sqlite | _Postgres = _Postgres(location) if postgres else _Sqlite(location)
        self._pool = ThreadPoolExecutor(max_workers=STATE_THREADS, thread_name_prefix="insights-state")

    # -- from async code: the blocking calls run on the pool, never on the event loop ---------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on this store's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def one(self, sql: str, args: tuple[Any, ...]) -> Sequence[Any] | None:
        """One row of a read."""
        return await self.run(self.query_one, sql, args)

    async def atomic(self, work: Callable[[StateConnection], T]) -> T:
        """`work(conn)` inside one transaction (committed, or rolled back when it raises)."""
        return await self.run(self._in_transaction, work)

    async def client(self, client_id: str) -> dict[str, Any] | None:
        return await self.run(self.client_record, client_id)

    async def purge_due(self) -> bool:
        return await self.run(self.purge_if_due)

    def close(self) -> None:
        """Stop the thread pool (waiting for calls in flight)."""
        self._pool.shutdown(wait=True)

    def _in_transaction(self, work: Callable[[StateConnection], T]) -> T:
        with self.transaction() as conn:
            return work(conn)

    # -- blocking: for the pool, scripts and tests ----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[StateConnection]:
        """One atomic unit of work; rolled back on error. SQLite serialises writers, PostgreSQL rows."""
        with self.backend.transaction() as conn:
            yield conn

    def query_one(self, sql: str, args: tuple[Any, ...]) -> Sequence[Any] | None:
        """One row of a read (outside any transaction)."""
        return self.backend.read(sql, args)

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def unseal(self, sealed: str) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return None
        return value

    def client_record(self, client_id: str) -> dict[str, Any] | None:
        """A registered (or cached metadata-document) OAuth client."""
        row = self.query_one("SELECT data FROM oauth_clients WHERE client_id = ?", (client_id,))
        return json.loads(row[0]) if row else None

    def purge_expired(self, now: float | None = None) -> None:
        """Delete rows that expired more than PURGE_RETENTION_SECONDS ago (registered clients never expire)."""
        cutoff = (time.time() if now is None else now) - PURGE_RETENTION_SECONDS
        with self.transaction() as conn:
            conn.execute("DELETE FROM oauth_pending WHERE expires < ?", (cutoff,))
            conn.execute("DELETE FROM oauth_codes WHERE expires < ?", (cutoff,))
            conn.execute("DELETE FROM oauth_refresh WHERE expires < ?", (cutoff,))
            conn.execute("DELETE FROM oauth_revoked WHERE expires < ?", (cutoff,))
            conn.execute("DELETE FROM oauth_clients WHERE expires IS NOT NULL AND expires < ?", (cutoff,))

    def purge_if_due(self, now: float | None = None) -> bool:
        """Purge when this replica has not for `purge_interval` seconds; True when it did.

        Called by the HTTP app's background task and on the paths that add rows (sign-in, registration). Replicas
        purge independently; deletes are idempotent.
        """
        now = time.time() if now is None else now
        with self._purge_lock:
            if now < self._next_purge:
                return False
            self._next_purge = now + self.purge_interval
        self.purge_expired(now)
        return True
