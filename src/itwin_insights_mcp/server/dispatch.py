"""One tool call, start to finish: find -> validate -> request -> shape. Shared by full and compact modes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext

from ..api.client import InsightsClient
from ..api.validation import problems, unencodable
from ..errors import InsightsError, InvalidArgumentError
from ..settings import Settings
from .local_tools import Clock, LocalContext, LocalTool
from .results import bound_rows, error_result, invalid_arguments_result, refusal_result, success_result
from .tools import ToolSurface, send, validate_arguments

__all__ = ["CallEnv", "invoke"]

log = logging.getLogger(__name__)


@dataclass
class CallEnv:
    """What a call may use besides its arguments."""

    client: InsightsClient
    settings: Settings
    request: ServerRequestContext[Any] | None = None
    clock: Clock = field(default_factory=Clock)  # waits read time and sleep here (tests pass virtual time)


async def invoke(surface: ToolSurface, env: CallEnv, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """Run tool `name`; every failure comes back as an isError result, never raised."""
    broken = [str(p) for p in unencodable(arguments)]
    if broken and (surface.local(name) is not None or surface.get(name) is not None):
        return invalid_arguments_result(name, broken)
    local = surface.local(name)
    if isinstance(local, LocalTool):
        return await _invoke_local(surface, env, local, arguments)
    op = surface.get(name)
    if op is None:
        return refusal_result(surface.refusal(name))
    found = validate_arguments(op, arguments)
    if found:
        return invalid_arguments_result(op.tool, found)
    try:
        response = await send(env.client, op, arguments)
    except InsightsError as exc:
        return error_result(op, exc, surface.catalog, arguments)
    except Exception as exc:  # the one boundary where a bug must become a result, not a protocol fault
        log.exception("Unexpected failure in tool %s", op.tool)
        return error_result(op, exc, surface.catalog, arguments)
    if op.rows is not None:  # a page of table rows (x-mcp.rows): bounded to the row budget, not only bytes
        settings = env.settings
        return bound_rows(
            success_result(op, response, None), settings.max_rows, settings.max_result_bytes, op.rows.export
        )
    return success_result(op, response, env.settings.max_result_bytes)


async def _invoke_local(
    surface: ToolSurface, env: CallEnv, tool: LocalTool, arguments: dict[str, Any]
) -> types.CallToolResult:
    found = [str(p) for p in problems(tool.definition.input_schema, arguments)]
    if found:
        return invalid_arguments_result(tool.tool, found)
    context = LocalContext(env.client, env.settings, surface.catalog, env.request, env.clock)
    try:
        return await tool.handler(context, arguments)
    except InvalidArgumentError as exc:
        return invalid_arguments_result(tool.tool, [str(exc)])
    except Exception as exc:
        log.exception("Unexpected failure in tool %s", tool.tool)
        return refusal_result(f"Internal error in `{tool.tool}` ({type(exc).__name__}); retry once, then report it.")
