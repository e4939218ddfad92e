"""Extraction throughput and OData paging on a generated iModel, each against a raw-SQLite baseline.

Run as a child process per scenario so peak RSS belongs to that scenario alone:
    python -m bench.extraction --elements 1000000 --db /tmp/bench.db
Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import time
from typing import Any

import httpx

RP = "/insights/reporting"
AUTH = {"Authorization": "Bearer bench"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(db: str, elements: int) -> dict[str, Any]:
    from itwin_insights_mcp.sandbox.app import create_app
    from itwin_insights_mcp.sandbox.imodels.seed import add_generated_imodel

    started = time.perf_counter()
    imodel_id, rows = add_generated_imodel(db, elements=elements, name="Bench", seed=1)
    generate_s = time.perf_counter() - started

    # Baseline: the same physical elements read straight from SQLite, JSON decoded, no mapping logic.
    conn = sqlite3.connect(db)
    started = time.perf_counter()
    baseline_rows = 0
    for (props,) in conn.execute(
        "SELECT props FROM im_elements WHERE imodel_id = ? AND class_id IN "
        "(SELECT class_id FROM im_classes WHERE imodel_id = ? AND kind = 'element' AND class_id >= 256)",
        (imodel_id, imodel_id),
    ):
        json.loads(props)
        baseline_rows += 1
    baseline_s = time.perf_counter() - started
    conn.close()

    app = create_app(db, odata_page_size=1000)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=AUTH, timeout=600) as http:
            mappings = f"{RP}/datasources/imodels/{imodel_id}/mappings"
            mapping = (await http.post(mappings, json={"mappingName": "Bench"})).json()["mapping"]
            group = (
                await http.post(
                    f"{mappings}/{mapping['id']}/groups",
                    json={"groupName": "Geometric", "query": "SELECT * FROM bis.GeometricElement3d"},
                )
            ).json()["group"]
            base = f"{mappings}/{mapping['id']}/groups/{group['id']}"
            await http.post(
                f"{base}/properties",
                json={
                    "propertyName": "Material",
                    "dataType": "String",
                    "ecProperties": [
                        {
                            "ecSchemaName": "*",
                            "ecClassName": "*",
                            "ecPropertyName": "Material",
                            "ecPropertyType": "String",
                        }
                    ],
                },
            )
            await http.post(f"{base}/calculatedProperties", json={"propertyName": "Volume", "type": "Volume"})
            await http.post(f"{base}/customCalculations", json={"propertyName": "Cost", "formula": "Volume * 120"})

            started = time.perf_counter()
            run_id = (await http.post(f"{RP}/datasources/imodels/{imodel_id}/extraction/run")).json()["run"]["id"]
            while True:
                status = (await http.get(f"{RP}/datasources/extraction/status/{run_id}")).json()["status"]
                if status["state"] not in ("Queued", "Running"):
                    break
                await asyncio.sleep(0.2)
            extraction_s = time.perf_counter() - started
            logs = (await http.get(f"{RP}/datasources/extraction/status/{run_id}/logs")).json()["logs"]
            extracted = next(
                int(m.split("Geometric: ")[1].split(" rows")[0])
                for m in (e["message"] or "" for e in logs)
                if "Geometric: " in m
            )
            rss_after_extraction = peak_rss_mb()

            report = (
                await http.post(
                    f"{RP}/reports", json={"displayName": "B", "projectId": "5dd80221-4b44-5fa2-9d55-a54755e21a6a"}
                )
            ).json()
            report_id = report["report"]["id"]
            await http.post(
                f"{RP}/reports/{report_id}/datasources/imodelMappings",
                json={"mappingId": mapping["id"], "imodelId": imodel_id},
            )
            url = (await http.get(f"{RP}/odata/{report_id}")).json()["value"][0]["url"]

            started = time.perf_counter()
            paged_rows = 0
            next_url: str | None = f"{RP}/odata/{report_id}/{url}"
            while next_url:
                page = (await http.get(next_url)).json()
                paged_rows += len(page["value"])
                next_url = page.get("@odata.nextLink")
            paging_s = time.perf_counter() - started

    conn = sqlite3.connect(db)
    started = time.perf_counter()
    raw_rows = sum(
        1 for (data,) in conn.execute("SELECT data FROM ex_rows WHERE job_id = ?", (run_id,)) if json.loads(data)
    )
    raw_paging_s = time.perf_counter() - started
    conn.close()
    return {
        "elements": elements,
        "element_rows": rows,
        "generate_s": round(generate_s, 1),
        "state": status["state"],
        "extracted_rows": extracted,
        "extraction_s": round(extraction_s, 1),
        "extraction_rows_per_s": round(extracted / extraction_s),
        "baseline_scan_rows_per_s": round(baseline_rows / baseline_s),
        "odata_rows": paged_rows,
        "odata_s": round(paging_s, 1),
        "odata_rows_per_s": round(paged_rows / paging_s),
        "raw_read_rows_per_s": round(raw_rows / raw_paging_s),
        "peak_rss_after_extraction_mb": round(rss_after_extraction),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    json.dump(asyncio.run(run(args.db, args.elements)), sys.stdout)
    print()


if __name__ == "__main__":
    main()
