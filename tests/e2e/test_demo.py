"""`itwin-insights-mcp demo` runs the whole workflow as a user would see it."""

from __future__ import annotations

import subprocess
import time

from .conftest import COMMAND, child_env


def test_demo_prints_tables_counts_and_a_preview(tmp_path: object) -> None:
    started = time.monotonic()
    done = subprocess.run([COMMAND, "demo"], capture_output=True, env=child_env("unused.db"), timeout=120, check=False)
    elapsed = time.monotonic() - started
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    for line in (
        "QuantityTakeoff_Walls              840",
        "QuantityTakeoff_Doors              300",
        "Totals_WallsByMaterial",
    ):
        assert line in out
    assert "Extraction Succeeded" in out and "Preview of Totals_WallsByMaterial" in out
    assert elapsed < 60
