"""Operation records from the OpenAPI documents in `specs/`: the single source of truth.

Tools, the sandbox's routes and request validation are all derived from these records; nothing else reads the YAML.
Invariants checked at load: every operation has an `x-mcp` overlay, tool names are unique and well-formed, and a
tool's flattened arguments (path + query + body fields) never collide.

Every per-tool behaviour lives in the `x-mcp` overlay and is read here, generically (`Overlay`): the tool's name,
toolset and description, the permission it needs (`permissions`), whether its reply is a page of table rows to bound
(`rows`), which ids its list yields (`lists`) and the next step for an error code (`errorHints`). Local tools declare
the same overlay (`parse_overlay`). The rest of the server reads these records and never names a tool.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_dir

__all__ = [
    "CACHE_FORMAT",
    "SANDBOX_PATTERN",
    "TOOL_NAME_PATTERN",
    "Catalog",
    "Family",
    "Operation",
    "Overlay",
    "Parameter",
    "RowsPolicy",
    "load_catalog",
    "parse_overlay",
]

JsonSchema = dict[str, Any]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Location = Literal["path", "query", "header"]

TOOL_NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
# A server-side-only rule next to a schema's portable `pattern` (see api/validation.py); never shown to tools.
SANDBOX_PATTERN = "x-sandbox-pattern"
SPEC_FILES = (
    "reporting-v1.yaml",
    "itwins-v1.yaml",
    "imodels-v2.yaml",
    "grouping-mapping-v1.yaml",
    "reporting-v2.yaml",
)
_METHODS: tuple[Method, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Paging query names and the tool argument that carries each (API spelling minus the `$`).
PAGING_TOKENS = ("$continuationToken", "$skip")
# Bumped whenever the resolved form cached by `_resolved` changes shape (the YAML hash alone would not notice).
CACHE_FORMAT = 2


class CatalogError(ValueError):
    """A spec document breaks the catalog's invariants (a packaging bug, never user input)."""


@dataclass(frozen=True)
class Family:
    """An API family: where its operations live and which version they speak."""

    name: str
    title: str
    base_path: str
    accept: str
    status: str


@dataclass(frozen=True)
class RowsPolicy:
    """The reply is one page of table rows (`value`): bound it to the row budget and name the tool that gets all."""

    export: str | None = None


@dataclass(frozen=True)
class Overlay:
    """A tool's `x-mcp` overlay: what the server needs to know about a tool beyond the HTTP operation."""

    tool: str
    toolset: str
    description: str
    permissions: tuple[str, ...] = ()
    rows: RowsPolicy | None = None
    lists: tuple[str, ...] = ()
    error_hints: Mapping[str, str] = field(default_factory=dict)
    also_in: tuple[str, ...] = ()
    read_only: bool | None = None  # local tools only: an operation's comes from its HTTP method
    replaced_by: str | None = None


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"{where}: x-mcp.{key} must be a list of names")
    return tuple(value)


def parse_overlay(raw: Any, where: str) -> Overlay:
    """Read one `x-mcp` overlay, refusing unknown keys so that a typo never silently drops a behaviour."""
    if not isinstance(raw, Mapping) or not {"tool", "toolset", "description"} <= raw.keys():
        raise CatalogError(f"{where}: missing x-mcp overlay with tool, toolset and description")
    unknown = set(raw) - _OVERLAY_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown x-mcp keys {sorted(unknown)}; known: {sorted(_OVERLAY_KEYS)}")
    tool = str(raw["tool"])
    if not TOOL_NAME_PATTERN.match(tool):
        raise CatalogError(f"{where}: tool name {tool!r} breaks {TOOL_NAME_PATTERN.pattern}")
    rows = raw.get("rows")
    if rows is not None and not isinstance(rows, Mapping):
        raise CatalogError(f"{where}: x-mcp.rows must be a mapping (e.g. {{export: tool_name}})")
    hints = raw.get("errorHints") or {}
    if not isinstance(hints, Mapping) or not all(isinstance(v, str) for v in hints.values()):
        raise CatalogError(f"{where}: x-mcp.errorHints must map error codes to text")
    read_only = raw.get("readOnly")
    return Overlay(
        tool=tool,
        toolset=str(raw["toolset"]),
        description=str(raw["description"]).strip(),
        permissions=_strings(raw.get("permissions"), where, "permissions"),
        rows=None if rows is None else RowsPolicy(export=str(rows["export"]) if rows.get("export") else None),
        lists=_strings(raw.get("lists"), where, "lists"),
        error_hints={str(k): " ".join(str(v).split()) for k, v in hints.items()},
        also_in=_strings(raw.get("alsoIn"), where, "alsoIn"),
        read_only=None if read_only is None else bool(read_only),
        replaced_by=str(raw["replacedBy"]) if raw.get("replacedBy") else None,
    )


