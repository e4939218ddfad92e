"""build_server(): the low-level MCP server whose tools are the catalog's operations.

The server does not own the HTTP client: the caller opens one `InsightsClient` (Bentley or the in-process sandbox)
and closes it, so stdio, HTTP and tests share one wiring and the tool layer cannot tell the backends apart.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext

from .. import __version__
from ..api.catalog import Catalog, load_catalog
from ..api.client import InsightsClient
from ..errors import InsightsError
from ..settings import Settings
from .results import error_result, invalid_arguments_result, refusal_result, success_result
from .tools import ToolSurface, build_request, validate_arguments

__all__ = ["INSTRUCTIONS", "build_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
iTwin Insights (Reporting): turn an iModel into tables and publish them as an OData feed.
Golden path: list_itwins -> list_imodels(iTwinId) -> create_mapping(imodelId) -> create_group (ECSQL query, e.g.
SELECT * FROM BisCore.PhysicalElement) -> create_group_property / create_calculated_property /
create_custom_calculation -> run_extraction(imodelId) -> get_extraction_status(jobId) every few seconds until
Succeeded (read list_extraction_logs when it fails) -> create_report(projectId = the iTwin id) ->
create_report_mapping -> get_odata_service -> get_odata_metadata -> get_odata_entity_page.
Lists page with top and continuationToken (pass back nextContinuationToken).
Ids are GUIDs except ECInstanceIds (0x hex).
Errors say what to fix; writes are marked non-read-only."""


def build_server(settings: Settings, client: InsightsClient, *, catalog: Catalog | None = None) -> Server[Any]:
    """A server exposing one tool per enabled catalog operation, sending calls through `client`."""
    surface = ToolSurface(
        catalog or load_catalog(), read_only=settings.read_only, include_deprecated=settings.include_deprecated
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=surface.tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        op = surface.get(params.name)
        if op is None:
            return refusal_result(surface.refusal(params.name))
        arguments: dict[str, Any] = dict(params.arguments or {})
        problems = validate_arguments(op, arguments)
        if problems:
            return invalid_arguments_result(op, problems)
        request = build_request(op, arguments)
        try:
            response = await client.request(
                request.method,
                request.path,
                params=request.params,
                json_body=request.json_body,
                accept=request.accept,
            )
        except InsightsError as exc:
            return error_result(op, exc, surface.catalog, arguments)
        except Exception as exc:  # the one boundary where a bug must become a result, not a protocol fault
            log.exception("Unexpected failure in tool %s", op.tool)
            return error_result(op, exc, surface.catalog, arguments)
        return success_result(op, response)

    def input_schema(name: str) -> dict[str, Any] | None:
        op = surface.get(name)
        return op.input_schema if op is not None else None

    return Server(
        "itwin-insights-mcp",
        version=__version__,
        title="iTwin Insights (Reporting)",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
