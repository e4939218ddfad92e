"""Reports and their mapping links as Reporting v1 and v2 both write them; each family gives its `ReportStyle`.

v1 and v2 share one store: a report made with either is the other's too. v1 names the context `projectId` and links
the project; v2 names it `iTwinId` and links the iTwin (the same id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..domain import reports
from ..store import Record
from ..wire import Call, json_response, page_response
from .families import IMODELS

__all__ = ["ReportStyle", "mapping_url", "no_content", "one", "report_handlers"]

Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class ReportStyle:
    """How one Reporting version names a report's context and links it."""

    version: str  # "v1" | "v2": also the OData link's api-version
    list_operation: str
    context_param: str  # query parameter of the list, body field of create
    context_link: str  # the `_links` key of the context
    context_href: Callable[[Call, str], dict[str, str]]


def one(key: str, value: dict[str, Any]) -> Response:
    """A single resource in its wrapper key."""
    return json_response({key: value})


def no_content() -> Response:
    return Response(status_code=204)


def mapping_url(call: Call, imodel_id: str, mapping_id: str) -> str:
    """A mapping's absolute URL in Reporting (under the iModel)."""
    return call.url(f"/datasources/imodels/{imodel_id}/mappings/{mapping_id}")


def report_out(call: Call, style: ReportStyle, record: Record) -> dict[str, Any]:
    return {
        **{k: record.data[k] for k in ("id", "displayName", "description", "deleted", "createdOn", "modifiedOn")},
        "_links": {
            style.context_link: style.context_href(call, record.parent),
            "odata": call.link(f"/odata/{record.id}?api-version={style.version}"),
        },
    }


def report_mapping_out(call: Call, record: Record) -> dict[str, Any]:
    imodel_id = record.data["imodelId"]
    return {
        "reportId": record.parent,
        "mappingId": record.id,
        "imodelId": imodel_id,
        "_links": {
            "report": call.link(f"/reports/{record.parent}"),
            "mapping": {"href": mapping_url(call, imodel_id, record.id)},
            "imodel": call.link(f"/{imodel_id}", IMODELS),
        },
    }


def report_handlers(style: ReportStyle) -> dict[str, Handler]:
    """The report and report-mapping operations of one Reporting version, keyed by operation id."""

    def shape(call: Call, record: Record) -> dict[str, Any]:
        return report_out(call, style, record)

    def list_reports(call: Call) -> Response:
        return page_response(
            call,
            "report",
            call.query[style.context_param],
            "reports",
            lambda r: shape(call, r),
            equals={"deleted": bool(call.query.get("deleted", False))},
        )

    def get_report(call: Call) -> Response:
        return one("report", shape(call, reports.report(call.store, call.path["reportId"])))

    def create_report(call: Call) -> Response:
        body = call.body
        record = reports.create_report(
            call.store, body[style.context_param], body["displayName"], body.get("description", "")
        )
        return one("report", shape(call, record))

    def update_report(call: Call) -> Response:
        body = call.body
        record = reports.update_report(
            call.store,
            call.path["reportId"],
            display_name=body.get("displayName"),
            description=body.get("description"),
            deleted=body.get("deleted"),
        )
        return one("report", shape(call, record))

    def delete_report(call: Call) -> Response:
        reports.delete_report(call.store, call.path["reportId"])
        return no_content()

    def list_report_mappings(call: Call) -> Response:
        report = reports.report(call.store, call.path["reportId"], allow_deleted=False)
        return page_response(call, "report_mapping", report.id, "mappings", lambda r: report_mapping_out(call, r))

    def create_report_mapping(call: Call) -> Response:
        record = reports.link_mapping(
            call.store, call.path["reportId"], call.body["mappingId"], call.body.get("imodelId")
        )
        return one("mapping", report_mapping_out(call, record))

    def delete_report_mapping(call: Call) -> Response:
        reports.unlink_mapping(call.store, call.path["reportId"], call.path["mappingId"])
        return no_content()

    return {
        style.list_operation: list_reports,
        "get-report": get_report,
        "create-report": create_report,
        "update-report": update_report,
        "delete-report": delete_report,
        "get-report-mappings": list_report_mappings,
        "create-report-mapping": create_report_mapping,
        "delete-report-mapping": delete_report_mapping,
    }
