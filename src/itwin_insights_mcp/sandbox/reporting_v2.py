"""Reporting v2: the same reports, report mappings and OData feed as v1, addressed by iTwinId, plus API keys.

v1 and v2 share one store: a report made with either is the other's too. The handlers are v1's, which read the
family of the operation to shape their answer (`iTwin` vs `project` links, `imodelId` optional).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from .apikeys import APIKEY_HANDLERS
from .http import Call
from .odata import ODATA_HANDLERS
from .reporting import (
    create_report,
    create_report_mapping,
    delete_report,
    delete_report_mapping,
    get_report,
    list_report_mappings,
    list_reports,
    update_report,
)

__all__ = ["REPORTING_V2_HANDLERS"]

REPORTING_V2_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "get-itwin-reports": list_reports,
    "get-report": get_report,
    "create-report": create_report,
    "update-report": update_report,
    "delete-report": delete_report,
    "get-report-mappings": list_report_mappings,
    "create-report-mapping": create_report_mapping,
    "delete-report-mapping": delete_report_mapping,
    **ODATA_HANDLERS,
    **APIKEY_HANDLERS,
}
