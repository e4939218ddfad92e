"""Load, on demand (RELIABILITY_LONG=1): 50 HTTP MCP clients for 60 s, zero errors, every client held.

Runs `python -m bench.load` (see bench/load.py) in its own process and reads its figures; p99 and RSS are printed
with the run's tallies for docs/reliability.md, not asserted (they depend on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TALLY

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.long
def test_fifty_clients_for_a_minute_without_an_error(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--clients", "50", "--duration", "60", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures = json.loads(out.read_text())
    TALLY["load calls"] += figures["calls"]
    TALLY["load errors"] += figures["errors"]
    TALLY["load p99 ms"] += int(figures["p99_ms"])
    TALLY["load peak RSS MB"] += int(figures["rss_peak_mb"])
    assert figures["clients_held"] == 50, figures
    assert figures["errors"] == 0, figures
    assert done.returncode == 0, done.stderr[-2000:]
