"""A sandbox with one of everything, built through the tools, so fuzzed calls can hit real ids.

Random GUIDs only ever reach the 404 branch; the interesting failures (`delete_group(groupId="..")` removing a whole
mapping, a surrogate in a formula breaking a later page) need ids that exist. `populate` creates a v1 mapping with a
group and all three property kinds, a finished extraction, a report linked to the mapping and to an aggregation
table set, an API key, a v2 report, and a Grouping & Mapping mapping with a finished extraction. It returns, per tool
argument name, the values that name a real entity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mcp import Client

from ..conftest import BUILDING_ID, ITWIN_ID, SITE_ID
from ..contract.helpers import ok

Known = dict[str, list[str]]

_WALL_MATERIAL = {
    "ecSchemaName": "Building",
    "ecClassName": "Wall",
    "ecPropertyName": "Material",
    "ecPropertyType": "String",
}


def _one(reply: dict[str, Any]) -> dict[str, Any]:
    """The single entity a create/get reply wraps (`{"mapping": {...}}` -> `{...}`)."""
    values = [v for v in reply.values() if isinstance(v, dict)]
    assert len(values) == 1, f"expected one entity in {sorted(reply)}"
    return values[0]


async def populate(mcp: Client) -> Known:
    """Create the entities (every call must succeed) and return the real ids by argument name."""
    known: Known = {
        "iTwinId": [ITWIN_ID],
        "projectId": [ITWIN_ID],
        "imodelId": [BUILDING_ID, SITE_ID],
        "iModelId": [BUILDING_ID, SITE_ID],
        "targetIModelId": [SITE_ID],
    }

    def add(name: str, value: str) -> None:
        known.setdefault(name, []).append(value)

    ids = {"imodelId": BUILDING_ID}
    mapping = _one(await ok(mcp, "create_mapping", **ids, mappingName="Fuzz"))
    ids["mappingId"] = mapping["id"]
    group = _one(await ok(mcp, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))
    gids = {**ids, "groupId": group["id"]}
    prop = _one(
        await ok(
            mcp,
            "create_group_property",
            **gids,
            propertyName="Material",
            dataType="String",
            ecProperties=[_WALL_MATERIAL],
        )
    )
    calc = _one(await ok(mcp, "create_calculated_property", **gids, propertyName="Volume", type="Volume"))
    custom = _one(await ok(mcp, "create_custom_calculation", **gids, propertyName="Cost", formula="Volume * 100"))
    run = _one(await ok(mcp, "run_extraction", imodelId=BUILDING_ID))
    done = await ok(mcp, "wait_for_extraction", jobId=run["id"])
    assert done["state"] == "Succeeded", done
    for name, value in (
        ("mappingId", mapping["id"]),
        ("datasourceId", mapping["id"]),
        ("sourceMappingId", mapping["id"]),
        ("groupId", group["id"]),
        ("propertyId", prop["id"]),
        ("propertyId", calc["id"]),
        ("customCalculationId", custom["id"]),
        ("jobId", run["id"]),
    ):
        add(name, value)

    table_set = _one(
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="Totals",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
        )
    )
    sid = {"aggregationTableSetId": table_set["id"]}
    table = _one(await ok(mcp, "create_aggregation_table", **sid, tableName="ByMaterial", sourceTableName="Walls"))
    tid = {**sid, "aggregationTableId": table["id"]}
    agg = _one(
        await ok(mcp, "create_aggregation_property", **tid, propertyName="P", sourcePropertyName="Cost", type="Sum")
    )
    add("aggregationTableSetId", table_set["id"])
    add("aggregationTableId", table["id"])
    add("aggregationPropertyId", agg["id"])

    report = _one(await ok(mcp, "create_report", projectId=ITWIN_ID, displayName="Fuzz"))
    await ok(mcp, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)
    await ok(mcp, "create_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"])
    add("reportId", report["id"])
    service = await ok(mcp, "get_odata_service", reportId=report["id"])
    for item in service["value"]:
        region, manifest, entity = str(item["url"]).split("/")
        add("region", region)
        add("manifestId", manifest)
        add("entityType", entity)
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()
    key = _one(await ok(mcp, "create_api_key", displayName="Fuzz", reportId=report["id"], expiresAt=expires))
    add("apiKeyId", key["id"])
    v2 = _one(await ok(mcp, "v2_create_report", iTwinId=ITWIN_ID, displayName="Fuzz v2"))
    await ok(mcp, "v2_create_report_mapping", reportId=v2["id"], mappingId=mapping["id"])
    add("reportId", v2["id"])

    gm = _one(await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="FuzzGM"))
    gm_group = _one(
        await ok(mcp, "gm_create_group", mappingId=gm["id"], groupName="Beams", query="SELECT * FROM Building.Beam")
    )
    gm_prop = _one(
        await ok(
            mcp,
            "gm_create_property",
            mappingId=gm["id"],
            groupId=gm_group["id"],
            propertyName="Len",
            dataType="Double",
            calculatedPropertyType="Length",
        )
    )
    extraction = _one(await ok(mcp, "gm_run_extraction", iModelId=BUILDING_ID, mappings=[{"id": gm["id"]}]))
    gm_done = await ok(mcp, "wait_for_extraction", jobId=extraction["id"])
    assert gm_done["state"] == "Succeeded", gm_done
    add("mappingId", gm["id"])
    add("groupId", gm_group["id"])
    add("propertyId", gm_prop["id"])
    add("extractionId", extraction["id"])
    add("jobId", extraction["id"])
    return known