_OVERLAY_KEYS = frozenset(
    {"tool", "toolset", "description", "permissions", "rows", "lists", "errorHints", "alsoIn", "readOnly", "replacedBy"}
)


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter, with the tool argument name that carries it."""

    name: str
    arg: str
    location: Location
    required: bool
    schema: JsonSchema


@dataclass(frozen=True)
class Operation:
    """One API operation and everything the tool layer and the sandbox need to know about it."""

    operation_id: str
    tool: str
    toolset: str
    description: str
    title: str
    method: Method
    path: str
    family: Family
    parameters: tuple[Parameter, ...]
    body_schema: JsonSchema | None
    body_required: bool
    response_schema: JsonSchema | None
    response_content_type: str | None
    success_status: int
    deprecated: bool
    error_codes: tuple[str, ...]
    status: str = "GA"
    overlay: Overlay | None = None
    auth_schemes: tuple[str, ...] = ()  # OpenAPI security scheme names accepted (the operation's, else the document's)

    @property
    def permissions(self) -> tuple[str, ...]:
        """The permission(s) a caller needs on the iTwin/iModel (`x-mcp.permissions`)."""
        return self.overlay.permissions if self.overlay else ()

    @property
    def rows(self) -> RowsPolicy | None:
        """Set when the reply is a page of table rows the tool layer bounds (`x-mcp.rows`)."""
        return self.overlay.rows if self.overlay else None

    @property
    def replaced_by(self) -> str | None:
        """The tool to use instead of this deprecated one (`x-mcp.replacedBy`)."""
        return self.overlay.replaced_by if self.overlay else None

    @property
    def key(self) -> tuple[str, str]:
        """(family, operationId): unique across the catalog (operation ids repeat between families)."""
        return (self.family.name, self.operation_id)

    @property
    def preview(self) -> bool:
        return self.status.lower() == "preview"

    @property
    def full_path(self) -> str:
        """Path below the API host, e.g. `/insights/reporting/reports/{reportId}`."""
        return self.family.base_path.rstrip("/") + self.path

    @property
    def read_only(self) -> bool:
        return self.method == "GET"

    @property
    def body_fields(self) -> tuple[str, ...]:
        if not self.body_schema:
            return ()
        return tuple(self.body_schema.get("properties", {}))

    @property
    def paging_parameter(self) -> Parameter | None:
        """The query parameter that carries the next page's position, when the operation pages."""
        for param in self.parameters:
            if param.name in PAGING_TOKENS:
                return param
        return None

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    @functools.cached_property
    def input_schema(self) -> JsonSchema:
        """Path, query and body fields flattened into one object schema (API spelling, `$` dropped)."""
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for param in self.parameters:
            properties[param.arg] = copy.deepcopy(param.schema)
            if param.required:
                required.append(param.arg)
        if self.body_schema:
            for name, field_schema in self.body_schema.get("properties", {}).items():
                properties[name] = copy.deepcopy(field_schema)
            if self.body_required:
                required.extend(r for r in self.body_schema.get("required", []) if r not in required)
        _drop_sandbox_rules(properties)
        flattened: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            flattened["required"] = required
        return flattened

    @property
    def min_body_fields(self) -> int:
        """How many body fields a call must carry (PATCH bodies need at least one)."""
        return int((self.body_schema or {}).get("minProperties", 0))

    @functools.cached_property
    def output_schema(self) -> JsonSchema | None:
        """A lenient shape of the JSON response (plus the paging token), or None for empty/non-JSON replies."""
        if self.response_schema is None or self.response_content_type != "application/json":
            return None
        schema = _lenient(copy.deepcopy(self.response_schema), root=True)
        schema.setdefault("type", "object")
        if self.paging_parameter is not None:
            props = schema.setdefault("properties", {})
            next_arg = "next" + self.paging_parameter.arg[0].upper() + self.paging_parameter.arg[1:]
            props[next_arg] = {
                "type": ["string", "null"],
                "description": f"Pass as `{self.paging_parameter.arg}` to get the next page; null on the last page.",
            }
        return schema


