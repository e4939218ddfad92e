"""Tools that are not one API operation each: waiting for an extraction, exporting a whole OData table, reading
the skills bundle, and saying how the server is authenticated.

Each is declared once (`_declare`: an `x-mcp` overlay read by the catalog's own `parse_overlay`, with its schemas and
handler) and goes through the same selection rules as the catalog's tools. `read_skill` and `auth_status` belong to
the `core` toolset, present whatever toolsets are chosen (only `--exclude-tools` removes them).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import mcp.types as types
from mcp.server import ServerRequestContext

from ..api.catalog import Catalog, CatalogError, parse_overlay
from ..api.client import InsightsClient
from ..errors import ApiError, InsightsError
from ..settings import Settings
from .results import error_result, refusal_result
from .skills import load_skills
from .tools import send

__all__ = ["LOCAL_TOOLS", "Clock", "LocalContext", "LocalTool", "export_path"]

WAIT_LIMIT_SECONDS = 45  # under the ~60 s many hosts allow a tool call
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
# `$(?!\n)`: Python's `$` also matches before a final newline (`x.csv\n`); this means end of text in every engine.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$(?!\n)")


@dataclass(frozen=True)
class Clock:
    """Where waiting tools read the time and how they pause: passed in, so tests run waits on virtual time."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class LocalContext:
    """What a local tool may use: the shared client, the settings, the catalog, the MCP request and the clock."""

    client: InsightsClient
    settings: Settings
    catalog: Catalog
    request: ServerRequestContext[Any] | None
    clock: Clock = field(default_factory=Clock)


Handler = Callable[[LocalContext, dict[str, Any]], Awaitable[types.CallToolResult]]


@dataclass(frozen=True)
class LocalTool:
    """A tool implemented here rather than by one API call; quacks like an Operation for selection."""

    tool: str
    toolset: str
    read_only: bool
    definition: types.Tool
    handler: Handler
    deprecated: bool = False
    also_in: tuple[str, ...] = ()
    method: str = "LOCAL"
    full_path: str = "(computed by this server)"
    opens_view: bool = False  # results shown in the MCP App report view (server/ui.py) to hosts that render it


def _structured(text: str, data: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)


async def _api(ctx: LocalContext, tool: str, arguments: dict[str, Any]) -> Any:
    """Call one catalog operation and return its body (errors raise)."""
    return (await send(ctx.client, ctx.catalog[tool], arguments)).body


# -- wait_for_extraction -----------------------------------------------------------------------------------------


def _poll_interval(elapsed: float) -> float:
    """Server-chosen pace: every second at first, then every 2, then every 3 seconds."""
    return 1.0 if elapsed < 5 else 2.0 if elapsed < 20 else 3.0


async def _status(ctx: LocalContext, job_id: str, tool: str) -> dict[str, Any]:
    """The run's state in v1's shape, read with the Reporting v1 or the Grouping & Mapping status operation."""
    body = await _api(ctx, tool, {"jobId": job_id} if tool == "get_extraction_status" else {"extractionId": job_id})
    if tool == "get_extraction_status":
        status: dict[str, Any] = body.get("status", {}) if isinstance(body, dict) else {}
        return status
    extraction = body.get("extraction", {}) if isinstance(body, dict) else {}
    state = str(extraction.get("state", "Unknown"))
    return {"state": state, "reason": None, "containsIssues": state == "PartiallySucceeded"}


