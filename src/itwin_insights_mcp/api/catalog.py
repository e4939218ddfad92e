"""Operation records from the OpenAPI documents in `specs/`: the single source of truth.

Tools, the sandbox's routes and request validation are all derived from these records; nothing else reads the YAML.
Invariants checked at load: every operation has an `x-mcp` overlay, tool names are unique and well-formed, and a
tool's flattened arguments (path + query + body fields) never collide.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_cache_dir

__all__ = [
    "SANDBOX_PATTERN",
    "TOOL_NAME_PATTERN",
    "Catalog",
    "Family",
    "Operation",
    "Parameter",
    "load_catalog",
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
    "imodel-query-v1.yaml",
)
_METHODS: tuple[Method, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Paging query names and the tool argument that carries each (API spelling minus the `$`).
PAGING_TOKENS = ("$continuationToken", "$skip")


# Ids that come from the iTwins/iModels APIs rather than from a sibling collection of the same family.
_CONTEXT_LISTERS = {
    "imodelId": "list_imodels",
    "iModelId": "list_imodels",
    "projectId": "list_itwins",
    "iTwinId": "list_itwins",
    "targetIModelId": "list_imodels",
}


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

    def lister_for_id(self, name: str) -> Operation | None:
        """The list operation for an id named like `mappingId` or `aggregationTableSetId` (for error hints)."""
        if name in _CONTEXT_LISTERS:
            return self.get(_CONTEXT_LISTERS[name])
        stem = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Id")).lower()
        return self.get(f"list_{stem}s") or self.get(f"list_{stem}")

    def lister_for(self, op: Operation, param: str) -> Operation | None:
        """The list operation that yields valid values of path parameter `param` of `op` (for error hints)."""
        if param in _CONTEXT_LISTERS:
            return self.get(_CONTEXT_LISTERS[param])
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
    return {"info": document.get("info", {}), "operations": operations}


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
    return [_parse_operation(raw, method, path, family, source) for path, method, raw in resolved["operations"]]


def _parse_document(document: Mapping[str, Any], source: str) -> list[Operation]:
    return _operations(_resolve_document(document, source), source)


def _parse_operation(raw: Mapping[str, Any], method: Method, path: str, family: Family, source: str) -> Operation:
    where = f"{source} {method} {path}"
    overlay = raw.get("x-mcp")
    if not isinstance(overlay, dict) or not {"tool", "toolset", "description"} <= overlay.keys():
        raise CatalogError(f"{where}: missing x-mcp overlay with tool, toolset and description")
    tool = str(overlay["tool"])
    if not TOOL_NAME_PATTERN.match(tool):
        raise CatalogError(f"{where}: tool name {tool!r} breaks {TOOL_NAME_PATTERN.pattern}")

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
        tool=tool,
        toolset=str(overlay["toolset"]),
        description=str(overlay["description"]).strip(),
        title=str(raw.get("summary", tool)),
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
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, chosen for speed


def _resolved(name: str) -> dict[str, Any]:
    """A spec, parsed and resolved, from a JSON cache keyed by the YAML's hash (YAML parsing costs ~90 ms a start).

    The cache lives in the user cache dir; a missing, stale or unwritable cache only costs the slow path.
    """
    raw = resources.files("itwin_insights_mcp.api").joinpath("specs", name).read_bytes()
    key = hashlib.sha256(raw).hexdigest()[:20]
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
