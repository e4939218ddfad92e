"""Tool results: a successful reply as structured content plus compact text, a failure as a teaching error.

Errors are turned into `isError` results here and nowhere else. Each names the API's code, message and target and
says what to do next. Nothing in a result ever carries a token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import mcp.types as types

from ..api.catalog import Catalog, Operation
from ..api.client import ApiResponse, next_page_token
from ..errors import ApiError, AuthError, ConfigError, TransportError

__all__ = ["bound_rows", "error_result", "invalid_arguments_result", "refusal_result", "success_result"]

# Permission each toolset's reads and writes need (reference §2.2).
_PERMISSIONS = {
    ("reports", "read"): "insights_view",
    ("reports", "write"): "insights_modify",
    ("odata", "read"): "insights_view",
    ("context", "read"): "membership of the iTwin",
}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def success_result(op: Operation, response: ApiResponse) -> types.CallToolResult:
    """Structured content for JSON replies (with `nextContinuationToken` on lists), text for the rest."""
    if response.body is None:
        ids = op.full_path.rsplit("/", 1)[-1].strip("{}")
        return types.CallToolResult(
            content=[types.TextContent(text=f"Done: {op.title} succeeded ({response.status}, {ids} removed).")]
        )
    if op.output_schema is None or not isinstance(response.body, dict):
        text = response.body if isinstance(response.body, str) else _compact(response.body)
        return types.CallToolResult(content=[types.TextContent(text=text)])
    structured = dict(response.body)
    paging = op.paging_parameter
    if paging is not None:
        key = "next" + paging.arg[0].upper() + paging.arg[1:]
        structured[key] = next_page_token(response.body, paging.name)
    return types.CallToolResult(content=[types.TextContent(text=_compact(structured))], structured_content=structured)


def bound_rows(result: types.CallToolResult, max_rows: int) -> types.CallToolResult:
    """Keep at most `max_rows` OData rows in a tool result, saying how many the page had and how to get them all."""
    page = result.structured_content
    if not isinstance(page, dict) or not isinstance(page.get("value"), list):
        return result
    rows: list[Any] = page["value"]
    columns = list(rows[0]) if rows and isinstance(rows[0], dict) else []
    shown = rows[:max_rows]
    note = (
        f"Showing {len(shown)} of {len(rows)} rows of this page."
        + (" More pages follow (@odata.nextLink: call again with sequence + 1)." if "@odata.nextLink" in page else "")
        + " To get every row, call export_odata_entity (CSV or JSON Lines file)."
    )
    bounded = {
        **page,
        "value": shown,
        "rowsInPage": len(rows),
        "rowsShown": len(shown),
        "columns": columns,
        "note": note,
    }
    return types.CallToolResult(
        content=[types.TextContent(text=note + "\n" + _compact(bounded))], structured_content=bounded
    )


def _error(text: str, payload: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content={"error": payload}, is_error=True
    )


def invalid_arguments_result(tool: str, problems: Sequence[str]) -> types.CallToolResult:
    """Arguments failed the schema: list every bad field; nothing was sent."""
    lines = "\n".join(f"- {p}" for p in problems)
    text = f"Invalid arguments for `{tool}` (nothing was sent):\n{lines}\nFix these and call `{tool}` again."
    return _error(text, {"code": "InvalidArguments", "message": "; ".join(problems), "problems": list(problems)})


def refusal_result(message: str) -> types.CallToolResult:
    """A tool that is not available here (unknown, deprecated or a write under read-only)."""
    return _error(message, {"code": "ToolNotAvailable", "message": message})


def error_result(op: Operation, exc: Exception, catalog: Catalog, arguments: dict[str, Any]) -> types.CallToolResult:
    """Turn a failed call into an isError result that names the problem and the next step."""
    if isinstance(exc, ApiError):
        next_step = _next_step(op, exc, catalog, arguments)
        where = f" (target: {exc.target})" if exc.target else ""
        details = "".join(f"\n  - {d.code}: {d.message}" + (f" ({d.target})" if d.target else "") for d in exc.details)
        text = f"{exc.status} {exc.code}: {exc.message}{where}{details}\nNext step: {next_step}"
        payload: dict[str, Any] = {
            "status": exc.status,
            "code": exc.code,
            "message": exc.message,
            "target": exc.target,
            "details": [{"code": d.code, "message": d.message, "target": d.target} for d in exc.details],
            "nextStep": next_step,
        }
        return _error(text, payload)
    if isinstance(exc, TransportError):
        step = "Check the network and ITWIN_API_BASE_URL, then try again."
        return _error(
            f"{exc.message}\nNext step: {step}", {"code": "TransportError", "message": exc.message, "nextStep": step}
        )
    if isinstance(exc, AuthError | ConfigError):
        step = "Fix the server's credentials/configuration (see `itwin-insights-mcp --help`) and restart it."
        return _error(f"{exc}\nNext step: {step}", {"code": type(exc).__name__, "message": str(exc), "nextStep": step})
    # Anything else is a bug of ours: say so without leaking internals.
    return _error(
        f"Internal error in `{op.tool}` ({type(exc).__name__}); nothing about the request was wrong on your side. "
        "Retry once; if it persists, report it.",
        {"code": "InternalError", "message": type(exc).__name__},
    )


def _next_step(op: Operation, exc: ApiError, catalog: Catalog, arguments: dict[str, Any]) -> str:
    status = exc.status
    if status == 401:
        return (
            "The access token is missing, invalid or expired. Give the server a fresh token "
            "(ITWIN_ACCESS_TOKEN) or service credentials (ITWIN_CLIENT_ID + ITWIN_CLIENT_SECRET), "
            "or run with --backend sandbox to use the offline sandbox."
        )
    if status == 403:
        kind = "read" if op.read_only else "write"
        permission = _PERMISSIONS.get((op.toolset, kind), "imodels_read" if op.read_only else "imodels_write")
        if op.tool in ("create_report_mapping", "create_report_aggregation"):
            permission = "imodels_read and insights_modify"
        return f"The signed-in user lacks the '{permission}' permission on this iTwin/iModel; ask an iTwin admin."
    if status == 404:
        return _not_found_step(op, exc, catalog, arguments)
    if status == 409:
        return "An item with that name already exists here; pick another name or update the existing one."
    if status == 422:
        field = exc.target or (exc.details[0].target if exc.details and exc.details[0].target else None)
        if field:
            return f"Fix `{field}` as the message says and call `{op.tool}` again."
        return f"Fix the request as the message says and call `{op.tool}` again."
    if status == 429:
        waited = f" after {exc.attempts} attempt(s)" if exc.attempts > 1 else ""
        after = f"{exc.retry_after:.0f} s" if exc.retry_after is not None else "a minute"
        return f"Rate limited; the server retried{waited} and gave up. Wait {after} before calling again."
    if status >= 500:
        return "The service failed; retry later. Writes were not retried automatically, so check before resending."
    return f"Check the arguments of `{op.tool}` and try again."


def _not_found_step(op: Operation, exc: ApiError, catalog: Catalog, arguments: dict[str, Any]) -> str:
    if exc.code == "EntityNotFound":
        return (
            "Entity urls change with every extraction: call get_odata_service again and use the region, "
            "manifestId and entity name it lists now."
        )
    if exc.code == "SchemaNotFound":
        return (
            "Check reportId with list_reports; a deleted report is listed with deleted=true and can be restored "
            "with update_report(reportId, deleted=false). A report publishes tables only after its mappings "
            "were extracted."
        )
    if exc.target and exc.target in op.body_fields:  # an id given in the body (e.g. mappingId of a report mapping)
        lister = catalog.lister_for_id(exc.target)
        shown = f" ({arguments.get(exc.target)!r})" if arguments.get(exc.target) is not None else ""
        where = f"; call `{lister.tool}` to find a valid one" if lister else ""
        return f"`{exc.target}`{shown} was not found{where}."
    path_params = [p for p in op.parameters if p.location == "path"]
    named = exc.target if exc.target and op.parameter(exc.target) else None
    if named is None and path_params:
        # Pick the parameter the error code names (MappingNotFound -> mappingId), else the last path id.
        stem = exc.code.removesuffix("NotFound").lower()
        named = next((p.name for p in path_params if p.name.lower().startswith(stem)), path_params[-1].name)
    if named is None:
        return f"Check the ids passed to `{op.tool}`."
    lister = catalog.lister_for(op, named)
    value = arguments.get(named)
    shown = f" ({value!r})" if value is not None else ""
    if lister is not None:
        needed = [p.arg for p in lister.parameters if p.location == "path" or p.required]
        args = ", ".join(f"{a}=..." for a in needed)
        return f"`{named}`{shown} was not found; call `{lister.tool}({args})` to find a valid one."
    return f"`{named}`{shown} was not found; check it and the ids it belongs to."