class Catalog:
    """All operations, indexed by tool name and operation id."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._ops = tuple(sorted(operations, key=lambda op: (op.toolset, op.tool)))
        self._by_tool: dict[str, Operation] = {}
        for op in self._ops:
            if op.tool in self._by_tool:
                raise CatalogError(f"Duplicate tool name {op.tool!r}")
            self._by_tool[op.tool] = op
        self._hints: dict[str, str] = {}  # error code -> next step, from every operation's x-mcp.errorHints
        for op in self._ops:
            for code, text in (op.overlay.error_hints if op.overlay else {}).items():
                if self._hints.setdefault(code, text) != text:
                    raise CatalogError(f"Two different x-mcp.errorHints for error code {code!r}")

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def get(self, tool: str) -> Operation | None:
        return self._by_tool.get(tool)

    def __getitem__(self, tool: str) -> Operation:
        return self._by_tool[tool]

    @property
    def toolsets(self) -> tuple[str, ...]:
        return tuple(sorted({op.toolset for op in self._ops}))

    def current(self) -> tuple[Operation, ...]:
        """Operations that are not deprecated (the default tool list)."""
        return tuple(op for op in self._ops if not op.deprecated)

    @functools.cached_property
    def _listers(self) -> dict[tuple[str, str], Operation]:
        listers: dict[tuple[str, str], Operation] = {}
        for op in self._ops:
            if op.method == "GET" and op.paging_parameter is not None:
                listers[(op.family.name, op.path.rstrip("/"))] = op
        return listers

    @functools.cached_property
    def _id_listers(self) -> dict[str, Operation]:
        """Ids whose valid values a list operation of another family yields (`x-mcp.lists`, e.g. iTwinId)."""
        return {name: op for op in self._ops if op.overlay for name in op.overlay.lists}

    def error_hint(self, code: str) -> str | None:
        """The next step declared for an API error code (`x-mcp.errorHints` of the operation that returns it)."""
        return self._hints.get(code)

    def lister_for_id(self, name: str) -> Operation | None:
        """The list operation for an id named like `mappingId` or `aggregationTableSetId` (for error hints)."""
        if name in self._id_listers:
            return self._id_listers[name]
        stem = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Id")).lower()
        return self.get(f"list_{stem}s") or self.get(f"list_{stem}")

    def lister_for(self, op: Operation, param: str) -> Operation | None:
        """The list operation that yields valid values of path parameter `param` of `op` (for error hints)."""
        if param in self._id_listers:
            return self._id_listers[param]
        marker = "{" + param + "}"
        if marker not in op.path:
            return None
        collection = op.path.split(marker)[0].rstrip("/")
        return self._listers.get((op.family.name, collection))


def _drop_sandbox_rules(node: Any) -> None:
    """Remove `x-sandbox-pattern` everywhere below `node`: tools get only the portable `pattern`.

    The sandbox validates against the documents themselves, so it keeps the exact (Unicode class) rule.
    """
    if isinstance(node, dict):
        node.pop(SANDBOX_PATTERN, None)
        for value in node.values():
            _drop_sandbox_rules(value)
    elif isinstance(node, list):
        for item in node:
            _drop_sandbox_rules(item)


def _lenient(schema: JsonSchema, *, root: bool = False) -> JsonSchema:
    """Loosen and shrink a response schema: it describes replies, it must never reject a real one.

    Nested `required`, formats, patterns, enums, length limits and descriptions are dropped, scalars may be null,
    and `_links` is just an object: the shape stays visible to the agent at a fraction of the context cost.
    The root keeps its description and its wrapper-key requirement.
    """
    for key in (
        "format",
        "pattern",
        SANDBOX_PATTERN,
        "maxLength",
        "minLength",
        "minimum",
        "maximum",
        "enum",
        "example",
        "examples",
        "default",
        "title",
    ):
        schema.pop(key, None)
    if not root:
        schema.pop("required", None)
        schema.pop("description", None)
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "null" and not (root and kind == "object"):
        schema["type"] = [kind, "null"]
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if name == "_links":
            properties[name] = {"type": "object"}
        else:
            _lenient(sub)
    if isinstance(schema.get("items"), dict):
        _lenient(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        _lenient(schema["additionalProperties"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combinator, []):
            _lenient(sub)
    return schema


class _Resolver:
    """Inlines local `#/components/...` references (the specs have no recursive schemas)."""

    def __init__(self, document: Mapping[str, Any], source: str) -> None:
        self._doc = document
        self._source = source

    def resolve(self, node: Any, depth: int = 0) -> Any:
        if depth > 32:
            raise CatalogError(f"{self._source}: reference chain too deep (recursive schema?)")
        if isinstance(node, dict):
            if "$ref" in node:
                target = copy.deepcopy(self._lookup(node["$ref"]))
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                resolved = self.resolve(target, depth + 1)
                if siblings and isinstance(resolved, dict):
                    resolved.update(self.resolve(siblings, depth + 1))
                return resolved
            return {k: self.resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(item, depth) for item in node]
        return node

    def _lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise CatalogError(f"{self._source}: only local references are supported, got {ref!r}")
        node: Any = self._doc
        for part in ref[2:].split("/"):
            if not isinstance(node, dict) or part not in node:
                raise CatalogError(f"{self._source}: unresolved reference {ref!r}")
            node = node[part]
        return node


def _resolve_document(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The document reduced to what the catalog reads: its info and each operation with every $ref inlined."""
    resolver = _Resolver(document, source)
    operations = [
        [path, method, resolver.resolve(item[method.lower()])]
        for path, item in document.get("paths", {}).items()
        for method in _METHODS
        if item.get(method.lower()) is not None
    ]
    return {"info": document.get("info", {}), "security": document.get("security", []), "operations": operations}


