"""Compact mode: two tools instead of sixty-five, for hosts where even one toolset costs too much context.

`search_operations` finds operations by intent and returns their input schemas; `call_operation` calls one by name
through exactly the same validation, errors, read-only and toolset rules as the full mode (`dispatch.invoke`).
"""

from __future__ import annotations

import re
from typing import Any

import mcp.types as types

from .dispatch import CallEnv, invoke
from .results import refusal_result
from .tools import ToolSurface

__all__ = ["COMPACT_TOOL_NAMES", "call_compact", "compact_tools", "search"]

SEARCH = "search_operations"
CALL = "call_operation"
COMPACT_TOOL_NAMES = (SEARCH, CALL)
_WORD = re.compile(r"[a-z0-9]+")
# A few words agents use for what the API calls otherwise.
_SYNONYMS = {
    "column": "property",
    "columns": "property",
    "formula": "custom",
    "calculation": "custom",
    "table": "group",
    "tables": "group",
    "query": "group",
    "feed": "odata",
    "powerbi": "odata",
    "excel": "odata",
    "project": "itwin",
    "projects": "itwin",
    "job": "extraction",
    "run": "extraction",
    "status": "extraction",
    "metadata": "metadata",
    "rows": "entity",
    "page": "entity",
    "find": "list",
    "show": "get",
    "add": "create",
    "new": "create",
    "remove": "delete",
    "change": "update",
    "edit": "update",
    "rename": "update",
}


def _words(text: str) -> list[str]:
    out = []
    for word in _WORD.findall(text.lower().replace("_", " ")):
        word = word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
        out.append(_SYNONYMS.get(word, word))
    return out


def _entries(surface: ToolSurface) -> list[dict[str, Any]]:
    """Everything callable through call_operation: catalog operations and local tools alike."""
    entries = [
        {
            "name": op.tool,
            "toolset": op.toolset,
            "kind": "read" if op.read_only else "write",
            "operation": f"{op.method} {op.full_path}",
            "description": op.description,
            "inputSchema": op.input_schema,
            "_text": f"{op.title} {op.full_path}",
        }
        for op in surface
    ]
    entries += [
        {
            "name": t.tool,
            "toolset": t.toolset,
            "kind": "read" if t.read_only else "write",
            "operation": "computed by this server",
            "description": t.definition.description or "",
            "inputSchema": t.definition.input_schema,
            "_text": t.definition.title or "",
        }
        for t in surface.local_tools
    ]
    return entries


def _score(entry: dict[str, Any], words: list[str]) -> int:
    name = set(_words(entry["name"]))
    text = set(_words(entry["description"]))
    where = set(_words(entry["_text"])) | {entry["toolset"]}
    return sum(3 * (w in name) + 2 * (w in text) + (w in where) for w in words)


def search(surface: ToolSurface, query: str, *, toolset: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
    """The operations that best match `query` (among those this server exposes), with their input schemas."""
    words = _words(query)
    candidates = [e for e in _entries(surface) if toolset is None or e["toolset"] == toolset]
    ranked = sorted(((_score(e, words), e["name"], e) for e in candidates), key=lambda item: (-item[0], item[1]))
    return [{k: v for k, v in e.items() if k != "_text"} for score, _, e in ranked[:limit] if score > 0]


def compact_tools(surface: ToolSurface) -> list[types.Tool]:
    """The two tools of compact mode; `call_operation` is read-only when the server is."""
    toolsets = sorted({op.toolset for op in surface} | {t.toolset for t in surface.local_tools})
    search_tool = types.Tool(
        name=SEARCH,
        title="Search Insights operations",
        description="Find iTwin Insights API operations by intent; returns names, descriptions and input schemas.",
        input_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "What you want to do, in a few words."},
                "toolset": {"type": "string", "enum": toolsets, "description": "Only operations of this toolset."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "description": "Results (default 5)."},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"operations": {"type": "array", "items": {"type": "object"}}, "hint": {"type": "string"}},
            "required": ["operations"],
        },
        annotations=types.ToolAnnotations(
            title="Search Insights operations", read_only_hint=True, open_world_hint=False
        ),
    )
    call_tool = types.Tool(
        name=CALL,
        title="Call an Insights operation",
        description="Call an operation found with search_operations: its name and its arguments object.",
        input_schema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "Operation name, e.g. list_mappings."},
                "arguments": {"type": "object", "description": "Arguments matching the operation's inputSchema."},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(
            title="Call an Insights operation",
            read_only_hint=surface.read_only,
            destructive_hint=None if surface.read_only else True,
            idempotent_hint=None if surface.read_only else False,
            open_world_hint=True,
        ),
    )
    return [search_tool, call_tool]


async def call_compact(
    surface: ToolSurface, env: CallEnv, name: str, arguments: dict[str, Any]
) -> types.CallToolResult:
    """Dispatch a compact-mode call; argument problems come back as isError results."""
    if name == SEARCH:
        query = arguments.get("query")
        limit = arguments.get("limit", 5)
        toolset = arguments.get("toolset")
        if not isinstance(query, str) or not query.strip():
            return refusal_result("`query` is required: say in a few words what you want to do.")
        if not isinstance(limit, int) or not 1 <= limit <= 20:
            return refusal_result("`limit` must be an integer from 1 to 20.")
        found = search(surface, query, toolset=toolset if isinstance(toolset, str) else None, limit=limit)
        hint = (
            "Call call_operation with one of these names and an arguments object matching its inputSchema."
            if found
            else "Nothing matched; try other words (e.g. 'list mappings', 'run extraction', 'odata')."
        )
        structured = {"operations": found, "hint": hint}
        text = "\n".join(f"- {o['name']} ({o['kind']}): {o['description']}" for o in found) or hint
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)
    if name == CALL:
        target = arguments.get("name")
        call_arguments = arguments.get("arguments", {})
        if not isinstance(target, str) or not target:
            return refusal_result("`name` is required: an operation name from search_operations.")
        if not isinstance(call_arguments, dict):
            return refusal_result("`arguments` must be an object matching the operation's inputSchema.")
        return await invoke(surface, env, target, call_arguments)
    return refusal_result(f"Unknown tool `{name}`. In compact mode the tools are {SEARCH} and {CALL}.")
