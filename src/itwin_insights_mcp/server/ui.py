"""The report view, an MCP App (extension `io.modelcontextprotocol/ui`): its `ui://` resource, the tools linked to
it and the app-only tool it pages with.

Offered only to clients that declare the extension with `text/html;profile=mcp-app` (in 2025-era `initialize`
capabilities or, from 2026-07-28, in each request's `_meta`; the SDK's `client_supports_apps` reads both). For every
other client nothing changes: no link on any tool, no app-only tool listed or callable, no `ui://` resource listed.

The view is one HTML file built from `packaging/ui/` (pinned npm packages, everything inlined) and shipped in the
wheel. It renders a tool result whose structured content is an OData page (`value`, `@odata.context`,
`@odata.nextLink`) or the generic shape `{columns | meta: [{name, type?, unit?}] | [name], rows: [{...}] | [[...]],
entitySet?, feedUrl?, sequence?, hasNext?}` (positional rows, as the iModel Query API returns them, are read by column).

Hook for other tools: a tool shows its results in the view when its name is in `VIEW_TOOLS` (catalog operations and
local tools alike) or when a local tool sets `opens_view = True`. A tool returning the generic shape needs nothing
else; the view pages only OData results (through `view_odata_page`).
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.resources import files
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, client_supports_apps

from ..api.catalog import Catalog
from ..api.validation import problems
from ..errors import InsightsError
from ..settings import Settings
from .results import bound_rows, error_result, invalid_arguments_result, refusal_result, success_result
from .tools import ToolSurface, send, validate_arguments

__all__ = [
    "APP_MIME_TYPE",
    "EXTENSION_ID",
    "PAGE_TOOL",
    "VIEW_TOOLS",
    "VIEW_URI",
    "app_only_refusal",
    "call_page_tool",
    "client_wants_view",
    "is_app_only",
    "read_view",
    "tools_for_client",
    "view_html",
    "view_resource",
]

log = logging.getLogger(__name__)

VIEW_URI = "ui://itwin-insights/report-view.html"
PAGE_TOOL = "view_odata_page"
# Tools whose results the view shows. After the iModel Query tool lands, add its name here (or set `opens_view`).
VIEW_TOOLS: frozenset[str] = frozenset({"get_odata_entity_page", "v2_get_odata_entity_page"})
_PAGE_OPS = ("get_odata_entity_page", "v2_get_odata_entity_page")  # the first one the surface exposes is used
VIEW_MAX_ROWS = 1000  # rows of one feed page sent to the view (the byte budget still applies)
UNIT_LOOKUP_LIMIT = 20  # at most this many groups read to find column units
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
# SI units of Insights quantity types (group, calculated and custom-calculation properties all carry one);
# Monetary and Undefined have none.
UNITS = {"distance": "m", "area": "m²", "volume": "m³", "mass": "kg", "force": "N", "time": "s"}
# The host draws a border; the file needs no network at all, so no CSP domain is declared.
_RESOURCE_UI: dict[str, Any] = {"csp": {"connectDomains": [], "resourceDomains": []}, "prefersBorder": True}


@cache
def view_html() -> str:
    """The built view, as shipped in the package (`packaging/ui/build.mjs` writes it)."""
    return files(__package__).joinpath("ui", "report-view.html").read_text(encoding="utf-8")


def client_wants_view(ctx: ServerRequestContext[Any] | None) -> bool:
    """Whether this request's client declared MCP Apps with the HTML profile (either protocol era)."""
    if ctx is None:
        return False
    try:
        return client_supports_apps(ctx)
    except AttributeError:  # a context without a session (never in practice): no extension
        return False


def view_resource() -> types.Resource:
    """The view's `resources/list` entry (only listed to clients that declared the extension)."""
    return types.Resource(
        uri=VIEW_URI,
        name="report-view",
        title="Report view (table and chart)",
        description="Interactive table and bar chart of an OData page, for hosts that render MCP Apps.",
        mime_type=APP_MIME_TYPE,
        size=len(view_html().encode()),
        _meta={"ui": _RESOURCE_UI},
    )


def read_view() -> types.ReadResourceResult:
    """The view's HTML with its MIME type and `_meta.ui` (CSP, border)."""
    content = types.TextResourceContents(
        uri=VIEW_URI, text=view_html(), mime_type=APP_MIME_TYPE, _meta={"ui": _RESOURCE_UI}
    )
    return types.ReadResourceResult(contents=[content])


