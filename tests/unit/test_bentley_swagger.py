"""The catalog's Reporting v1 document against Bentley's own Swagger, operation by operation.

`tests/data/bentley/reporting-v1.swagger.json` is Bentley's published definition (2022, 41 operations; see SOURCE.md).
For each of its operations the catalog must have the same path (trailing slash included) and method, the same path
and query parameters (name, location, required, type), a body exactly where the Swagger has one with the same field
names and at least its required fields, the same status codes, and the same response wrapper and entity fields.
Every intended difference is listed below with the reason; anything else fails.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

SWAGGER_PATH = Path(__file__).resolve().parents[1] / "data" / "bentley" / "reporting-v1.swagger.json"

# -- intended differences ------------------------------------------------------------------------------------------

# Operations Bentley added after the 2022 Swagger: documented on the developer portal and in later client versions.
LATER_OPERATIONS = frozenset(
    {
        "get-extraction-history",  # portal "Get Extraction History"; client getExtractionHistory
        # Report aggregations and aggregations: Technical Preview since 2023 (portal changelog; client 0.6+).
        "get-report-aggregations",
        "create-report-aggregation",
        "get-report-aggregation",
        "delete-report-aggregation",
        "get-aggregationtablesets",
        "create-aggregationtableset",
        "get-aggregationtableset",
        "update-aggregationtableset",
        "delete-aggregationtableset",
        "get-aggregationtables",
        "create-aggregationtable",
        "get-aggregationtable",
        "update-aggregationtable",
        "delete-aggregationtable",
        "get-aggregationproperties",
        "create-aggregationproperty",
        "get-aggregationproperty",
        "update-aggregationproperty",
        "delete-aggregationproperty",
    }
)

# Header parameters of every Swagger operation: InsightsClient sets both on each request; they are never tool inputs.
CLIENT_HEADERS = frozenset({"Authorization", "Accept"})

# Parameters the catalog adds.
EXTRA_PARAMETERS = {
    # Entity pages continue with `?sequence=N`, the form of the feed's own @odata.nextLink (portal OData page).
    ("odata-entity", "sequence"),
}

# Request bodies the catalog adds: run-extraction takes an optional body since 2023 (client 0.5.3; portal).
EXTRA_BODIES = {"run-extraction"}

# Body fields the Swagger leaves optional (its 2022 definitions mark few fields required) but the official client
# requires (reference §4.2-4.8, fields marked *): sending without them is refused before any request goes out.
CLIENT_REQUIRED = {
    "create-group": {"groupName", "query"},
    "create-groupproperty": {"propertyName", "dataType", "ecProperties"},
    "update-groupproperty": {"propertyName", "dataType", "ecProperties"},  # PUT: a full replacement
    "create-report": {"displayName", "projectId"},
    "create-report-mapping": {"mappingId", "imodelId"},
}

# Status codes the catalog adds, each because the sandbox really returns it.
EXTRA_STATUSES = {
    # 422 for a bad body (unknown changesetId, malformed fields); the body itself postdates the Swagger.
    ("run-extraction", "422"),
}

# Response wrapper keys where the Swagger's schema disagrees with its own examples and with the official client; the
# examples and the client describe what the service returns (reference/bentley/README.md), so the catalog follows them.
RESPONSE_WRAPPERS = {
    "get-groupproperty": {"groupProperty": "property"},
    "create-groupproperty": {"groupProperty": "property"},
    "update-groupproperty": {"groupProperty": "property"},
    "get-groupproperties": {"groupProperties": "properties"},
    "get-extraction-logs": {"extractionLog": "logs"},
}

# Operations whose Swagger response schema is a placeholder unlike its own example (`{"status": ...}` for the OData
# service document, nothing for an entity page); the catalog describes the example's shape.
PLACEHOLDER_RESPONSES = {"odata", "odata-entity"}

# Entity fields the catalog adds, returned by the service since 2022 (later client types and portal examples).
EXTRA_ENTITY_FIELDS = {
    "report": {"createdOn", "modifiedOn"},
    "reports": {"createdOn", "modifiedOn"},
    "customCalculation": {"dataType"},
    "customCalculations": {"dataType"},
    "status": {"containsIssues", "_links"},
    "run": {"_links"},
}

# -- loading -------------------------------------------------------------------------------------------------------


def _resolve(node: Any, root: Any) -> Any:
    """Inline local `$ref`s (both documents are acyclic); siblings of a `$ref` override the target's keys."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            resolved = _resolve(target, root)
            siblings = {k: _resolve(v, root) for k, v in node.items() if k != "$ref"}
            return {**resolved, **siblings} if siblings else resolved
        return {k: _resolve(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(item, root) for item in node]
    return node


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    resolved = _resolve(document, document)
    return {
        op["operationId"]: (path, method, op)
        for path, item in resolved["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


SWAGGER = _operations(json.loads(SWAGGER_PATH.read_text(encoding="utf-8")))
CATALOG_TEXT = resources.files("itwin_insights_mcp.api").joinpath("specs", "reporting-v1.yaml").read_text("utf-8")
CATALOG = _operations(yaml.safe_load(CATALOG_TEXT))


def _swagger_parameters(op: dict[str, Any]) -> set[tuple[str, str, bool, str | None]]:
    return {
        (p["name"], p["in"], bool(p.get("required", False)), p.get("type"))
        for p in op.get("parameters", [])
        if p["in"] in ("path", "query")
    }


def _catalog_parameters(op: dict[str, Any]) -> set[tuple[str, str, bool, str | None]]:
    return {
        (p["name"], p["in"], bool(p.get("required", p["in"] == "path")), p.get("schema", {}).get("type"))
        for p in op.get("parameters", [])
    }


def _swagger_body(op: dict[str, Any]) -> dict[str, Any] | None:
    bodies = [p for p in op.get("parameters", []) if p["in"] == "body"]
    return bodies[0] if bodies else None


def _catalog_body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    body = op.get("requestBody")
    return None if body is None else dict(body["content"]["application/json"]["schema"])


def _success_schema_swagger(op: dict[str, Any]) -> dict[str, Any]:
    return dict(op["responses"].get("200", {}).get("schema", {}))


def _success_schema_catalog(op: dict[str, Any]) -> dict[str, Any]:
    return dict(op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {}))


def _entity_fields(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Wrapper key -> the field names of the entity it holds (the items' fields for a list)."""
    fields: dict[str, set[str]] = {}
    for key, sub in schema.get("properties", {}).items():
        item = sub.get("items", {}) if sub.get("type") == "array" else sub
        if key != "_links" and "properties" in item:
            fields[key] = set(item["properties"])
    return fields


# -- the diff ------------------------------------------------------------------------------------------------------


def test_the_checked_in_swagger_is_bentleys_41_operations() -> None:
    assert len(SWAGGER) == 41
    assert SWAGGER["create-report"][:2] == ("/reports/", "post")


def test_every_operation_is_in_one_document_or_explained() -> None:
    assert set(SWAGGER) - set(CATALOG) == set(), "Swagger operations missing from the catalog"
    assert set(CATALOG) - set(SWAGGER) == LATER_OPERATIONS, "catalog operations neither in the Swagger nor explained"


@pytest.mark.parametrize("operation_id", sorted(SWAGGER))
def test_path_and_method(operation_id: str) -> None:
    assert CATALOG[operation_id][:2] == SWAGGER[operation_id][:2]


@pytest.mark.parametrize("operation_id", sorted(SWAGGER))
def test_parameters(operation_id: str) -> None:
    swagger, catalog = SWAGGER[operation_id][2], CATALOG[operation_id][2]
    headers = {p["name"] for p in swagger.get("parameters", []) if p["in"] == "header"}
    assert headers == CLIENT_HEADERS
    expected = _swagger_parameters(swagger)
    actual = {p for p in _catalog_parameters(catalog) if (operation_id, p[0]) not in EXTRA_PARAMETERS}
    assert actual == expected


@pytest.mark.parametrize("operation_id", sorted(SWAGGER))
def test_request_body_fields_and_required_fields(operation_id: str) -> None:
    swagger, catalog = SWAGGER[operation_id][2], CATALOG[operation_id][2]
    body = _swagger_body(swagger)
    schema = _catalog_body_schema(catalog)
    if body is None:
        assert schema is None or operation_id in EXTRA_BODIES
        return
    assert schema is not None, "the Swagger has a body here"
    assert set(schema.get("properties", {})) == set(body["schema"].get("properties", {}))
    documented = set(body["schema"].get("required", []))
    required = set(schema.get("required", []))
    assert required == documented | CLIENT_REQUIRED.get(operation_id, set())
    if catalog["requestBody"].get("required", False) != bool(body.get("required", False)):
        # Swagger 2.0 leaves body parameters optional; the catalog requires a body exactly where it cannot be empty.
        assert catalog["requestBody"]["required"] is True
        assert required or schema.get("minProperties", 0) >= 1, "a required body needs required fields or minProperties"


@pytest.mark.parametrize("operation_id", sorted(SWAGGER))
def test_status_codes(operation_id: str) -> None:
    swagger, catalog = SWAGGER[operation_id][2], CATALOG[operation_id][2]
    extra = {status for op, status in EXTRA_STATUSES if op == operation_id}
    assert set(catalog["responses"]) == set(swagger["responses"]) | extra


@pytest.mark.parametrize("operation_id", sorted(set(SWAGGER) - PLACEHOLDER_RESPONSES))
def test_response_wrapper_and_entity_fields(operation_id: str) -> None:
    swagger = _success_schema_swagger(SWAGGER[operation_id][2])
    catalog = _success_schema_catalog(CATALOG[operation_id][2])
    renames = RESPONSE_WRAPPERS.get(operation_id, {})
    expected = {renames.get(key, key) for key in swagger.get("properties", {})}
    assert set(catalog.get("properties", {})) == expected
    catalog_fields = _entity_fields(catalog)
    for key, fields in _entity_fields(swagger).items():
        ours = catalog_fields[renames.get(key, key)]
        assert fields <= ours, f"{key}: fields missing from the catalog: {sorted(fields - ours)}"
        assert ours - fields <= EXTRA_ENTITY_FIELDS.get(key, set()), f"{key}: unexplained fields {ours - fields}"


def test_placeholder_responses_follow_the_swaggers_examples() -> None:
    example = json.loads(SWAGGER["odata"][2]["responses"]["200"]["examples"]["application/json"])
    catalog = _success_schema_catalog(CATALOG["odata"][2])
    assert set(example) == set(catalog["properties"])
    assert set(example["value"][0]) == set(catalog["properties"]["value"]["items"]["properties"])


def test_allowlists_name_real_operations() -> None:
    """An allowlist entry for an operation that does not exist would silently excuse nothing: keep them honest."""
    named = (
        set(CLIENT_REQUIRED)
        | set(RESPONSE_WRAPPERS)
        | PLACEHOLDER_RESPONSES
        | EXTRA_BODIES
        | {op for op, _ in EXTRA_PARAMETERS}
        | {op for op, _ in EXTRA_STATUSES}
    )
    assert named <= set(SWAGGER)
