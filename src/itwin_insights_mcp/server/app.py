"""build_server(): the low-level MCP server whose tools are the catalog's operations.

The server does not own the HTTP client: the caller opens one `InsightsClient` (Bentley or the in-process sandbox)
and closes it, so stdio, HTTP and tests share one wiring and the tool layer cannot tell the backends apart.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from .. import __version__
from ..api.auth import TokenProvider, request_token_provider
from ..api.catalog import Catalog, load_catalog
from ..api.client import InsightsClient
from ..logs import request_id_var, subject_var
from ..settings import PROFILES, Settings
from .client_logs import ClientLogLevels, forwarding_logs
from .client_logs import session_key as _session_key
from .compact import call_compact, compact_tools
from .dispatch import CallEnv, invoke
from .local_tools import LOCAL_TOOLS, Clock
from .resources import ResourceProvider
from .results import error_payload, refusal_result
from .selection import ToolSelection
from .tools import ToolSurface
from .ui import EXTENSION_ID, app_only_refusal, call_page_tool, client_wants_view, is_app_only, tools_for_client
from .ui import view_resource as ui_view_resource

__all__ = ["INSTRUCTIONS", "build_server", "selection_for"]

log = logging.getLogger(__name__)

_MAX_NARROWED = 64  # distinct per-request selections kept
RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for an unknown resource
INVALID_PARAMS = -32602


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

COMPACT_INSTRUCTIONS = """\
iTwin Insights (Reporting), compact mode: find an operation with search_operations (e.g. "list mappings",
"run extraction", "odata rows"), then call it with call_operation(name, arguments).
Golden path: list_itwins -> list_imodels -> create_mapping -> create_group -> create_group_property ->
run_extraction -> get_extraction_status until Succeeded -> create_report -> create_report_mapping ->
get_odata_service -> get_odata_entity_page."""


def selection_for(settings: Settings) -> ToolSelection:
    """The server-wide tool selection the settings ask for."""
    toolsets: tuple[str, ...] | None = settings.toolsets
    if not settings.toolsets and not settings.tools:
        toolsets = PROFILES[settings.profile] or ("all",)
    return ToolSelection.build(
        toolsets=toolsets,
        tools=settings.tools,
        exclude=settings.exclude_tools,
        read_only=settings.read_only,
        include_deprecated=settings.include_deprecated,
    )


def build_server(
    settings: Settings,
    client: InsightsClient,
    *,
    catalog: Catalog | None = None,
    user_tokens: Callable[[str], TokenProvider] | None = None,
    clock: Clock | None = None,
) -> Server[Any]:
    """A server exposing the selected catalog operations (or the two compact tools), sending calls through `client`.

    Over HTTP a request may narrow the selection with X-MCP-* headers; the narrowed surfaces are cached.
    """
    catalog = catalog or load_catalog()
    selection = selection_for(settings).validate(catalog, LOCAL_TOOLS)
    base = ToolSurface(catalog, selection, local_tools=LOCAL_TOOLS)
    narrowed: dict[ToolSelection, ToolSurface] = {}
    compact = settings.mode == "compact"

    def surface_for(ctx: ServerRequestContext[Any]) -> ToolSurface:
        headers = getattr(ctx.request, "headers", None)
        if headers is None:
            return base
        chosen = selection.narrowed_by(headers)
        if chosen is selection:
            return base
        if chosen not in narrowed:
            if len(narrowed) >= _MAX_NARROWED:
                narrowed.clear()
            narrowed[chosen] = ToolSurface(catalog, chosen, local_tools=LOCAL_TOOLS)
        return narrowed[chosen]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        surface = surface_for(ctx)
        if compact:
            return types.ListToolsResult(tools=compact_tools(surface))
        return types.ListToolsResult(tools=tools_for_client(surface, surface.tools, client_wants_view(ctx)))

    @contextmanager
    def as_caller(ctx: ServerRequestContext[Any]) -> Iterator[None]:
        """Run with this request's id and user in the logs and, when hosted with OAuth, its user's token."""
        token = get_access_token()
        subject = token.subject if token is not None and token.subject else "-"
        resets = [request_id_var.set(str(ctx.request_id or uuid.uuid4().hex[:12])), subject_var.set(subject)]
        provider_reset = None
        if user_tokens is not None:
            if token is None or not token.subject:
                raise PermissionError("no signed-in user")
            provider_reset = request_token_provider.set(user_tokens(token.subject))
        try:
            yield
        finally:
            if provider_reset is not None:
                request_token_provider.reset(provider_reset)
            subject_var.reset(resets[1])
            request_id_var.reset(resets[0])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        surface = surface_for(ctx)
        arguments: dict[str, Any] = dict(params.arguments or {})
        env = CallEnv(client, settings, ctx, clock or Clock())  # `clock`: tests run waits on virtual time
        with as_caller(ctx):
            async with forwarding_logs(ctx, log_levels):
                log.info("tool %s", params.name)
                if is_app_only(params.name) and not compact:  # the report view's paging (an MCP App)
                    refusal = app_only_refusal(surface, client_wants_view(ctx))
                    result = (
                        refusal_result(refusal)
                        if refusal
                        else await call_page_tool(surface, settings, client, arguments)
                    )
                elif compact:
                    result = await call_compact(surface, env, params.name, arguments)
                else:
                    result = await invoke(surface, env, params.name, arguments)
                if result.is_error:
                    log.warning("tool %s failed: %s", params.name, error_payload(result).get("code", "error"))
                return result

    log_levels = ClientLogLevels()

    async def set_logging_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        log_levels.set(_session_key(ctx), params.level)
        return types.EmptyResult()

    provider = ResourceProvider(client, catalog, settings)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        resources = provider.list_resources()
        if client_wants_view(ctx) and not compact:
            resources.append(ui_view_resource())  # the report view, only for hosts that render MCP Apps
        return types.ListResourcesResult(resources=resources)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=provider.list_templates())

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        try:
            with as_caller(ctx):
                return await provider.read(str(params.uri))
        except ValueError as exc:
            raise MCPError(RESOURCE_NOT_FOUND, str(exc)) from None

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=provider.list_prompts())

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            return provider.get_prompt(params.name, dict(params.arguments or {}))
        except ValueError as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None

    async def complete(ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> types.CompleteResult:
        context = dict(params.context.arguments or {}) if params.context else {}
        with as_caller(ctx):
            completion = await provider.complete(params.argument.name, params.argument.value, context)
        return types.CompleteResult(completion=completion)

    def input_schema(name: str) -> dict[str, Any] | None:
        if compact:
            return next((t.input_schema for t in compact_tools(base) if t.name == name), None)
        op = base.get(name)
        if op is not None:
            return op.input_schema
        local = base.local(name)
        return local.definition.input_schema if local is not None else None

    with warnings.catch_warnings():  # logging/setLevel is deprecated in 2026-07-28 but 2025-era hosts use it
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        server: Server[Any] = Server(
            "itwin-insights-mcp",
            version=__version__,
            title="iTwin Insights (Reporting)",
            instructions=COMPACT_INSTRUCTIONS if compact else INSTRUCTIONS,
            get_tool_input_schema=input_schema,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_resources=list_resources,
            on_list_resource_templates=list_templates,
            on_read_resource=read_resource,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_completion=complete,
            on_set_logging_level=set_logging_level,
        )
    if not compact:
        server.extensions[EXTENSION_ID] = {}  # MCP Apps: the report view (server/ui.py)
    return server
