"""Catalog operations as MCP tools: definitions, argument validation and request building.

A call is: validate the arguments against the operation's flattened schema -> build the HTTP request -> send it
through the shared client -> shape the reply (`results.py`). No operation has a hand-written handler here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import mcp.types as types

from ..api.catalog import Catalog, Operation
from ..api.client import ApiResponse, InsightsClient
from ..api.validation import problems
from ..errors import InvalidArgumentError
from .selection import Selectable, ToolSelection

__all__ = [
    "PreparedRequest",
    "ToolSurface",
    "annotations_for",
    "build_request",
    "tool_definition",
    "validate_arguments",
]


class LocalToolLike(Selectable, Protocol):
    """A tool computed by this server (see local_tools.py): selectable, with its own definition."""

    @property
    def definition(self) -> types.Tool: ...


def annotations_for(op: Operation) -> types.ToolAnnotations:
    """Hints from the HTTP method: GET reads; DELETE destroys idempotently; PUT replaces; POST adds."""
    method = op.method
    return types.ToolAnnotations(
        title=op.title,
        read_only_hint=method == "GET",
        destructive_hint=None if method == "GET" else method in ("DELETE", "PUT", "PATCH"),
        idempotent_hint=None if method == "GET" else method in ("DELETE", "PUT"),
        open_world_hint=True,
    )


def tool_definition(op: Operation) -> types.Tool:
    """The MCP tool for one operation; name, schemas and annotations all come from the catalog."""
    description = op.description
    if op.preview and not description.lower().startswith("preview"):
        description = f"Preview: {description}"
    if op.deprecated:
        description = f"Deprecated: {description}"
    return types.Tool(
        name=op.tool,
        title=op.title,
        description=description,
        input_schema=op.input_schema,
        output_schema=op.output_schema,
        annotations=annotations_for(op),
    )


MAX_ID_LENGTH = 1024  # Bentley's ids are GUIDs, Id64 hex or short names; anything longer is not an id


def id_problem(value: Any) -> str | None:
    """Why `value` cannot be one path segment (an id), or None. Dot segments would be collapsed by the HTTP stack and
    address another resource (`..` from a group id is the mapping), so they never leave this server."""
    if not isinstance(value, str):
        return None  # the schema reports wrong types
    if not value.strip():
        return "must not be empty"
    if value in (".", "..") or value.strip(".") == "":
        return "must be an id, not a dot segment"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters (got {len(value)})"
    if "/" in value or "\\" in value:
        return "must be one id, without / or \\"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return "must not contain control characters or lone surrogates"
    return None


def validate_arguments(op: Operation, arguments: Mapping[str, Any]) -> list[str]:
    """Every problem with the arguments, one line each naming the field; empty when the call may go out."""
    found = [str(p) for p in problems(op.input_schema, dict(arguments))]
    for param in op.parameters:
        if param.location == "path" and param.arg in arguments:
            why = id_problem(arguments[param.arg])
            if why is not None:
                found.append(f"`{param.arg}`: {why}")
    if op.min_body_fields and not any(name in arguments for name in op.body_fields):
        found.append(f"give at least one of the fields to change: {', '.join(op.body_fields)}")
    return found


@dataclass(frozen=True)
class PreparedRequest:
    """The HTTP request one tool call turns into."""

    method: str
    path: str
    params: dict[str, str]
    json_body: dict[str, Any] | None
    accept: str


def build_request(op: Operation, arguments: Mapping[str, Any]) -> PreparedRequest:
    """Place validated arguments into path, query and body as the API spells them."""
    path = op.full_path
    params: dict[str, str] = {}
    for param in op.parameters:
        if param.arg not in arguments or arguments[param.arg] is None:
            continue
        value = arguments[param.arg]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if param.location == "path":
            why = id_problem(value)
            if why is not None:
                raise InvalidArgumentError(param.arg, why)
            path = path.replace("{" + param.name + "}", quote(text, safe=""))
        else:
            params[param.name] = text
    if path.count("/") != op.full_path.count("/") or any(seg in (".", "..") for seg in path.split("/")):
        raise InvalidArgumentError(op.tool, "a path argument would change the request path")
    body: dict[str, Any] | None = None
    if op.body_schema is not None:
        body = {name: arguments[name] for name in op.body_fields if name in arguments}
        if not body and not op.body_required:
            body = None
    return PreparedRequest(op.method, path, params, body, op.family.accept)


async def send(client: InsightsClient, op: Operation, arguments: Mapping[str, Any]) -> ApiResponse:
    """Send one operation with (already validated) arguments through the shared client; errors raise."""
    request = build_request(op, arguments)
    return await client.request(
        request.method, request.path, params=request.params, json_body=request.json_body, accept=request.accept
    )


class ToolSurface:
    """The tools exposed under one selection: which operations, and how each is found by name."""

    def __init__(
        self,
        catalog: Catalog,
        selection: ToolSelection | None = None,
        *,
        local_tools: Iterable[LocalToolLike] = (),
        read_only: bool = False,
        include_deprecated: bool = False,
    ) -> None:
        self.catalog = catalog
        self.selection = selection or ToolSelection.build(read_only=read_only, include_deprecated=include_deprecated)
        selected = [op for op in catalog if self.selection.allows(op)]
        self._ops = {op.tool: op for op in selected}
        self._all_local = {t.tool: t for t in local_tools}
        self._local = {t.tool: t for t in self._all_local.values() if self.selection.allows(t)}
        self.tools = [tool_definition(op) for op in selected] + [t.definition for t in self._local.values()]

    @property
    def read_only(self) -> bool:
        return self.selection.read_only

    def __contains__(self, name: str) -> bool:
        return name in self._ops or name in self._local

    def local(self, name: str) -> LocalToolLike | None:
        """The local (non-catalog) tool of that name, when exposed."""
        return self._local.get(name)

    @property
    def local_tools(self) -> tuple[LocalToolLike, ...]:
        return tuple(self._local.values())

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops.values())

    def get(self, name: str) -> Operation | None:
        return self._ops.get(name)

    def refusal(self, name: str) -> str:
        """Why `name` cannot be called here, with what to do instead."""
        op = self.catalog.get(name)
        if op is not None:
            return self.selection.why_not(op)
        local = self._all_local.get(name)
        if local is not None:
            return self.selection.why_not(local)
        close = sorted(t for t in [*self._ops, *self._local] if name and (name in t or t in name))[:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else " Call tools/list to see the available tools."
        return f"Unknown tool `{name}`.{hint}"
