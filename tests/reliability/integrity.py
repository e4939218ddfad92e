"""The sandbox database's consistency after abuse: SQLite's own check plus the references the store relies on.

`records` has no foreign keys (one table, a `kind` and a `parent` id), so nothing but these queries notices a group
left behind by a half-done delete, results whose job is gone, or a failed job's partial rows (issue 13, item 7).
"""

from __future__ import annotations

import sqlite3

__all__ = ["ORPHAN_QUERIES", "integrity_problems"]


def _child_without(kind: str, parent_kind: str) -> str:
    return (
        f"SELECT count(*) FROM records c WHERE c.kind = '{kind}' AND NOT EXISTS "
        f"(SELECT 1 FROM records p WHERE p.kind = '{parent_kind}' AND p.id = c.parent)"
    )


# Each query counts rows that break one rule; every count must be 0.
ORPHAN_QUERIES: dict[str, str] = {
    "group whose mapping is gone": _child_without("group", "mapping"),
    "property whose group is gone": _child_without("property", "group"),
    "report link whose report is gone": _child_without("report_mapping", "report"),
    "report link to a mapping that is gone": (
        "SELECT count(*) FROM records l WHERE l.kind = 'report_mapping' AND NOT EXISTS "
        "(SELECT 1 FROM records m WHERE m.kind = 'mapping' AND m.id = l.id)"
    ),
    "report aggregation whose report is gone": _child_without("report_aggregation", "report"),
    "report aggregation whose table set is gone": (
        "SELECT count(*) FROM records l WHERE l.kind = 'report_aggregation' AND NOT EXISTS "
        "(SELECT 1 FROM records s WHERE s.kind = 'table_set' AND s.id = l.id)"
    ),
    # No "table set whose mapping is gone": deleting a mapping leaves its aggregation table sets by design
    # (docs/architecture.md, issue 17 item 4; tests/contract/test_imodel_query.py proves it).
    "aggregation table whose set is gone": _child_without("agg_table", "table_set"),
    "aggregation property whose table is gone": _child_without("agg_property", "agg_table"),
    "extraction log whose job is gone": _child_without("log", "job"),
    "mapping of an unknown iModel": (
        "SELECT count(*) FROM records m WHERE m.kind = 'mapping' AND NOT EXISTS "
        "(SELECT 1 FROM sandbox_imodels i WHERE i.id = m.parent)"
    ),
    "extracted rows without their table": (
        "SELECT count(*) FROM ex_rows r WHERE NOT EXISTS (SELECT 1 FROM ex_tables t WHERE t.job_id = r.job_id "
        "AND t.mapping_id = r.mapping_id AND t.table_name = r.table_name)"
    ),
    "extracted table of an unknown job": (
        "SELECT count(*) FROM ex_tables t WHERE NOT EXISTS (SELECT 1 FROM records j WHERE j.kind = 'job' "
        "AND j.id = t.job_id)"
    ),
    "partial results kept for a failed job": (
        "SELECT count(*) FROM ex_tables t JOIN records j ON j.kind = 'job' AND j.id = t.job_id "
        "WHERE json_extract(j.data, '$.state') = 'Failed'"
    ),
    "record whose body is not a JSON object": (
        "SELECT count(*) FROM records WHERE json_valid(data) = 0 OR json_type(data) != 'object'"
    ),
}


def integrity_problems(db_path: str, *, orphans: bool = True) -> list[str]:
    """Every broken rule with its count; empty when the database is sound.

    Opens its own connection, which also replays a WAL left behind by a killed process.
    """
    conn = sqlite3.connect(db_path, timeout=30.0)
    try:
        found: list[str] = []
        checked = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if checked != ["ok"]:
            found.append(f"PRAGMA integrity_check: {'; '.join(checked[:5])}")
        if not orphans:
            return found
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for rule, sql in ORPHAN_QUERIES.items():
            if "ex_" in sql and not {"ex_rows", "ex_tables"} <= tables:
                continue  # no extraction ever ran on this database: there is nothing to be orphaned
            count = conn.execute(sql).fetchone()[0]
            if count:
                found.append(f"{rule}: {count} row(s)")
        return found
    finally:
        conn.close()