async def wait_for_extraction(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    job_id = arguments["jobId"]
    limit = float(arguments.get("waitSeconds", 40))
    clock = ctx.clock
    started = clock.now()
    op = ctx.catalog["get_extraction_status"]
    tool = "get_extraction_status"
    first_error: ApiError | None = None
    while True:
        try:
            status = await _status(ctx, job_id, tool)
        except ApiError as exc:
            first_error = first_error or exc
            if exc.status == 404 and tool == "get_extraction_status" and ctx.catalog.get("gm_get_extraction_status"):
                tool = "gm_get_extraction_status"  # perhaps a Grouping & Mapping run: ask that API too
                continue
            return error_result(op, first_error, ctx.catalog, {"jobId": job_id})
        except InsightsError as exc:
            return error_result(op, exc, ctx.catalog, {"jobId": job_id})
        state = str(status.get("state", "Unknown"))
        elapsed = clock.now() - started
        done = state not in ("Queued", "Running")
        if ctx.request is not None:
            await ctx.request.session.report_progress(
                round(min(elapsed, limit), 1), limit, f"{state}: {status.get('reason') or state}"
            )
        interval = _poll_interval(elapsed)
        if done or elapsed + interval > limit:
            if done and state in ("Succeeded", "PartiallySucceeded"):
                step = (
                    "Read list_extraction_logs (gm_list_extraction_logs for a Grouping & Mapping run) if "
                    "containsIssues is true; otherwise the data is ready."
                )
            elif done:
                step = (
                    "Read list_extraction_logs(jobId) (or gm_list_extraction_logs) to see why it failed, fix the "
                    "mapping, run it again."
                )
            else:
                step = "Still running: call wait_for_extraction again with the same jobId."
            data = {
                "jobId": job_id,
                "state": state,
                "reason": status.get("reason"),
                "containsIssues": status.get("containsIssues"),
                "done": done,
                "waitedSeconds": round(elapsed, 1),
                "nextStep": step,
            }
            return _structured(f"Extraction {job_id}: {state} after {elapsed:.0f} s. {step}", data)
        await clock.sleep(interval)


# -- export_odata_entity -----------------------------------------------------------------------------------------


def export_path(settings: Settings, file_name: str) -> Path:
    """The file inside the export directory; anything that would land elsewhere is refused."""
    if not _FILE_NAME.match(file_name) or ".." in file_name:
        raise ValueError(f"fileName {file_name!r} must be a plain file name (letters, digits, . _ -).")
    root = Path(settings.export_dir).expanduser().resolve()
    target = (root / file_name).resolve()
    if target.parent != root:
        raise ValueError(f"fileName {file_name!r} would leave the export directory.")
    return target


async def _columns(ctx: LocalContext, report_id: str, entity: str) -> list[str]:
    xml = await _api(ctx, "get_odata_metadata", {"reportId": report_id})
    import xml.etree.ElementTree as ET  # only when exporting

    root = ET.fromstring(xml)  # noqa: S314 - our own API's EDMX, not user input
    for entity_type in root.iter(f"{EDM}EntityType"):
        if entity_type.get("Name") == entity:
            return [str(p.get("Name")) for p in entity_type.iter(f"{EDM}Property")]
    return []


def _csv_value(value: Any) -> Any:
    """CSV cells as spreadsheets expect: empty for null, lower-case JSON booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class _RowSink:
    """Rows written as CSV (header once the columns are known) or JSON Lines, the first few kept as a preview."""

    def __init__(self, out: TextIO, fmt: str, columns: list[str]) -> None:
        self.out = out
        self.columns = columns
        self.writer = csv.writer(out) if fmt == "csv" else None
        self.rows = 0
        self.preview: list[dict[str, Any]] = []
        if columns and self.writer is not None:
            self.writer.writerow(columns)

    def write(self, values: list[dict[str, Any]]) -> None:
        if not self.columns and values:  # no $metadata columns: take the first row's
            self.columns = list(values[0])
            if self.writer is not None:
                self.writer.writerow(self.columns)
        for row in values:
            if self.writer is not None:
                self.writer.writerow([_csv_value(row.get(c)) for c in self.columns])
            else:
                self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.preview.extend(values[: 5 - len(self.preview)])
        self.rows += len(values)


async def _stream_pages(ctx: LocalContext, page_args: dict[str, Any], sink: _RowSink) -> None:
    """Every page of the entity set into `sink`, one page in memory at a time, however big the table."""
    sequence = 0
    while True:
        page = await _api(ctx, "get_odata_entity_page", {**page_args, "sequence": sequence})
        sink.write(page.get("value", []) if isinstance(page, dict) else [])
        if not isinstance(page, dict) or "@odata.nextLink" not in page:
            return
        sequence += 1


def _exported(ctx: LocalContext, target: Path, entity: str, fmt: str, sink: _RowSink) -> types.CallToolResult:
    """The result: a resource link over HTTP (the client may be elsewhere), the file's path over stdio."""
    data: dict[str, Any] = {"rows": sink.rows, "columns": sink.columns, "format": fmt, "preview": sink.preview}
    summary = f"Exported {sink.rows} rows of {entity} ({len(sink.columns)} columns) as {fmt}"
    if ctx.settings.transport == "http":
        uri = f"insights://exports/{target.name}"
        mime = "text/csv" if fmt == "csv" else "application/jsonl"
        data["uri"] = uri
        link = types.ResourceLink(uri=uri, name=target.name, mime_type=mime, size=target.stat().st_size)
        return types.CallToolResult(
            content=[types.TextContent(text=f"{summary}: {uri}"), link], structured_content=data
        )
    data["path"] = str(target)
    return _structured(f"{summary} to {target}.", data)


async def export_odata_entity(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    op = ctx.catalog["get_odata_entity_page"]
    fmt = arguments.get("format", "csv")
    entity = arguments["entityType"]
    try:
        target = export_path(ctx.settings, arguments.get("fileName") or f"{entity}.{fmt}")
    except ValueError as exc:
        return refusal_result(str(exc))
    page_args = {k: arguments[k] for k in ("reportId", "region", "manifestId", "entityType")}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".export-", dir=target.parent)
    try:
        columns = await _columns(ctx, arguments["reportId"], entity)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            sink = _RowSink(out, fmt, columns)
            await _stream_pages(ctx, page_args, sink)
        os.replace(temp_name, target)  # the file appears whole or not at all
    except InsightsError as exc:
        Path(temp_name).unlink(missing_ok=True)  # noqa: ASYNC240 - one local unlink, microseconds
        return error_result(op, exc, ctx.catalog, arguments)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)  # noqa: ASYNC240 - one local unlink, microseconds
        raise
    return _exported(ctx, target, entity, fmt, sink)


