"""State that every replica of a hosted server must share: OAuth clients, pending sign-ins, codes, refresh tokens,
revoked access tokens and each user's Bentley (IMS) tokens.

It lives in one SQLite database (WAL) that all replicas on a node open; nothing is kept in one process's memory.
Secrets are never stored in clear: codes and refresh tokens as SHA-256 hashes, IMS tokens sealed with Fernet
(`ITWIN_INSIGHTS_STATE_KEY`, the same on every replica).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ..errors import ConfigError

__all__ = ["SharedState", "digest"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS oauth_pending (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS oauth_refresh (
    token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, data TEXT NOT NULL, expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS oauth_refresh_family ON oauth_refresh (family);
CREATE TABLE IF NOT EXISTS oauth_revoked (jti TEXT PRIMARY KEY, family TEXT, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS upstream_tokens (subject TEXT PRIMARY KEY, sealed TEXT NOT NULL, updated REAL NOT NULL);
"""


def digest(secret: str) -> str:
    """How secrets are keyed at rest."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SharedState:
    """The hosted server's shared store (one SQLite file per node)."""

    def __init__(self, path: str, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                "ITWIN_INSIGHTS_STATE_KEY must be a Fernet key (32 url-safe base64 bytes). Make one with: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._path = str(Path(path).expanduser())
        self._local = threading.local()
        self._connect().executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: one writer at a time across every replica; rolled back on error."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def unseal(self, sealed: str) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return None
        return value

    # -- small typed accessors ---------------------------------------------------------------------------------

    def query_one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a read (outside any transaction)."""
        row: tuple[Any, ...] | None = self._connect().execute(sql, args).fetchone()
        return row

    def client_record(self, client_id: str) -> dict[str, Any] | None:
        """A registered (or cached metadata-document) OAuth client."""
        row = self.query_one("SELECT data FROM oauth_clients WHERE client_id = ?", (client_id,))
        return json.loads(row[0]) if row else None

    def purge_expired(self) -> None:
        now = time.time()
        with self.transaction() as conn:
            for table in ("oauth_pending", "oauth_codes", "oauth_refresh", "oauth_revoked"):
                conn.execute(f"DELETE FROM {table} WHERE expires < ?", (now - 86400,))  # noqa: S608
