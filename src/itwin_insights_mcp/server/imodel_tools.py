"""Agent tools over the iModel Query API, composed of real operations (so they work against Bentley as well):
`describe_imodel` (schemas and classes with instance counts, or one class's properties with types and units) and
`query_imodel` (one ECSQL SELECT: latest changeset when none is given, 200 or 201 with polling and progress, rows as
objects, bounded like OData pages, or every row exported to a file).

The reply shapes the reference leaves open are read tolerantly: column names from `meta[].name` or `columns`, rows
as arrays or objects, the next page from `links.next` (string or `{href}`) or `_links.next.href`, else by `skip`.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import mcp.types as types

from ..errors import InsightsError
from .local_context import LocalContext, export_path
from .results import ERROR_META_KEY, error_result, fit_to_budget, refusal_result
from .tools import send

__all__ = ["describe_imodel", "query_imodel"]

PAGE: Final = 1000  # rows asked per request
MAX_ROWS_READ: Final = 100_000  # a query tool never holds more than this many rows (export streams them)
WAIT_SECONDS: Final = 45.0
_PRIMITIVES: Final = {257: "Binary", 513: "Boolean", 769: "DateTime", 1025: "Double", 1281: "Integer", 1537: "Long",
                      1793: "Point2d", 2049: "Point3d", 2305: "String", 2561: "IGeometry"}  # fmt: skip
_KINDS: Final = {0: "Primitive", 1: "Struct", 2: "PrimitiveArray", 3: "StructArray", 4: "Navigation"}
_UNIT_NAMES: Final = {"Units:M": "m", "Units:SQ_M": "m²", "Units:CUB_M": "m³", "Units:HR": "h", "Units:W": "W",
                      "Units:W_PER_SQ_M_K": "W/(m²·K)"}  # fmt: skip


def _failed(ctx: LocalContext, tool: str, exc: InsightsError, arguments: dict[str, Any]) -> types.CallToolResult:
    """The usual error result of the run operation, with its next step pointing back at `tool` (what was called)."""
    result = error_result(ctx.catalog["run_imodel_query"], exc, ctx.catalog, arguments)
    for content in result.content:
        if isinstance(content, types.TextContent):
            content.text = content.text.replace("`run_imodel_query`", f"`{tool}`")
    payload = (result.meta or {}).get(ERROR_META_KEY)
    if isinstance(payload, dict) and isinstance(payload.get("nextStep"), str):
        payload["nextStep"] = payload["nextStep"].replace("`run_imodel_query`", f"`{tool}`")
    return result


class QueryFailed(Exception):
    """The query ended Failed, or did not finish in time; the message says which."""


async def _call(ctx: LocalContext, tool: str, arguments: dict[str, Any]) -> Any:
    return (await send(ctx.client, ctx.catalog[tool], arguments)).body


async def _target(ctx: LocalContext, arguments: dict[str, Any]) -> dict[str, str]:
    """iTwinId, iModelId and changesetId for the query operations: the iTwin from get_imodel, the newest changeset
    from list_changesets when none is given (iModel Query has no 'latest' alias)."""
    imodel_id = str(arguments["iModelId"])
    imodel = await _call(ctx, "get_imodel", {"iModelId": imodel_id})
    itwin = str((imodel.get("iModel") or {}).get("iTwinId") or "") if isinstance(imodel, dict) else ""
    changeset = arguments.get("changesetId")
    if not changeset:
        page = await _call(ctx, "list_changesets", {"iModelId": imodel_id, "orderBy": "index desc", "top": 1})
        found = page.get("changesets", []) if isinstance(page, dict) else []
        changeset = str(found[0]["id"]) if found else "0"
    return {"iTwinId": itwin, "iModelId": imodel_id, "changesetId": str(changeset)}


def _columns(body: dict[str, Any]) -> list[str] | None:
    meta = body.get("meta", body.get("columns"))
    if not isinstance(meta, list):
        return None
    return [str(c.get("name") or c.get("accessString") or f"c{i}") if isinstance(c, dict) else str(c)
            for i, c in enumerate(meta)]  # fmt: skip


def _next_link(body: dict[str, Any]) -> str | None:
    links = body.get("links") or body.get("_links") or {}
    nxt = links.get("next") if isinstance(links, dict) else None
    if isinstance(nxt, dict):
        nxt = nxt.get("href")
    return nxt if isinstance(nxt, str) and nxt else None


def _objects(rows: list[Any], columns: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, dict):
            out.append(row)
        elif isinstance(row, list):
            names = columns + [f"c{i}" for i in range(len(columns), len(row))]
            out.append(dict(zip(names, row, strict=False)))
    return out


async def _pages(
    ctx: LocalContext, target: dict[str, str], query: str, args: dict[str, Any] | None
) -> AsyncIterator[tuple[list[str], list[dict[str, Any]]]]:
    """Yield (columns, rows) page by page: run the query, wait if it answered 201, then page with skip."""
    run = {**target, "query": query, "includeMetadata": True, "limit": PAGE, "skip": 0}
    if args:
        run["args"] = args
    first = await _call(ctx, "run_imodel_query", run)
    body = first if isinstance(first, dict) else {}
    query_id = str(body.get("id", ""))
    started = time.monotonic()
    while body.get("state") in ("Pending", "Running") or ("state" not in body and "rows" not in body):
        elapsed = time.monotonic() - started
        if ctx.request is not None:
            await ctx.request.session.report_progress(round(elapsed, 1), WAIT_SECONDS, f"{body.get('state')}")
        if elapsed > WAIT_SECONDS:
            raise QueryFailed(
                f"Query {query_id} is still {body.get('state')} after {elapsed:.0f} s: read it later with "
                f"get_imodel_query (queryId {query_id}, changesetId {target['changesetId']}); results are kept 24 h."
            )
        await asyncio.sleep(0.25 if elapsed < 2 else 1.0)
        got = await _call(ctx, "get_imodel_query", {**target, "queryId": query_id, "limit": PAGE,
                                                     "skip": 0, "includeMetadata": True})  # fmt: skip
        body = got if isinstance(got, dict) else {}
    if body.get("state") == "Failed":
        error = body.get("error") or {}
        raise QueryFailed(f"query failed: {error.get('message') if isinstance(error, dict) else error}")
    columns = _columns(body) or []
    skip = 0
    while True:
        rows = body.get("rows") or []
        yield columns, _objects(rows, columns)
        skip += len(rows)
        if not rows or (_next_link(body) is None and len(rows) < PAGE):
            return
        got = await _call(ctx, "get_imodel_query", {**target, "queryId": query_id, "limit": PAGE, "skip": skip,
                                                    "includeMetadata": True})  # fmt: skip
        body = got if isinstance(got, dict) else {}
        columns = _columns(body) or columns


async def _all_rows(
    ctx: LocalContext, target: dict[str, str], query: str, args: dict[str, Any] | None = None
) -> tuple[list[str], list[dict[str, Any]], bool]:
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    async for columns, page in _pages(ctx, target, query, args):
        rows.extend(page)
        if len(rows) >= MAX_ROWS_READ:
            return columns, rows[:MAX_ROWS_READ], False
    return columns, rows, True


def _text(rows: list[dict[str, Any]], limit: int = 40) -> str:
    """Rows as compact JSON lines, for hosts that show only text."""
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows[:limit]]
    more = f"\n... {len(rows) - limit} more in structuredContent" if len(rows) > limit else ""
    return "\n".join(lines) + more


# -- query_imodel ------------------------------------------------------------------------------------------------


async def query_imodel(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    export = arguments.get("exportFile")
    try:
        target = await _target(ctx, arguments)
        if export:
            return await _export(ctx, target, arguments, str(export))
        columns, rows, complete = await _all_rows(ctx, target, arguments["query"], arguments.get("args"))
    except QueryFailed as exc:
        return refusal_result(str(exc))
    except InsightsError as exc:
        return _failed(ctx, "query_imodel", exc, arguments)
    skip = int(arguments.get("skip", 0))
    size = int(arguments.get("maxRows", ctx.settings.max_rows))
    window = rows[skip : skip + size]
    total = len(rows)
    data: dict[str, Any] = {"columns": columns, "rows": window, "total": total, "complete": complete,
                            "changesetId": target["changesetId"]}  # fmt: skip
    if skip + len(window) < total:
        data["nextSkip"] = skip + len(window)
    data, note = fit_to_budget(data, ctx.settings.max_result_bytes)
    shown = len(data["rows"])
    if skip + shown < total:  # fit_to_budget may have shown fewer rows than asked
        data["nextSkip"] = skip + shown
    rest = (
        f" Rows {skip + shown}-{total} remain: call again with skip={skip + shown}, or exportFile for all."
        if skip + shown < total
        else ""
    )
    head = f"{total}{'' if complete else '+'} rows ({', '.join(columns)}); showing {shown} from {skip}.{rest}"
    text = head + (f" {note}" if note else "") + "\n" + _text(data["rows"])
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


async def _export(
    ctx: LocalContext, target: dict[str, str], arguments: dict[str, Any], name: str
) -> types.CallToolResult:
    try:
        path = export_path(ctx.settings, name)
    except ValueError as exc:
        return refusal_result(str(exc))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".export-", dir=path.parent)
    jsonl = name.endswith(".jsonl")
    rows = 0
    columns: list[str] = []
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = None if jsonl else csv.writer(out)
            async for columns, page in _pages(ctx, target, arguments["query"], arguments.get("args")):
                if writer is not None and rows == 0:
                    writer.writerow(columns)
                for row in page:
                    if writer is None:
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    else:
                        writer.writerow([_cell(row.get(c)) for c in columns])
                rows += len(page)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)  # noqa: ASYNC240 - one local unlink
        raise
    data = {"columns": columns, "total": rows, "complete": True, "rows": [], "path": str(path),
            "changesetId": target["changesetId"]}  # fmt: skip
    return types.CallToolResult(
        content=[types.TextContent(text=f"Exported {rows} rows ({', '.join(columns)}) to {path}.")],
        structured_content=data,
    )


# -- describe_imodel ---------------------------------------------------------------------------------------------

_CLASSES: Final = (
    "SELECT ec_classname(e.ECClassId, 's.c') AS className, COUNT(*) AS instances FROM bis.Element e "
    "GROUP BY e.ECClassId ORDER BY className"
)
_ASPECTS: Final = (
    "SELECT ec_classname(a.ECClassId, 's.c') AS className, COUNT(*) AS instances FROM bis.ElementAspect a "
    "GROUP BY a.ECClassId ORDER BY className"
)
_SCHEMAS: Final = "SELECT Name, Alias FROM meta.ECSchemaDef ORDER BY Name"
_PROPERTIES: Final = (
    "SELECT ec_classname(p.Class.Id, 's.c') AS declaredIn, p.Name AS name, p.Kind AS kind, "
    "p.PrimitiveType AS primitiveType, p.ExtendedTypeName AS extendedType, k.PersistenceUnit AS unit "
    "FROM meta.ECPropertyDef p JOIN meta.ClassHasAllBaseClasses h ON h.TargetECInstanceId = p.Class.Id "
    "LEFT JOIN meta.KindOfQuantityDef k ON k.ECInstanceId = p.KindOfQuantity.Id "
    "WHERE h.SourceECInstanceId = ec_classid('{name}') ORDER BY p.Class.Id, p.Ordinal"
)


def _property(row: dict[str, Any]) -> dict[str, Any]:
    kind = _KINDS.get(row.get("kind"), str(row.get("kind")))  # type: ignore[arg-type]
    ptype = "Navigation" if kind == "Navigation" else _PRIMITIVES.get(row.get("primitiveType"), kind)  # type: ignore[arg-type]
    if row.get("extendedType") == "Json":
        ptype = "Json"
    unit = row.get("unit")
    out = {"name": row.get("name"), "type": ptype, "declaredIn": row.get("declaredIn")}
    if unit:
        out["unit"] = _UNIT_NAMES.get(str(unit), str(unit))
    return out


async def describe_imodel(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    name = arguments.get("className")
    try:
        target = await _target(ctx, arguments)
        if not name:
            _, schemas, _ = await _all_rows(ctx, target, _SCHEMAS)
            _, classes, _ = await _all_rows(ctx, target, _CLASSES)
            _, aspects, _ = await _all_rows(ctx, target, _ASPECTS)
            data: dict[str, Any] = {
                "schemas": [{"name": s.get("Name"), "alias": s.get("Alias")} for s in schemas],
                "classes": [{**c, "kind": "element"} for c in classes] + [{**a, "kind": "aspect"} for a in aspects],
                "changesetId": target["changesetId"],
            }
            text = "Schemas: " + ", ".join(f"{s['name']} ({s['alias']})" for s in data["schemas"]) + ". Classes: "
            text += ", ".join(f"{c['className']} {c['instances']}" for c in data["classes"])
            text += ". Next: describe_imodel with className for properties, then query_imodel."
        else:
            # an inline literal, not a `:name` parameter: how the service binds `args` is unconfirmed
            _, rows, _ = await _all_rows(ctx, target, _PROPERTIES.format(name=str(name).replace("'", "''")))
            if not rows:
                return refusal_result(
                    f"No class {name!r} in this iModel: use schema.Class (e.g. bldg.Wall); "
                    "describe_imodel without className lists the classes."
                )
            props = [_property(r) for r in rows]
            data = {"className": name, "properties": props, "changesetId": target["changesetId"]}
            text = f"{name}: " + ", ".join(
                f"{p['name']} {p['type']}" + (f" [{p['unit']}]" if "unit" in p else "") for p in props
            )
    except QueryFailed as exc:
        return refusal_result(str(exc))
    except InsightsError as exc:
        return _failed(ctx, "describe_imodel", exc, arguments)
    data, note = fit_to_budget(data, ctx.settings.max_result_bytes)
    return types.CallToolResult(
        content=[types.TextContent(text=text + (f" {note}" if note else ""))], structured_content=data
    )