# -- read_skill and auth_status ----------------------------------------------------------------------------------


async def read_skill(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    skills = load_skills()
    skill = arguments.get("skill")
    if not skill:
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(skills.manifest(), indent=1))])
    try:
        found = skills.read(skill, arguments.get("path") or "SKILL.md")
    except KeyError as exc:
        return refusal_result(str(exc.args[0]))
    return types.CallToolResult(content=[types.TextContent(text=found.text)])


def _claims(token: str) -> dict[str, Any]:
    """Claims of a JWT, read without verification, only to say who is signed in (never the token itself)."""
    from ..api.signin import unverified_claims

    return unverified_claims(token)


def _scopes(value: Any) -> list[str] | None:
    """A `scope` claim as a list, whether the token spells it as one string or as an array."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return None


def _signed_in_user(data: dict[str, Any]) -> None:
    """Hosted with OAuth: the user of this request (the server itself has no Bentley identity)."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    subject = token.subject if token is not None else None
    data.update(
        credential="your own Bentley sign-in (hosted OAuth; each user's token stays on the server)",
        identity=subject or "nobody (no signed-in user on this request)",
        scopes=list(token.scopes) if token is not None else None,
        expiresAt=token.expires_at if token is not None else None,
        signedIn=token is not None,
        nextStep="Calls run as you; sign in again in your MCP host when asked."
        if token is not None
        else "Sign in through your MCP host (it follows the server's OAuth metadata).",
    )