def _page_tool_definition() -> types.Tool:
    return types.Tool(
        name=PAGE_TOOL,
        title="Report view: one feed page",
        description="Used by the report view to page an OData table: one page of rows with column types and units.",
        input_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reportId": {"type": "string", "minLength": 1},
                "region": {"type": "string", "minLength": 1},
                "manifestId": {"type": "string", "minLength": 1},
                "entityType": {"type": "string", "minLength": 1},
                "sequence": {"type": "integer", "minimum": 0},
            },
            "required": ["reportId", "region", "manifestId", "entityType"],
        },
        annotations=types.ToolAnnotations(
            title="Report view: one feed page", read_only_hint=True, open_world_hint=True
        ),
        _meta={"ui": {"resourceUri": VIEW_URI, "visibility": ["app"]}},
    )


def _page_op(surface: ToolSurface) -> str | None:
    """The OData page operation the view's paging goes through, when this surface exposes one."""
    return next((name for name in _PAGE_OPS if name in surface), None)


def _opens_view(surface: ToolSurface, name: str) -> bool:
    local = surface.local(name)
    return name in VIEW_TOOLS or bool(getattr(local, "opens_view", False))  # LocalTool.opens_view


def tools_for_client(surface: ToolSurface, tools: list[types.Tool], wants_view: bool) -> list[types.Tool]:
    """`tools` as this client sees them: unchanged without the extension; with it, view tools carry
    `_meta.ui.resourceUri` and the app-only page tool is added (when its OData operation is allowed here)."""
    if not wants_view:
        return tools
    linked = [
        tool.model_copy(update={"meta": {**(tool.meta or {}), "ui": {"resourceUri": VIEW_URI}}})
        if _opens_view(surface, tool.name)
        else tool
        for tool in tools
    ]
    if _page_op(surface) is not None and PAGE_TOOL not in surface.selection.exclude:
        linked.append(_page_tool_definition())
    return linked


def is_app_only(name: str) -> bool:
    """True for tools only the view may call (visibility `["app"]`)."""
    return name == PAGE_TOOL


def app_only_refusal(surface: ToolSurface, wants_view: bool) -> str | None:
    """Why the app-only page tool cannot be called on this request, or None when it can."""
    if not wants_view:
        return (
            f"`{PAGE_TOOL}` is used only by the report view (an MCP App) and is not available to this client. "
            "Call get_odata_entity_page to read a page of rows."
        )
    if PAGE_TOOL in surface.selection.exclude or _page_op(surface) is None:
        return f"`{PAGE_TOOL}` is not available: this server's tool selection does not expose the OData page tool."
    return None


def _edm_columns(xml: str, entity: str) -> list[tuple[str, str]]:
    """(column, Edm type) of one entity type of a report's `$metadata` (none when it is not readable XML)."""
    import xml.etree.ElementTree as ET  # only when the view pages (kept out of start-up)

    try:
        root = ET.fromstring(xml)  # noqa: S314 - our own API's EDMX, not user input
    except ET.ParseError:
        return []
    for entity_type in root.iter(f"{EDM}EntityType"):
        if entity_type.get("Name") == entity:
            return [
                (str(p.get("Name")), str(p.get("Type") or "Edm.String")) for p in entity_type.iter(f"{EDM}Property")
            ]
    return []


