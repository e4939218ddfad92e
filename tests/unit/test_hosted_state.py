"""The hosted shared state deletes expired rows itself, on a schedule driven by the traffic that adds them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from itwin_insights_mcp.hosted.state import PURGE_INTERVAL_SECONDS, PURGE_RETENTION_SECONDS, SharedState

NOW = 1_900_000_000.0
LONG_AGO = NOW - PURGE_RETENTION_SECONDS - 1  # expired more than the retention ago: purged
RECENT = NOW - 60  # expired a minute ago: kept for now
LATER = NOW + 3600  # still valid


@pytest.fixture
def state(tmp_path: Path) -> SharedState:
    return SharedState(str(tmp_path / "state.db"), Fernet.generate_key().decode())


def fill(state: SharedState) -> None:
    """One row per table per age, plus a registered client (which never expires)."""
    with state.transaction() as conn:
        for age, expires in (("old", LONG_AGO), ("recent", RECENT), ("live", LATER)):
            conn.execute("INSERT INTO oauth_pending VALUES (?, '{}', ?)", (age, expires))
            conn.execute("INSERT INTO oauth_codes VALUES (?, '{}', ?, 0)", (age, expires))
            conn.execute("INSERT INTO oauth_refresh VALUES (?, 'fam', '{}', ?, 0)", (age, expires))
            conn.execute("INSERT INTO oauth_revoked VALUES (?, NULL, ?)", (age, expires))
            conn.execute("INSERT INTO oauth_clients VALUES (?, '{}', ?)", (f"https://{age}.example/cimd", expires))
        conn.execute("INSERT INTO oauth_clients VALUES ('registered', ?, NULL)", (json.dumps({}),))


def keys(state: SharedState, table: str, column: str) -> set[str]:
    with state.transaction() as conn:
        rows = conn.execute(f"SELECT {column} FROM {table}").fetchall()  # type: ignore[attr-defined]
    return {row[0] for row in rows}


def test_purge_deletes_only_rows_expired_beyond_the_retention(state: SharedState) -> None:
    fill(state)
    state.purge_expired(NOW)
    for table, column in (
        ("oauth_pending", "id"),
        ("oauth_codes", "code_hash"),
        ("oauth_refresh", "token_hash"),
        ("oauth_revoked", "jti"),
    ):
        assert keys(state, table, column) == {"recent", "live"}, table
    assert keys(state, "oauth_clients", "client_id") == {
        "https://recent.example/cimd",
        "https://live.example/cimd",
        "registered",
    }


def test_purge_runs_at_most_once_per_interval(state: SharedState) -> None:
    assert state.purge_if_due(NOW)
    fill(state)
    assert not state.purge_if_due(NOW + PURGE_INTERVAL_SECONDS - 1)
    assert "old" in keys(state, "oauth_pending", "id")  # not yet due: left alone
    assert state.purge_if_due(NOW + PURGE_INTERVAL_SECONDS)
    assert keys(state, "oauth_pending", "id") == {"recent", "live"}


def test_the_real_clock_is_used_by_default(state: SharedState) -> None:
    with state.transaction() as conn:
        conn.execute("INSERT INTO oauth_pending VALUES ('old', '{}', ?)", (time.time() - PURGE_RETENTION_SECONDS - 5,))
    assert state.purge_if_due() and not state.purge_if_due()
    assert keys(state, "oauth_pending", "id") == set()
