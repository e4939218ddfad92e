"""Tool results: a successful reply as structured content plus compact text, a failure as a teaching error.

Errors are turned into `isError` results here and nowhere else. Each names the API's code, message and target and
says what to do next. An error result carries no `structuredContent` (hosts such as the TypeScript SDK 1.x validate it
against the tool's `outputSchema` even on errors, and an error is not that shape): its full text is in `content` and a
machine-readable copy in `_meta[ERROR_META_KEY]`. Nothing in a result ever carries a token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import mcp.types as types

from ..api.catalog import Catalog, Operation
from ..api.client import ApiResponse, next_page_token
from ..api.validation import problems as schema_problems
from ..errors import ApiError, AuthError, ConfigError, InvalidArgumentError, TransportError

__all__ = [
    "ERROR_META_KEY",
    "bound_rows",
    "error_payload",
    "error_result",
    "fit_to_budget",
    "invalid_arguments_result",
    "refusal_result",
    "success_result",
]

ERROR_META_KEY = "io.github.itwin-insights-mcp/error"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def success_result(op: Operation, response: ApiResponse, max_bytes: int | None = 262_144) -> types.CallToolResult:
    """Structured content for JSON replies (with `nextContinuationToken` on lists), text for the rest.

    A JSON reply that does not have the documented shape (a truncated body, a proxy's page, a wrong wrapper key) is
    an error, never a success the host would reject against the outputSchema. Results are kept under `max_bytes`
    (None: the caller bounds the result itself, as `bound_rows` does for OData pages).
    """
    if response.body is None:
        ids = op.full_path.rsplit("/", 1)[-1].strip("{}")
        return types.CallToolResult(
            content=[types.TextContent(text=f"Done: {op.title} succeeded ({response.status}, {ids} removed).")]
        )
    if op.output_schema is not None and not isinstance(response.body, dict):
        return unexpected_reply_result(op, response, "the body is not a JSON object")
    if op.output_schema is None:
        text = response.body if isinstance(response.body, str) else _compact(response.body)
        return types.CallToolResult(content=[types.TextContent(text=clip_text(text, max_bytes or 262_144))])
    structured = dict(response.body)
    paging = op.paging_parameter
    if paging is not None:
        key = "next" + paging.arg[0].upper() + paging.arg[1:]
        structured[key] = next_page_token(response.body, paging.name)
    wrong = schema_problems(op.output_schema, structured)
    if wrong:
        return unexpected_reply_result(op, response, str(wrong[0]))
    structured, note = fit_to_budget(structured, max_bytes) if max_bytes is not None else (structured, None)
    text = _compact(structured)
    if note:
        text = f"{note}\n{text}"
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def unexpected_reply_result(op: Operation, response: ApiResponse, why: str) -> types.CallToolResult:
    """A 2xx reply that is not what the API documents: say so instead of passing on a half or foreign body."""
    message = f"{op.method} answered {response.status} with a reply that is not the documented shape ({_clip(why)})."
    step = f"Retry `{op.tool}` once; if it persists, the service or a proxy in between is misbehaving."
    return _error(
        f"{message}\nNext step: {step}",
        {"status": response.status, "code": "UnexpectedResponse", "message": message, "nextStep": step},
    )


def _size(value: Any) -> int:
    return len(_compact(value).encode("utf-8"))


def _clip(text: str, limit: int = 200) -> str:
    """At most `limit` characters of a value quoted back in a message."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def clip_text(text: str, max_bytes: int) -> str:
    """Text kept under the byte budget, saying how much was left out."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    kept = data[: max_bytes - 200].decode("utf-8", errors="ignore")
    return f"{kept}\n[... trimmed: {len(data)} bytes in all, {max_bytes} allowed in one tool result]"


def _shorten_strings(value: Any, limit: int) -> Any:
    """Every string longer than `limit` characters cut to that length with a marker (types stay the same)."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}...[{len(value) - limit} more characters]"
    if isinstance(value, list):
        return [_shorten_strings(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _shorten_strings(v, limit) for k, v in value.items()}
    return value


def fit_to_budget(structured: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], str | None]:
    """Keep a result (and its JSON text) under `max_bytes`: first long strings are cut, then the longest top-level
    list is trimmed from the end. Returns the result and a note saying what was left out and how to get it."""
    budget = max_bytes // 2  # the text copy is the same size again
    if _size(structured) <= budget:
        return structured, None
    notes: list[str] = []
    shortened = _shorten_strings(structured, 2000)
    if shortened != structured:
        notes.append("values longer than 2000 characters were cut")
        structured = shortened
    lists = [k for k, v in structured.items() if isinstance(v, list) and v]
    if _size(structured) > budget and lists:
        key = max(lists, key=lambda k: _size(structured[k]))
        items: list[Any] = structured[key]
        low, high = 0, len(items)
        while low < high:  # the most items that still fit
            middle = (low + high + 1) // 2
            if _size({**structured, key: items[:middle]}) <= budget:
                low = middle
            else:
                high = middle - 1
        structured = {**structured, key: items[:low]}
        notes.append(
            f"showing {low} of {len(items)} `{key}` items (tool results are limited to {max_bytes} bytes): ask for "
            "fewer per call (top), or page on with the continuation token"
        )
    if _size(structured) > budget:
        structured = _shorten_strings(structured, 100)
        notes.append("values longer than 100 characters were cut")
    return structured, "Trimmed: " + "; ".join(notes) + "."


def bound_rows(
    result: types.CallToolResult, max_rows: int, max_bytes: int = 262_144, export_tool: str | None = None
) -> types.CallToolResult:
    """Keep at most `max_rows` OData rows (and at most `max_bytes`) in a tool result, saying how many the page had
    and how to get them all (with `export_tool`, the operation's `x-mcp.rows.export`)."""
    page = result.structured_content
    if not isinstance(page, dict) or not isinstance(page.get("value"), list):
        return result
    rows: list[Any] = page["value"]
    columns = list(rows[0]) if rows and isinstance(rows[0], dict) else []
    shown = rows[:max_rows]
    bounded: dict[str, Any] = {**page, "value": shown, "rowsInPage": len(rows), "columns": columns}
    bounded, trimmed = fit_to_budget(bounded, max_bytes)
    shown = bounded["value"]
    note = (
        f"Showing {len(shown)} of {len(rows)} rows of this page."
        + (f" {trimmed}" if trimmed else "")
        + (" More pages follow (@odata.nextLink: call again with sequence + 1)." if "@odata.nextLink" in page else "")
        + (f" To get every row, call {export_tool} (CSV or JSON Lines file)." if export_tool else "")
    )
    bounded = {**bounded, "rowsShown": len(shown), "note": note}
    return types.CallToolResult(
        content=[types.TextContent(text=note + "\n" + _compact(bounded))], structured_content=bounded
    )


def _error(text: str, payload: dict[str, Any]) -> types.CallToolResult:
    """An isError result: everything in the text, the same facts for programs in `_meta`, no structuredContent."""
    return types.CallToolResult.model_validate(
        {"content": [{"type": "text", "text": text}], "isError": True, "_meta": {ERROR_META_KEY: payload}}
    )


def error_payload(result: types.CallToolResult) -> dict[str, Any]:
    """The machine-readable error of an isError result (empty for successes)."""
    payload = (result.meta or {}).get(ERROR_META_KEY) if result.is_error else None
    return dict(payload) if isinstance(payload, dict) else {}


def invalid_arguments_result(tool: str, problems: Sequence[str]) -> types.CallToolResult:
    """Arguments failed the schema: list every bad field (each quoted briefly); nothing was sent."""
    problems = [_clip(p, 300) for p in problems[:20]]
    lines = "\n".join(f"- {p}" for p in problems)
    text = f"Invalid arguments for `{tool}` (nothing was sent):\n{lines}\nFix these and call `{tool}` again."
    return _error(text, {"code": "InvalidArguments", "message": "; ".join(problems), "problems": list(problems)})


def refusal_result(message: str) -> types.CallToolResult:
    """A tool that is not available here (unknown, deprecated or a write under read-only)."""
    return _error(message, {"code": "ToolNotAvailable", "message": message})


def error_result(op: Operation, exc: Exception, catalog: Catalog, arguments: dict[str, Any]) -> types.CallToolResult:
    """Turn a failed call into an isError result that names the problem and the next step."""
    if isinstance(exc, InvalidArgumentError):
        return invalid_arguments_result(op.tool, [str(exc)])
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
        if not op.permissions:
            return "The signed-in user lacks a permission this operation needs on the iTwin/iModel; ask an iTwin admin."
        permission = " and ".join(op.permissions)
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
    hint = catalog.error_hint(exc.code)  # declared in the overlay of the operation that answers with this code
    if hint is not None:
        return hint
    if exc.target and exc.target in op.body_fields:  # an id given in the body (e.g. mappingId of a report mapping)
        lister = catalog.lister_for_id(exc.target)
        shown = f" ({_clip(repr(arguments.get(exc.target)), 80)})" if arguments.get(exc.target) is not None else ""
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
    shown = f" ({_clip(repr(value), 80)})" if value is not None else ""
    if lister is not None:
        needed = [p.arg for p in lister.parameters if p.location == "path" or p.required]
        args = ", ".join(f"{a}=..." for a in needed)
        return f"`{named}`{shown} was not found; call `{lister.tool}({args})` to find a valid one."
    return f"`{named}`{shown} was not found; check it and the ids it belongs to."