async def _desktop_user(settings: Settings, data: dict[str, Any]) -> None:
    """A stored `itwin-insights-mcp login`: who signed in, as the store recorded it (offline, no token read out)."""
    from ..api.desktop_auth import default_store, whoami

    info = await asyncio.to_thread(
        whoami, settings.authority, settings.desktop_client_id, store=default_store(settings.token_store)
    )
    expired = bool(info.get("expired"))
    data.update(
        credential=f"desktop sign-in (itwin-insights-mcp login, kept in the {info.get('store')} store)",
        identity=info.get("email") or info.get("name") or info.get("subject") or "unknown",
        scopes=info.get("scopes"),
        signedIn=bool(info.get("signed_in")) and not expired,
        nextStep="Run `itwin-insights-mcp login` again and restart the server: the sign-in has expired."
        if expired or not info.get("signed_in")
        else "Access tokens are refreshed automatically from the stored sign-in.",
    )


async def auth_status(ctx: LocalContext, arguments: dict[str, Any]) -> types.CallToolResult:
    settings = ctx.settings
    backend = settings.resolved_backend
    data: dict[str, Any] = {
        "backend": backend,
        "apiBaseUrl": settings.api_base_url if backend == "bentley" else "in-process sandbox",
    }
    if backend == "sandbox":
        data.update(
            credential="none needed",
            identity="sandbox.user@example.com",
            signedIn=True,
            nextStep="Sample data only. To use Bentley's service, restart the server with ITWIN_ACCESS_TOKEN "
            "or ITWIN_CLIENT_ID + ITWIN_CLIENT_SECRET in its environment.",
        )
    elif settings.auth_mode == "oauth" and settings.transport == "http":
        _signed_in_user(data)
    elif settings.access_token:
        claims = _claims(settings.access_token)
        expires = claims.get("exp")
        expires = expires if isinstance(expires, int | float) and not isinstance(expires, bool) else None
        expired = expires is not None and expires < time.time()
        identity = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
        data.update(
            credential="static access token (ITWIN_ACCESS_TOKEN)",
            identity=str(identity) if identity else "unknown (opaque token)",
            scopes=_scopes(claims.get("scope")),
            expiresAt=expires,
            signedIn=not expired,
            nextStep="The token has expired: ask the user for a fresh ITWIN_ACCESS_TOKEN and a restart."
            if expired
            else "Static tokens last about an hour; service credentials refresh themselves.",
        )
    elif settings.client_id and settings.client_secret:
        data.update(
            credential="service app client credentials",
            identity=f"service app {settings.client_id}",
            scopes=settings.scopes.split(),
            signedIn=True,
            nextStep="Tokens are fetched and refreshed automatically.",
        )
    else:
        await _desktop_user(settings, data)
    text = f"Backend: {backend}; credential: {data['credential']}; identity: {data['identity']}. {data['nextStep']}"
    return _structured(text, data)


def _declare(
    handler: Handler,
    overlay: dict[str, Any],
    *,
    title: str,
    schema: dict[str, Any],
    output: dict[str, Any] | None = None,
    idempotent: bool | None = None,
) -> LocalTool:
    """One local tool from its `x-mcp` overlay (tool, toolset, alsoIn, readOnly, description), read as the catalog
    reads an operation's, plus its schemas and handler: name, toolset and read-only flag are written once."""
    meta = parse_overlay(overlay, f"local tool {overlay.get('tool')!r}")
    if meta.read_only is None:
        raise CatalogError(f"local tool {meta.tool!r}: x-mcp.readOnly is required (there is no HTTP method)")
    definition = _tool(
        meta.tool, title, meta.description, schema, read_only=meta.read_only, output=output, idempotent=idempotent
    )
    return LocalTool(meta.tool, meta.toolset, meta.read_only, definition, handler, also_in=meta.also_in)


def _tool(
    name: str,
    title: str,
    description: str,
    schema: dict[str, Any],
    *,
    read_only: bool,
    output: dict[str, Any] | None = None,
    idempotent: bool | None = None,
) -> types.Tool:
    return types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema={"type": "object", "additionalProperties": False, **schema},
        output_schema=output,
        annotations=types.ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=None if read_only else False,
            idempotent_hint=idempotent,
            open_world_hint=name != "read_skill",
        ),
    )