def _operations(resolved: Mapping[str, Any], source: str) -> list[Operation]:
    info = resolved["info"]
    fam = info.get("x-family") or {}
    family = Family(
        name=str(fam["name"]),
        title=str(info.get("title", fam["name"])),
        base_path=str(fam["basePath"]),
        accept=str(fam["accept"]),
        status=str(fam.get("status", "GA")),
    )
    security = resolved.get("security", [])
    return [
        _parse_operation(raw, method, path, family, source, security) for path, method, raw in resolved["operations"]
    ]


def _parse_document(document: Mapping[str, Any], source: str) -> list[Operation]:
    return _operations(_resolve_document(document, source), source)


def _parse_operation(
    raw: Mapping[str, Any], method: Method, path: str, family: Family, source: str, security: Any = ()
) -> Operation:
    where = f"{source} {method} {path}"
    overlay = parse_overlay(raw.get("x-mcp"), where)
    if overlay.read_only is not None or overlay.also_in:
        raise CatalogError(f"{where}: readOnly and alsoIn are for local tools; an operation's come from its method")

    parameters = tuple(_parse_parameter(p, where) for p in raw.get("parameters", []))
    body_schema: JsonSchema | None = None
    body_required = False
    if "requestBody" in raw:
        body = raw["requestBody"]
        body_schema = body["content"]["application/json"]["schema"]
        body_required = bool(body.get("required", False))

    success_status, content_type, response_schema = _success_response(raw.get("responses", {}), where)
    op = Operation(
        operation_id=str(raw["operationId"]),
        tool=overlay.tool,
        toolset=overlay.toolset,
        description=overlay.description,
        title=str(raw.get("summary", overlay.tool)),
        method=method,
        path=path,
        family=family,
        parameters=parameters,
        body_schema=body_schema,
        body_required=body_required,
        response_schema=response_schema,
        response_content_type=content_type,
        success_status=success_status,
        deprecated=bool(raw.get("deprecated", False)),
        error_codes=tuple(str(c) for c in raw.get("x-error-codes", [])),
        status=str(raw.get("x-lifecycle", family.status)),
        overlay=overlay,
        auth_schemes=tuple(name for scheme in raw.get("security", security) or () for name in scheme),
    )
    args = [p.arg for p in parameters] + list(op.body_fields)
    clashes = {a for a in args if args.count(a) > 1}
    if clashes:
        raise CatalogError(f"{where}: argument names collide: {sorted(clashes)}")
    return op


