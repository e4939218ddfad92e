"""`itwin-insights-mcp demo`: the golden path through a real MCP client against a fresh sandbox, printed.

Find the iTwin and iModel, map walls, slabs, doors and pipes with all three property kinds, extract, publish a
report with an aggregation, and read the OData feed. Everything happens in a temporary directory.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client

from .backend import open_client
from .errors import InsightsError
from .server.app import build_server
from .settings import Settings

__all__ = ["run_demo"]

GROUPS = {
    "Walls": "SELECT * FROM Building.Wall",
    "Slabs": "SELECT * FROM Building.Slab",
    "Doors": "SELECT * FROM Building.Door",
    "Pipes": "SELECT * FROM Plumbing.Pipe WHERE Diameter > 0",
}
MATERIAL = [{"ecSchemaName": "*", "ecClassName": "*", "ecPropertyName": "Material", "ecPropertyType": "String"}]


class DemoError(InsightsError):
    """A demo step failed; the message is the tool's error text."""


async def _call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise DemoError(f"{tool} failed: {result.content[0].text}")  # type: ignore[union-attr]
    return dict(result.structured_content or {})


async def run_demo(say: Callable[[str], None] = print) -> dict[str, int]:
    """Run the whole workflow; returns rows per published table. A failed step raises DemoError."""
    try:
        return await _workflow(say)
    except* DemoError as failures:
        raise failures.exceptions[0] from None


async def _workflow(say: Callable[[str], None]) -> dict[str, int]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="insights-demo-") as tmp:
        settings = Settings(backend="sandbox", sandbox_db=str(Path(tmp) / "demo.db"), export_dir=tmp, max_rows=3)
        async with open_client(settings) as api, Client(build_server(settings, api)) as client:
            tools = await client.list_tools()
            say(f"Connected to itwin-insights-mcp over MCP: {len(tools.tools)} tools, backend sandbox.\n")
            itwin = (await _call(client, "list_itwins"))["iTwins"][0]
            imodels = (await _call(client, "list_imodels", iTwinId=itwin["id"]))["iModels"]
            imodel = next(i for i in imodels if i["displayName"] == "Sample Office Building")
            say(f"1. iTwin '{itwin['displayName']}' -> iModel '{imodel['displayName']}' ({imodel['id']})")
            ids = {"imodelId": imodel["id"]}
            mapping = (await _call(client, "create_mapping", **ids, mappingName="QuantityTakeoff"))["mapping"]
            ids["mappingId"] = mapping["id"]
            say(f"2. Mapping 'QuantityTakeoff' with groups: {', '.join(GROUPS)}")
            for name, query in GROUPS.items():
                group = (await _call(client, "create_group", **ids, groupName=name, query=query))["group"]
                gids = {**ids, "groupId": group["id"]}
                await _call(
                    client,
                    "create_group_property",
                    **gids,
                    propertyName="Material",
                    dataType="String",
                    ecProperties=MATERIAL,
                )
                await _call(client, "create_calculated_property", **gids, propertyName="Volume", type="Volume")
                await _call(client, "create_calculated_property", **gids, propertyName="Area", type="Area")
                await _call(
                    client,
                    "create_custom_calculation",
                    **gids,
                    propertyName="Cost",
                    formula="Volume * 150",
                    quantityType="Monetary",
                )
            say("3. Columns per group: Material (EC property), Volume and Area (calculated), Cost = Volume * 150")
            run = (await _call(client, "run_extraction", imodelId=imodel["id"]))["run"]
            status = await _call(client, "wait_for_extraction", jobId=run["id"])
            while not status["done"]:
                status = await _call(client, "wait_for_extraction", jobId=run["id"])
            say(f"4. Extraction {status['state']} in {status['waitedSeconds']} s")
            table_set = (
                await _call(
                    client,
                    "create_aggregation_table_set",
                    tableSetName="Totals",
                    datasourceId=mapping["id"],
                    datasourceType="IModelMapping",
                )
            )["aggregationTableSet"]
            table = (
                await _call(
                    client,
                    "create_aggregation_table",
                    aggregationTableSetId=table_set["id"],
                    tableName="WallsByMaterial",
                    sourceTableName="Walls",
                )
            )["aggregationTable"]
            tids = {"aggregationTableSetId": table_set["id"], "aggregationTableId": table["id"]}
            for prop, source, kind in (
                ("Material", "Material", "GroupBy"),
                ("Walls", "ECInstanceId", "Count"),
                ("Volume", "Volume", "Sum"),
                ("Cost", "Cost", "Sum"),
            ):
                await _call(
                    client,
                    "create_aggregation_property",
                    **tids,
                    propertyName=prop,
                    sourcePropertyName=source,
                    type=kind,
                )
            report = (await _call(client, "create_report", projectId=itwin["id"], displayName="Quantity take-off"))[
                "report"
            ]
            await _call(
                client, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=imodel["id"]
            )
            await _call(
                client, "create_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"]
            )
            say(f"5. Report 'Quantity take-off' ({report['id']}) publishes the mapping and the Totals aggregation")
            service = await _call(client, "get_odata_service", reportId=report["id"])
            counts: dict[str, int] = {}
            say("\n   OData entity set                 rows")
            for entity in service["value"]:
                region, manifest, name = entity["url"].split("/")
                page = await _call(
                    client,
                    "get_odata_entity_page",
                    reportId=report["id"],
                    region=region,
                    manifestId=manifest,
                    entityType=name,
                )
                counts[name] = int(page["rowsInPage"])
                say(f"   {name:<32} {counts[name]:>5}")
                if name == "Totals_WallsByMaterial":
                    preview = page["value"]
            say("\n   Preview of Totals_WallsByMaterial:")
            for row in preview:
                say(
                    f"   {row['Material']:<20} walls {row['Walls']:>4}   {row['Volume']:>9.2f} m3   "
                    f"{row['Cost']:>11,.2f} EUR"
                )
    say(f"\nDone in {time.perf_counter() - started:.1f} s. Feed URL: /insights/reporting/odata/{report['id']}")
    return counts