_ODATA_ARGS = {
    "reportId": {"type": "string", "description": "Report id (GUID)."},
    "region": {"type": "string", "description": "First segment of the entity url in the service document."},
    "manifestId": {"type": "string", "description": "Second segment of the entity url."},
    "entityType": {"type": "string", "description": "Entity set name (third segment of the url)."},
}

LOCAL_TOOLS: tuple[LocalTool, ...] = (
    _declare(
        wait_for_extraction,
        {
            "tool": "wait_for_extraction",
            "toolset": "extraction",
            "alsoIn": ["gm_extraction"],
            "readOnly": True,
            "description": f"Wait (at most {WAIT_LIMIT_SECONDS} s) for an extraction to finish, with progress; "
            "returns its state.",
        },
        title="Wait for an extraction",
        schema={
            "properties": {
                "jobId": {"type": "string", "minLength": 1, "description": "Run id from run_extraction."},
                "waitSeconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": WAIT_LIMIT_SECONDS,
                    "description": f"Longest wait in seconds (default 40, at most {WAIT_LIMIT_SECONDS}).",
                },
            },
            "required": ["jobId"],
        },
        output={
            "type": "object",
            "required": ["jobId", "state", "done"],
            "properties": {
                "jobId": {"type": "string"},
                "state": {"type": "string"},
                "reason": {"type": ["string", "null"]},
                "containsIssues": {"type": ["boolean", "null"]},
                "done": {"type": "boolean"},
                "waitedSeconds": {"type": "number"},
                "nextStep": {"type": "string"},
            },
        },
    ),
    _declare(
        export_odata_entity,
        {
            "tool": "export_odata_entity",
            "toolset": "odata",
            "readOnly": False,
            "description": "Stream every page of an OData entity set to a CSV or JSON Lines file in the export "
            "directory.",
        },
        title="Export an OData table to a file",
        schema={
            "properties": {
                **_ODATA_ARGS,
                "format": {"type": "string", "enum": ["csv", "jsonl"], "description": "Default csv."},
                "fileName": {
                    "type": "string",
                    "pattern": _FILE_NAME.pattern,
                    "maxLength": 100,
                    "description": "File name inside the export directory (default: entity name).",
                },
            },
            "required": ["reportId", "region", "manifestId", "entityType"],
        },
        idempotent=True,
        output={
            "type": "object",
            "required": ["rows", "columns"],
            "properties": {
                "rows": {"type": "integer"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "format": {"type": "string"},
                "path": {"type": "string"},
                "uri": {"type": "string"},
                "preview": {"type": "array", "items": {"type": "object"}},
            },
        },
    ),
    _declare(
        read_skill,
        {
            "tool": "read_skill",
            "toolset": "core",
            "readOnly": True,
            "description": "Read the Insights skills: no arguments lists them; `skill` (and `path`) returns one "
            "file's text.",
        },
        title="Read a skill",
        schema={
            "properties": {
                "skill": {"type": "string", "description": "Skill name, e.g. insights-reporting."},
                "path": {"type": "string", "description": "File in the skill (default SKILL.md)."},
            }
        },
    ),
    _declare(
        auth_status,
        {
            "tool": "auth_status",
            "toolset": "core",
            "readOnly": True,
            "description": "Say which backend this server uses, who it is signed in as and what to do if not "
            "(never the token).",
        },
        title="Authentication status",
        schema={"properties": {}},
        output={
            "type": "object",
            "required": ["backend", "credential", "signedIn"],
            "properties": {
                "backend": {"type": "string"},
                "apiBaseUrl": {"type": "string"},
                "credential": {"type": "string"},
                "identity": {"type": ["string", "null"]},
                "scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "expiresAt": {"type": ["number", "null"]},
                "signedIn": {"type": "boolean"},
                "nextStep": {"type": "string"},
            },
        },
    ),
)
