"""`python -m bench`: every peer comparison in one process tree, written to bench/results.json and bench/README.md.

    python -m bench                 # the five peer comparisons (about 8 minutes on 2 cores)
    python -m bench --quick         # fewer repeats and shorter runs, to check the harness (printed, not recorded)
    python -m bench --all           # also the 1,000,000-row extraction and export benchmarks (many minutes)

The generated part of bench/README.md sits between the `peer-bench` markers; the rest of the file is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import calls, context, memory, startup, throughput
from .common import BENCH_DIR, ensure_fastmcp_venv, log, machine, sandbox
from .report import render, update_readme

RESULTS = BENCH_DIR / "results.json"


def _heavy(results: dict[str, Any]) -> None:
    """The existing 1,000,000-row benchmarks, each in its own process as their README sections say."""
    with tempfile.TemporaryDirectory(prefix="bench-1m-") as tmp:
        db = str(Path(tmp) / "bench-1m.db")
        runs = {
            "extraction": ["-m", "bench.extraction", "--elements", "1000000", "--db", db],
            "export_raw": ["-m", "bench.export", "--db", db, "--raw"],
            "export_mcp": ["-m", "bench.export", "--db", db],
        }
        for name, args in runs.items():
            log(f"{name} (minutes)")
            out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs to check the harness")
    parser.add_argument("--all", action="store_true", help="also run the 1,000,000-row extraction/export benches")
    parser.add_argument("--no-preview", action="store_true", help="skip the httpx2 preview of the proposed fix")
    parser.add_argument("--no-readme", action="store_true", help="write results.json only")
    parser.add_argument("--only", nargs="*", choices=["startup", "calls", "context", "throughput", "memory"])
    args = parser.parse_args(argv)
    quick = args.quick
    preview = not args.no_preview
    plan: dict[str, int] = {
        "startup_repeats": 2 if quick else 7,
        "calls": 100 if quick else 500,
        "call_repeats": 2 if quick else 5,
        "throughput_seconds": 2 if quick else 10,
        "throughput_repeats": 1 if quick else 3,
        "memory_calls": 500 if quick else 10_000,
    }
    only = set(args.only or ["startup", "calls", "context", "throughput", "memory"])
    command = "python -m bench" + (" --quick" if quick else "") + (" --all" if args.all else "") + (
        " --no-preview" if args.no_preview else "") + (f" --only {' '.join(sorted(only))}" if args.only else "")
    results: dict[str, Any] = {"machine": machine(), "command": command, "plan": plan}
    ensure_fastmcp_venv()
    started = time.perf_counter()
    with sandbox() as sb:
        if "startup" in only:
            log("1/5 cold start")
            results["startup"] = startup.run(sb, plan["startup_repeats"])
        if "calls" in only:
            log("2/5 call overhead")
            results["calls"] = calls.run(sb, plan["calls"], plan["call_repeats"], preview)
        if "context" in only:
            log("3/5 context size")
            results["context"] = context.run(sb)
        if "throughput" in only:
            log("4/5 hosted throughput")
            results["throughput"] = throughput.run(sb, plan["throughput_seconds"], plan["throughput_repeats"], preview)
        if "memory" in only:
            log("5/5 memory")
            results["memory"] = memory.run(sb, plan["memory_calls"], preview)
    if args.all:
        _heavy(results)
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_seconds"] = round(time.perf_counter() - started)
    if quick or args.only:  # a check run: print, and leave the recorded figures alone
        print(json.dumps(results, indent=1))
        print(render(results))
        return 0
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {RESULTS}")
    if not args.no_readme:
        update_readme(BENCH_DIR / "README.md", render(results))
        log("updated bench/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
