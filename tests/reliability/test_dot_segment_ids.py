"""Every path id of every tool, set to `.`, `..` or nothing while the other ids are real: refused, nothing changed.

Regression for issue 13, item 2: ids were percent-encoded with `.` and `..` left as they are, the HTTP client
collapsed the dot segments, and `delete_group(groupId="..")` deleted the whole mapping while saying it deleted a
group. This sweep is exhaustive over (tool, path argument, value), unlike the random fuzzing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find
from hypothesis_jsonschema import from_schema

from itwin_insights_mcp.api.catalog import load_catalog

from .conftest import TALLY, World, fuzz_settings
from .harness import McpSession
from .strategies import portable_schema

BAD_IDS = (".", "..", "", "./..")
# Values `find` is slow to build (arrays of objects): a real one, as the contract tests use.
_FIXED: dict[str, Any] = {
    "ecProperties": [
        {"ecSchemaName": "Building", "ecClassName": "Wall", "ecPropertyName": "Material", "ecPropertyType": "String"}
    ],
}
TOOLS_WITH_PATH_IDS = sorted(op.tool for op in load_catalog() if any(p.location == "path" for p in op.parameters))


def _records(db: str) -> dict[tuple[str, str], str]:
    """Every entity except logs and audit entries: (kind, id) -> body."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT kind, id, data FROM records WHERE kind NOT IN ('log', 'audit')").fetchall()
        return {(r[0], r[1]): r[2] for r in rows}
    finally:
        conn.close()


def _valid_arguments(tool: str, known: dict[str, list[str]]) -> dict[str, Any]:
    """Required arguments (plus one body field for PATCH-like tools): real ids where known, else a minimal value."""
    op = load_catalog()[tool]
    schema = op.input_schema
    wanted = list(schema.get("required", []))
    if op.min_body_fields and not any(f in wanted for f in op.body_fields):
        wanted.append(op.body_fields[0])
    arguments: dict[str, Any] = {}
    for name in wanted:
        if name in known:
            arguments[name] = known[name][0]
        elif name in _FIXED:
            arguments[name] = _FIXED[name]
        else:
            field_schema = portable_schema(schema["properties"][name])
            arguments[name] = find(from_schema(field_schema), lambda _: True)
    return arguments


@pytest.mark.parametrize("tool", TOOLS_WITH_PATH_IDS)
def test_dot_segment_ids_are_refused(tool: str, world: World, tmp_path: Path) -> None:
    db = world.copy_to(tmp_path)
    op = load_catalog()[tool]
    good = _valid_arguments(tool, world.known)
    failures: list[str] = []
    with McpSession(fuzz_settings(db, tmp_path / "exports")) as mcp:
        for param in (p for p in op.parameters if p.location == "path"):
            for bad in BAD_IDS:
                before = _records(db)
                arguments = {**good, param.arg: bad}
                TALLY["dot-segment calls"] += 1
                outcome = mcp.call(tool, arguments)
                after = _records(db)
                if isinstance(outcome, str):
                    failures.append(f"{param.arg}={bad!r}: {outcome}")
                elif not outcome.is_error:
                    failures.append(f"{param.arg}={bad!r}: succeeded")
                if before != after:
                    gone = sorted(k for k in before if k not in after)
                    changed = sorted(k for k in before if k in after and before[k] != after[k])
                    failures.append(
                        f"{param.arg}={bad!r}: changed the store (removed {len(gone)}: "
                        f"{sorted({k[0] for k in gone})}, modified {len(changed)}: {sorted({k[0] for k in changed})})"
                    )
                    db = world.copy_to(tmp_path)  # restore, so the next case starts from the same state
                    break
    TALLY["dot-segment failures"] += len(failures)
    assert not failures, f"{tool}({good}):\n" + "\n".join(f"- {f}" for f in failures)