def _parse_parameter(raw: Mapping[str, Any], where: str) -> Parameter:
    location = raw.get("in")
    if location not in ("path", "query", "header"):
        raise CatalogError(f"{where}: unsupported parameter location {location!r}")
    name = str(raw["name"])
    schema = dict(raw.get("schema", {"type": "string"}))
    if "description" in raw and "description" not in schema:
        schema["description"] = raw["description"]
    return Parameter(
        name=name,
        arg=name.lstrip("$"),
        location=location,
        required=bool(raw.get("required", location == "path")),
        schema=schema,
    )


def _success_response(responses: Mapping[str, Any], where: str) -> tuple[int, str | None, JsonSchema | None]:
    for status in ("200", "201", "202", "204"):
        if status not in responses:
            continue
        content = responses[status].get("content") or {}
        if not content:
            return int(status), None, None
        for content_type in ("application/json", "application/xml"):
            if content_type in content:
                return int(status), content_type, content[content_type].get("schema")
        first = next(iter(content))
        return int(status), first, content[first].get("schema")
    raise CatalogError(f"{where}: no success response")


def _load_document(name: str) -> Any:
    text = resources.files("itwin_insights_mcp.api").joinpath("specs", name).read_text(encoding="utf-8")
    import yaml  # only when the cached, resolved catalog is missing or stale (~16 ms of start-up otherwise)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, chosen for speed


def _resolved(name: str) -> dict[str, Any]:
    """A spec, parsed and resolved, from a JSON cache keyed by the YAML's hash (YAML parsing costs ~90 ms a start).

    The cache lives in the user cache dir; a missing, stale or unwritable cache only costs the slow path.
    """
    raw = resources.files("itwin_insights_mcp.api").joinpath("specs", name).read_bytes()
    key = hashlib.sha256(raw + f"format {CACHE_FORMAT}".encode()).hexdigest()[:20]
    cache = Path(user_cache_dir("itwin-insights-mcp", appauthor=False)) / "catalog" / f"{name}.{key}.json"
    try:
        cached: dict[str, Any] = json.loads(cache.read_text(encoding="utf-8"))
        return cached
    except (OSError, ValueError):
        pass
    resolved = _resolve_document(_load_document(name), name)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temp = cache.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps(resolved), encoding="utf-8")
        os.replace(temp, cache)
    except OSError:
        pass
    return resolved


@functools.cache
def load_catalog() -> Catalog:
    """Parse the packaged spec documents once per process."""
    operations: list[Operation] = []
    for name in SPEC_FILES:
        operations.extend(_operations(_resolved(name), name))
    return Catalog(operations)
