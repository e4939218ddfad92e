"""Contract: reports (soft delete and restore), report mappings and report aggregations."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from ..conftest import BUILDING_ID, ITWIN_ID, SITE_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def new_report(mcp: Client, name: str = "Quantities") -> dict[str, Any]:
    report: dict[str, Any] = (await ok(mcp, "create_report", projectId=ITWIN_ID, displayName=name, description="d"))[
        "report"
    ]
    return report


async def test_report_lifecycle_with_soft_delete_and_restore(mcp: Client) -> None:
    report = await new_report(mcp)
    assert report["deleted"] is False
    assert report["_links"]["project"]["href"].endswith(f"/projects/{ITWIN_ID}")
    assert report["_links"]["odata"]["href"].endswith(f"/insights/reporting/odata/{report['id']}?api-version=v1")
    assert (await ok(mcp, "get_report", reportId=report["id"]))["report"]["displayName"] == "Quantities"
    renamed = (await ok(mcp, "update_report", reportId=report["id"], displayName="QTO"))["report"]
    assert renamed["displayName"] == "QTO" and renamed["description"] == "d"
    assert [r["id"] for r in (await ok(mcp, "list_reports", projectId=ITWIN_ID))["reports"]] == [report["id"]]

    await ok(mcp, "delete_report", reportId=report["id"])
    assert (await ok(mcp, "list_reports", projectId=ITWIN_ID))["reports"] == []
    deleted = (await ok(mcp, "list_reports", projectId=ITWIN_ID, deleted=True))["reports"]
    assert [(r["id"], r["deleted"]) for r in deleted] == [(report["id"], True)]
    assert (await ok(mcp, "get_report", reportId=report["id"]))["report"]["deleted"] is True
    await fails(mcp, "delete_report", 404, "ReportNotFound", reportId=report["id"])

    restored = (await ok(mcp, "update_report", reportId=report["id"], deleted=False))["report"]
    assert restored["deleted"] is False
    assert [r["id"] for r in (await ok(mcp, "list_reports", projectId=ITWIN_ID))["reports"]] == [report["id"]]


async def test_report_errors(mcp: Client) -> None:
    await fails(mcp, "get_report", 404, "ReportNotFound", reportId=UNKNOWN)
    await fails(mcp, "update_report", 404, "ReportNotFound", reportId=UNKNOWN, description="x")
    await fails(mcp, "delete_report", 404, "ReportNotFound", reportId=UNKNOWN)
    await fails(mcp, "list_reports", None, "InvalidArguments")
    await fails(mcp, "create_report", None, "InvalidArguments", projectId=ITWIN_ID)
    report = await new_report(mcp)
    empty = await fails(mcp, "update_report", 422, "InvalidInsightsRequest", reportId=report["id"], displayName=" ")
    assert empty["target"] == "displayName"


async def test_report_mappings(mcp: Client) -> None:
    report = await new_report(mcp)
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="M1"))["mapping"]
    link = (
        await ok(mcp, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)
    )["mapping"]
    assert (link["reportId"], link["mappingId"], link["imodelId"]) == (report["id"], mapping["id"], BUILDING_ID)
    assert set(link["_links"]) == {"report", "mapping", "imodel"}
    listed = (await ok(mcp, "list_report_mappings", reportId=report["id"]))["mappings"]
    assert [m["mappingId"] for m in listed] == [mapping["id"]]
    await fails(
        mcp,
        "create_report_mapping",
        409,
        "ReportMappingExists",
        reportId=report["id"],
        mappingId=mapping["id"],
        imodelId=BUILDING_ID,
    )
    await fails(
        mcp,
        "create_report_mapping",
        404,
        "MappingNotFound",
        reportId=report["id"],
        mappingId=mapping["id"],
        imodelId=SITE_ID,
    )
    await fails(
        mcp,
        "create_report_mapping",
        404,
        "ReportNotFound",
        reportId=UNKNOWN,
        mappingId=mapping["id"],
        imodelId=BUILDING_ID,
    )
    await ok(mcp, "delete_report_mapping", reportId=report["id"], mappingId=mapping["id"])
    await fails(
        mcp, "delete_report_mapping", 404, "ReportMappingNotFound", reportId=report["id"], mappingId=mapping["id"]
    )
    await fails(mcp, "list_report_mappings", 404, "ReportNotFound", reportId=UNKNOWN)


async def test_report_aggregations(mcp: Client) -> None:
    report = await new_report(mcp)
    mapping = (await ok(mcp, "create_mapping", imodelId=BUILDING_ID, mappingName="M1"))["mapping"]
    table_set = (
        await ok(
            mcp,
            "create_aggregation_table_set",
            tableSetName="Totals",
            datasourceId=mapping["id"],
            datasourceType="IModelMapping",
        )
    )["aggregationTableSet"]
    link = (await ok(mcp, "create_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"]))[
        "aggregation"
    ]
    assert (link["reportId"], link["aggregationTableSetId"], link["datasourceId"], link["datasourceType"]) == (
        report["id"],
        table_set["id"],
        mapping["id"],
        "IModelMapping",
    )
    assert set(link["_links"]) == {"report", "aggregationTableSet", "datasource"}
    got = (await ok(mcp, "get_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"]))[
        "aggregation"
    ]
    assert got == link
    listed = (await ok(mcp, "list_report_aggregations", reportId=report["id"]))["aggregations"]
    assert [a["aggregationTableSetId"] for a in listed] == [table_set["id"]]
    await fails(
        mcp,
        "create_report_aggregation",
        409,
        "ReportAggregationExists",
        reportId=report["id"],
        aggregationTableSetId=table_set["id"],
    )
    await fails(
        mcp,
        "create_report_aggregation",
        404,
        "AggregationTableSetNotFound",
        reportId=report["id"],
        aggregationTableSetId=UNKNOWN,
    )
    await ok(mcp, "delete_report_aggregation", reportId=report["id"], aggregationTableSetId=table_set["id"])
    await fails(
        mcp,
        "get_report_aggregation",
        404,
        "AggregationTableSetNotFound",
        reportId=report["id"],
        aggregationTableSetId=table_set["id"],
    )
    await fails(
        mcp,
        "delete_report_aggregation",
        404,
        "AggregationTableSetNotFound",
        reportId=report["id"],
        aggregationTableSetId=table_set["id"],
    )
    await fails(mcp, "list_report_aggregations", 404, "ReportNotFound", reportId=UNKNOWN)
