"""Export of a whole OData table through the MCP tool, against writing the same rows straight from SQLite.

Needs a database prepared by `python -m bench.extraction` (it finds the newest report there):
    python -m bench.export --db /tmp/bench-1m.db
Prints one JSON object: rows, seconds, rows per second and peak RSS (this process only) for both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def export_through_mcp(db: str, out_dir: str) -> dict[str, Any]:
    from mcp import Client

    from itwin_insights_mcp.backend import open_client
    from itwin_insights_mcp.server.app import build_server
    from itwin_insights_mcp.settings import Settings

    conn = sqlite3.connect(db)
    report_id = conn.execute("SELECT id FROM records WHERE kind = 'report' ORDER BY seq DESC LIMIT 1").fetchone()[0]
    conn.close()
    settings = Settings(backend="sandbox", sandbox_db=db, export_dir=out_dir)
    async with open_client(settings) as api, Client(build_server(settings, api)) as client:
        service = (await client.call_tool("get_odata_service", {"reportId": report_id})).structured_content
        assert service is not None
        region, manifest, entity = service["value"][0]["url"].split("/")
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        result = await client.call_tool("export_odata_entity", {"reportId": report_id, "region": region,
                                                                "manifestId": manifest, "entityType": entity})
        seconds = time.perf_counter() - started
    assert not result.is_error and result.structured_content is not None
    rows = int(result.structured_content["rows"])
    size_mb = (await anyio.Path(result.structured_content["path"]).stat()).st_size / 1e6
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "file_mb": round(size_mb), "peak_rss_before_export_mb": round(rss_before),
            "peak_rss_mb": round(peak_rss_mb())}


def export_raw(db: str, out_dir: str) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    job = conn.execute("SELECT job_id, mapping_id, table_name, columns FROM ex_tables LIMIT 1").fetchone()
    started = time.perf_counter()
    rows = 0
    with open(Path(out_dir) / "raw.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c[0] for c in json.loads(job[3])])
        for (data,) in conn.execute("SELECT data FROM ex_rows WHERE job_id = ? AND mapping_id = ? AND "
                                    "table_name = ? ORDER BY row_no", job[:3]):
            writer.writerow(json.loads(data))
            rows += 1
    seconds = time.perf_counter() - started
    conn.close()
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--raw", action="store_true", help="the baseline: write the rows straight from SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        figures = export_raw(args.db, out_dir) if args.raw else asyncio.run(export_through_mcp(args.db, out_dir))
    json.dump(figures, sys.stdout)
    print()


if __name__ == "__main__":
    main()
