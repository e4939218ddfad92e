"""One tool call, start to finish: find -> validate -> request -> shape. Shared by full and compact modes."""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as types

from ..api.client import InsightsClient
from ..errors import InsightsError
from .results import error_result, invalid_arguments_result, refusal_result, success_result
from .tools import ToolSurface, build_request, validate_arguments

__all__ = ["invoke"]

log = logging.getLogger(__name__)


async def invoke(
    surface: ToolSurface, client: InsightsClient, name: str, arguments: dict[str, Any]
) -> types.CallToolResult:
    """Run the operation behind tool `name`; every failure comes back as an isError result, never raised."""
    op = surface.get(name)
    if op is None:
        return refusal_result(surface.refusal(name))
    problems = validate_arguments(op, arguments)
    if problems:
        return invalid_arguments_result(op, problems)
    request = build_request(op, arguments)
    try:
        response = await client.request(
            request.method, request.path, params=request.params, json_body=request.json_body, accept=request.accept
        )
    except InsightsError as exc:
        return error_result(op, exc, surface.catalog, arguments)
    except Exception as exc:  # the one boundary where a bug must become a result, not a protocol fault
        log.exception("Unexpected failure in tool %s", op.tool)
        return error_result(op, exc, surface.catalog, arguments)
    return success_result(op, response)