async def _units(surface: ToolSurface, settings: Settings, client: Any, report_id: str, entity: str) -> dict[str, str]:
    """Units of an entity set's quantity columns, read from the report's mapping (the group it was extracted from):
    calculated properties by type, custom calculations and group properties by quantity type. Best effort."""
    catalog: Catalog = surface.catalog
    if not all(catalog.get(name) for name in ("list_report_mappings", "list_groups")):
        return {}

    async def body(tool: str, **arguments: Any) -> dict[str, Any]:
        reply = (await send(client, catalog[tool], arguments)).body
        return reply if isinstance(reply, dict) else {}

    units: dict[str, str] = {}
    looked = 0
    for link in (await body("list_report_mappings", reportId=report_id, top=10)).get("mappings") or []:
        ids = {"imodelId": link.get("imodelId"), "mappingId": link.get("mappingId")}
        if not all(isinstance(v, str) for v in ids.values()):
            continue
        mapping = (await body("get_mapping", **ids)).get("mapping") if catalog.get("get_mapping") else None
        prefix = f"{mapping.get('mappingName')}_" if isinstance(mapping, dict) else ""
        for group in (await body("list_groups", **ids, top=100)).get("groups") or []:
            if looked >= UNIT_LOOKUP_LIMIT:
                return units
            if entity not in (f"{prefix}{group.get('groupName')}", group.get("groupName")):
                continue  # entity sets are named <mapping>_<group>
            looked += 1
            gids = {**ids, "groupId": group.get("id")}
            for tool, key in (
                ("list_group_properties", "properties"),
                ("list_calculated_properties", "properties"),
                ("list_custom_calculations", "customCalculations"),
            ):
                if catalog.get(tool) is None:
                    continue
                for prop in (await body(tool, **gids, top=100)).get(key) or []:
                    unit = UNITS.get(str(prop.get("quantityType", "")).lower())
                    if unit and isinstance(prop.get("propertyName"), str):
                        units[prop["propertyName"]] = unit
    return units


async def call_page_tool(
    surface: ToolSurface, settings: Settings, client: Any, arguments: dict[str, Any]
) -> types.CallToolResult:
    """`view_odata_page`; every failure comes back as an isError result, never raised (as in dispatch.invoke)."""
    try:
        return await _page_for_view(surface, settings, client, arguments)
    except Exception:
        log.exception("Unexpected failure in tool %s", PAGE_TOOL)
        return refusal_result(f"Internal error in `{PAGE_TOOL}`; retry once, then report it.")


async def _page_for_view(
    surface: ToolSurface, settings: Settings, client: Any, arguments: dict[str, Any]
) -> types.CallToolResult:
    """One feed page for the view: rows (bounded), column names, Edm types and units, feed URL and paging state.
    Goes through the same OData operation, argument checks and error shaping as the model's tool."""
    wrong = [str(p) for p in problems(_page_tool_definition().input_schema, arguments)]
    if wrong:
        return invalid_arguments_result(PAGE_TOOL, wrong)
    name = _page_op(surface)
    assert name is not None  # app_only_refusal() ran first
    op = surface.catalog[name]
    page_args: dict[str, Any] = {
        k: arguments[k] for k in ("reportId", "region", "manifestId", "entityType", "sequence") if k in arguments
    }
    found = validate_arguments(op, page_args)
    if found:
        return invalid_arguments_result(PAGE_TOOL, found)
    try:
        response = await send(client, op, page_args)
        page = bound_rows(success_result(op, response, None), VIEW_MAX_ROWS, settings.max_result_bytes)
        if page.is_error or not isinstance(page.structured_content, dict):
            return page
        metadata_op = "v2_get_odata_metadata" if name.startswith("v2_") else "get_odata_metadata"
        types_by_column: dict[str, str] = {}
        if surface.catalog.get(metadata_op) is not None:
            xml = (await send(client, surface.catalog[metadata_op], {"reportId": page_args["reportId"]})).body
            types_by_column = dict(_edm_columns(str(xml), page_args["entityType"]))
        units = await _units(surface, settings, client, page_args["reportId"], page_args["entityType"])
    except InsightsError as exc:
        return error_result(op, exc, surface.catalog, page_args)
    data = page.structured_content
    names = list(data.get("columns") or []) or list(types_by_column)
    context = str(data.get("@odata.context") or "")
    structured = {
        "entitySet": page_args["entityType"],
        "reportId": page_args["reportId"],
        "feedUrl": context.split("/$metadata")[0] if "/$metadata" in context else "",
        "sequence": int(page_args.get("sequence", 0)),
        "hasNext": "@odata.nextLink" in data,
        "columns": [{"name": n, "type": types_by_column.get(n, ""), "unit": units.get(n, "")} for n in names],
        "rows": data.get("value") or [],
        "rowsInPage": data.get("rowsInPage"),
        "rowsShown": data.get("rowsShown"),
    }
    text = (
        f"{page_args['entityType']}, feed page {structured['sequence'] + 1}: {structured['rowsShown']} of "
        f"{structured['rowsInPage']} rows" + (" (more pages follow)." if structured["hasNext"] else ".")
    )
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)
