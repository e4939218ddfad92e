"""The sample building's quantity take-off, published as a report: the data the report-view tests look at."""

from __future__ import annotations

from typing import Any

from mcp import Client

from .helpers import ok, wait_for_state

GROUPS = {
    "Walls": "SELECT * FROM Building.Wall",
    "Slabs": "SELECT * FROM Building.Slab",
    "Doors": "SELECT * FROM Building.Door",
}
MATERIAL = [{"ecSchemaName": "*", "ecClassName": "*", "ecPropertyName": "Material", "ecPropertyType": "String"}]


async def publish_takeoff(client: Client) -> dict[str, dict[str, Any]]:
    """Map walls, slabs and doors (Material, Volume, Area), extract, publish; returns OData page arguments per
    group (reportId, region, manifestId, entityType), keyed by group name (entity sets are <mapping>_<group>)."""
    itwin = (await ok(client, "list_itwins"))["iTwins"][0]
    imodels = (await ok(client, "list_imodels", iTwinId=itwin["id"]))["iModels"]
    imodel = next(i for i in imodels if i["displayName"] == "Sample Office Building")
    ids = {"imodelId": imodel["id"]}
    ids["mappingId"] = (await ok(client, "create_mapping", **ids, mappingName="QuantityTakeoff"))["mapping"]["id"]
    for name, query in GROUPS.items():
        group = (await ok(client, "create_group", **ids, groupName=name, query=query))["group"]
        gids = {**ids, "groupId": group["id"]}
        await ok(
            client, "create_group_property", **gids, propertyName="Material", dataType="String", ecProperties=MATERIAL
        )
        await ok(client, "create_calculated_property", **gids, propertyName="Volume", type="Volume")
        await ok(client, "create_calculated_property", **gids, propertyName="Area", type="Area")
    run = (await ok(client, "run_extraction", imodelId=imodel["id"]))["run"]
    assert (await wait_for_state(client, run["id"]))["state"] == "Succeeded"
    report = (await ok(client, "create_report", projectId=itwin["id"], displayName="Quantity take-off"))["report"]
    await ok(client, "create_report_mapping", reportId=report["id"], **ids)
    service = await ok(client, "get_odata_service", reportId=report["id"])
    pages: dict[str, dict[str, Any]] = {}
    for entity in service["value"]:
        region, manifest, name = entity["url"].split("/")
        pages[name.removeprefix("QuantityTakeoff_")] = {
            "reportId": report["id"],
            "region": region,
            "manifestId": manifest,
            "entityType": name,
        }
    return pages
