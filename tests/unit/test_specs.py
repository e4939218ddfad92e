"""Structural checks of the OpenAPI catalog documents in src/itwin_insights_mcp/api/specs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

SPEC_DIR = Path(__file__).resolve().parents[2] / "src" / "itwin_insights_mcp" / "api" / "specs"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TOOL_RE = re.compile(r"^[a-z0-9_]{1,64}$")
REF_RE = re.compile(
    r"^#/components/(schemas|parameters|responses|requestBodies|headers|securitySchemes)/[A-Za-z0-9_.-]+$"
)

FAMILIES = {
    "reporting-v1.yaml": {
        "name": "reporting-v1",
        "basePath": "/insights/reporting",
        "accept": "application/vnd.bentley.itwin-platform.v1+json",
        "server": "https://api.bentley.com/insights/reporting",
        "ops": 61,
    },
    "itwins-v1.yaml": {
        "name": "itwins-v1",
        "basePath": "/itwins",
        "accept": "application/vnd.bentley.itwin-platform.v1+json",
        "server": "https://api.bentley.com/itwins",
        "ops": 2,
    },
    "imodels-v2.yaml": {
        "name": "imodels-v2",
        "basePath": "/imodels",
        "accept": "application/vnd.bentley.itwin-platform.v2+json",
        "server": "https://api.bentley.com/imodels",
        "ops": 3,
    },
}

EXPECTED_TOOLSETS = {
    "mappings": {
        "list_mappings",
        "get_mapping",
        "create_mapping",
        "update_mapping",
        "delete_mapping",
        "copy_mapping",
        "list_groups",
        "get_group",
        "create_group",
        "update_group",
        "delete_group",
    },
    "properties": {
        "list_group_properties",
        "get_group_property",
        "create_group_property",
        "update_group_property",
        "delete_group_property",
        "list_calculated_properties",
        "get_calculated_property",
        "create_calculated_property",
        "update_calculated_property",
        "delete_calculated_property",
        "list_custom_calculations",
        "get_custom_calculation",
        "create_custom_calculation",
        "update_custom_calculation",
        "delete_custom_calculation",
    },
    "extraction": {
        "run_extraction",
        "get_extraction_status",
        "list_extraction_logs",
        "list_extraction_history",
        "get_imodel_extraction_status",
    },
    "reports": {
        "list_reports",
        "get_report",
        "create_report",
        "update_report",
        "delete_report",
        "list_report_mappings",
        "create_report_mapping",
        "delete_report_mapping",
        "list_report_aggregations",
        "get_report_aggregation",
        "create_report_aggregation",
        "delete_report_aggregation",
    },
    "aggregations": {
        "list_aggregation_table_sets",
        "get_aggregation_table_set",
        "create_aggregation_table_set",
        "update_aggregation_table_set",
        "delete_aggregation_table_set",
        "list_aggregation_tables",
        "get_aggregation_table",
        "create_aggregation_table",
        "update_aggregation_table",
        "delete_aggregation_table",
        "list_aggregation_properties",
        "get_aggregation_property",
        "create_aggregation_property",
        "update_aggregation_property",
        "delete_aggregation_property",
    },
    "odata": {"get_odata_service", "get_odata_metadata", "get_odata_entity_page"},
    "context": {"list_itwins", "get_itwin", "list_imodels", "get_imodel", "list_changesets"},
}

# path parameter names allowed by the catalog conventions
PATH_PARAM_NAMES = {
    "imodelId",
    "mappingId",
    "groupId",
    "propertyId",
    "customCalculationId",
    "jobId",
    "reportId",
    "aggregationTableSetId",
    "aggregationTableId",
    "aggregationPropertyId",
    "region",
    "manifestId",
    "entityType",
    "iTwinId",
    "iModelId",
}


def _load(name: str) -> dict[str, Any]:
    with open(SPEC_DIR / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


SPECS = {name: _load(name) for name in FAMILIES}


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert REF_RE.match(ref), f"non-local or malformed $ref {ref!r}"
        _, _, section, name = ref.split("/")
        node = doc["components"][section][name]
        seen += 1
        assert seen < 10, f"$ref chain too long at {ref}"
    return node


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _params(doc: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(doc, p) for p in op.get("parameters", [])]


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{where}[{i}]")


def _all_ops() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(name, path, method, op) for name, doc in SPECS.items() for path, method, op in _operations(doc)]


ALL_OPS = _all_ops()
OP_IDS = [f"{n.split('.')[0]}:{m.upper()} {p}" for n, p, m, _ in ALL_OPS]


# ---------------------------------------------------------------------------------------------- documents


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_header_and_family(name: str) -> None:
    doc, exp = SPECS[name], FAMILIES[name]
    assert doc["openapi"] == "3.1.0"
    info = doc["info"]
    assert info["title"] and info["version"] and info["description"]
    fam = info["x-family"]
    assert fam["name"] == exp["name"]
    assert fam["basePath"] == exp["basePath"]
    assert fam["accept"] == exp["accept"]
    assert fam["status"] == "GA"
    assert doc["servers"][0]["url"] == exp["server"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_operation_count(name: str) -> None:
    ops = list(_operations(SPECS[name]))
    assert len(ops) == FAMILIES[name]["ops"]
    deprecated = [op for _, _, op in ops if op.get("deprecated")]
    if name == "reporting-v1.yaml":
        assert len(deprecated) == 1
        assert deprecated[0]["operationId"] == "get-extraction-status-deprecated"
        assert deprecated[0]["x-mcp"]["tool"] == "get_imodel_extraction_status"
        assert len(ops) - len(deprecated) == 60
    else:
        assert deprecated == []


# Bentley's Swagger and both official client versions send create-report as `POST /reports/`.
DOCUMENTED_TRAILING_SLASH = {("reporting-v1.yaml", "/reports/")}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_no_path_level_parameters(name: str) -> None:
    for path, item in SPECS[name]["paths"].items():
        assert "parameters" not in item, path
        assert path.startswith("/"), path
        if (name, path) not in DOCUMENTED_TRAILING_SLASH:
            assert not (path.endswith("/") and path != "/"), f"trailing slash in {path}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_ref_resolves(name: str) -> None:
    doc = SPECS[name]
    refs = [(w, n["$ref"]) for w, n in _walk(doc) if isinstance(n, dict) and "$ref" in n]
    assert refs
    for where, ref in refs:
        assert REF_RE.match(ref), f"{where}: {ref}"
        _, _, section, comp = ref.split("/")
        assert comp in doc["components"].get(section, {}), f"{where}: unresolved {ref}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_components_are_used(name: str) -> None:
    doc = SPECS[name]
    used = {n["$ref"] for _, n in _walk(doc) if isinstance(n, dict) and "$ref" in n}
    for section in ("schemas", "parameters", "responses"):
        for comp in doc["components"].get(section, {}):
            assert f"#/components/{section}/{comp}" in used, f"unused {section}/{comp}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_schemas_have_descriptions_and_properties(name: str) -> None:
    doc = SPECS[name]
    for sname, schema in doc["components"]["schemas"].items():
        for where, node in _walk(schema, sname):
            if not isinstance(node, dict) or "$ref" in node:
                continue
            if where.endswith("/properties") or where.endswith("/example"):
                continue  # name -> schema map, not a schema
            if "type" in node or "enum" in node or "properties" in node:
                assert node.get("description"), f"{name}: no description at {where}"
                assert "\n" not in node["description"], f"{name}: multi-line description at {where}"
            types = node.get("type")
            types = types if isinstance(types, list) else [types]
            if "object" in types:
                assert node.get("properties") or node.get("additionalProperties"), f"{name}: empty object {where}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_parameters_well_formed(name: str) -> None:
    doc = SPECS[name]
    for pname, p in doc["components"]["parameters"].items():
        assert p["in"] in ("path", "query", "header"), pname
        assert p["in"] != "header" or pname == "Prefer", pname  # Accept and Authorization are the client's
        assert p.get("description"), pname
        assert "schema" in p, pname
        if p["in"] == "path":
            assert p["required"] is True and p["schema"]["type"] == "string", pname
            assert p["name"] in PATH_PARAM_NAMES, pname
        if p["name"] == "$top":
            assert p["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000} or (
                p["schema"]["minimum"] == 1 and p["schema"]["maximum"] == 1000
            )
        if p["name"] == "$continuationToken":
            assert p["schema"]["type"] == "string"


# ---------------------------------------------------------------------------------------------- operations


@pytest.mark.parametrize(("name", "path", "method", "op"), ALL_OPS, ids=OP_IDS)
def test_operation_shape(name: str, path: str, method: str, op: dict[str, Any]) -> None:
    doc = SPECS[name]
    assert op.get("operationId") and re.match(r"^[a-z0-9-]+$", op["operationId"])
    assert op.get("summary")
    assert op.get("tags")
    mcp = op["x-mcp"]
    assert set(mcp) >= {"tool", "toolset", "description"}
    assert TOOL_RE.match(mcp["tool"])
    assert mcp["tool"] in EXPECTED_TOOLSETS[mcp["toolset"]], f"{mcp['tool']} not in toolset {mcp['toolset']}"
    desc = mcp["description"]
    assert 0 < len(desc) <= 110 and "\n" not in desc and desc[0].isupper(), desc

    # parameters: only at operation level; path template <-> declared path params
    params = _params(doc, op)
    declared_path = {p["name"] for p in params if p["in"] == "path"}
    assert declared_path == set(re.findall(r"{([^}]+)}", path))
    names = [(p["name"], p["in"]) for p in params]
    assert len(names) == len(set(names)), "duplicate parameter"

    # request body
    if "requestBody" in op:
        assert method in ("post", "put", "patch")
        rb = op["requestBody"]
        assert isinstance(rb["required"], bool)
        body = _resolve(doc, rb["content"]["application/json"]["schema"])
        assert body["type"] == "object" and body["properties"]
        assert "additionalProperties" not in body
        assert not set(body["properties"]) & {p["name"] for p in params}, "body field collides with a parameter"
        for field in body.get("required", []):
            assert field in body["properties"]
        if method == "patch":
            assert body.get("minProperties") == 1
    elif method in ("put", "patch"):
        pytest.fail("write without body")

    # responses
    responses = op["responses"]
    if method == "delete":
        assert responses["204"] == {"description": "No Content"}
        assert "200" not in responses
    else:
        ok = responses["200"]
        assert ok.get("description")
        content = ok["content"]
        if op["operationId"] == "odata-metadata":
            assert list(content) == ["application/xml"]
            assert content["application/xml"]["schema"]["type"] == "string"
        else:
            assert list(content) == ["application/json"]
            schema = _resolve(doc, content["application/json"]["schema"])
            assert schema["type"] == "object" and schema["properties"], "empty 200 schema"
            for key in schema.get("required", []):
                assert key in schema["properties"]
    assert responses["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert responses["429"] == {"$ref": "#/components/responses/TooManyRequests"}
    for code, ref in responses.items():
        if code not in ("200", "204"):
            assert "$ref" in ref, f"inline error response {code}"
    if method in ("post", "put", "patch", "delete"):
        assert "403" in responses
    if "404" in responses:
        assert op.get("x-error-codes"), "404 without x-error-codes"
    if mcp["tool"].startswith("list_") or method in ("post", "put", "patch"):
        assert "422" in responses


def test_tool_names_unique_and_complete() -> None:
    tools = [op["x-mcp"]["tool"] for _, _, _, op in ALL_OPS]
    assert len(tools) == len(set(tools))
    assert set(tools) == set().union(*EXPECTED_TOOLSETS.values())
    by_set: dict[str, set[str]] = {}
    for _, _, _, op in ALL_OPS:
        by_set.setdefault(op["x-mcp"]["toolset"], set()).add(op["x-mcp"]["tool"])
    assert by_set == EXPECTED_TOOLSETS


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_operation_ids_unique(name: str) -> None:
    ids = [op["operationId"] for _, _, op in _operations(SPECS[name])]
    assert len(ids) == len(set(ids))


def test_paged_lists_have_paging_parameters() -> None:
    for name, _path, _method, op in ALL_OPS:
        tool = op["x-mcp"]["tool"]
        if not tool.startswith("list_"):
            continue
        qnames = {p["name"] for p in _params(SPECS[name], op) if p["in"] == "query"}
        assert "$top" in qnames, tool
        if tool != "list_itwins":
            assert "$continuationToken" in qnames, tool


def test_reporting_specific_facts() -> None:
    doc = SPECS["reporting-v1.yaml"]
    by_id = {op["operationId"]: (path, method, op) for path, method, op in _operations(doc)}
    assert by_id["create-report"][:2] == ("/reports/", "post")  # trailing slash as in the Swagger
    assert by_id["update-groupproperty"][1] == "put"
    assert by_id["get-report-mappings"][0] == "/reports/{reportId}/datasources/imodelMappings"
    assert by_id["run-extraction"][2]["requestBody"]["required"] is False

    reports = {p["name"]: p for p in _params(doc, by_id["get-project-reports"][2])}
    assert reports["projectId"]["required"] is True and reports["deleted"]["schema"]["type"] == "boolean"
    sets = {p["name"]: p for p in _params(doc, by_id["get-aggregationtablesets"][2])}
    assert sets["datasourceId"]["required"] and sets["datasourceType"]["required"]
    assert sets["datasourceType"]["schema"]["enum"] == ["IModelMapping"]
    entity = {p["name"]: p for p in _params(doc, by_id["odata-entity"][2])}
    assert entity["sequence"]["schema"] == {"type": "integer", "minimum": 0}

    schemas = doc["components"]["schemas"]
    assert schemas["MappingCreate"]["properties"]["extractionEnabled"]["default"] is True
    assert "Undefined" not in schemas["DataType"]["enum"]
    assert schemas["GroupPropertyInput"]["properties"]["ecProperties"]["minItems"] == 1
    assert len(schemas["CalculatedPropertyType"]["enum"]) == 10
    assert schemas["AggregationPropertyType"]["enum"] == ["GroupBy", "Count", "Sum"]
    ident = schemas["SimpleIdentifier"]
    assert ident["maxLength"] == 128 and ident["x-sandbox-pattern"].startswith(r"^[\p{L}\p{Nl}_]")
    assert ident["pattern"].startswith(r"^[^\x00-\x40")  # portable; see test_schema_patterns.py
    # wrapper keys
    wrappers = {
        "MappingSingle": "mapping",
        "GroupSingle": "group",
        "GroupPropertySingle": "property",
        "CalculatedPropertySingle": "property",
        "CustomCalculationSingle": "customCalculation",
        "ReportSingle": "report",
        "ReportMappingSingle": "mapping",
        "ReportAggregationSingle": "aggregation",
        "AggregationTableSetSingle": "aggregationTableSet",
        "AggregationTableSingle": "aggregationTable",
        "AggregationPropertySingle": "aggregationProperty",
        "ExtractionRunSingle": "run",
        "ExtractionStatusSingle": "status",
        "ExtractionLogCollection": "logs",
        "ExtractionHistoryCollection": "extractions",
        "ReportMappingCollection": "mappings",
    }
    for sname, key in wrappers.items():
        assert key in schemas[sname]["required"], sname


def test_simple_identifier_pattern_semantics() -> None:
    regex = pytest.importorskip("regex")  # stdlib re has no \p{..}
    pattern = regex.compile(SPECS["reporting-v1.yaml"]["components"]["schemas"]["SimpleIdentifier"]["pattern"])
    for ok in ("Walls", "_x", "Wände_2", "a1"):
        assert pattern.match(ok), ok
    for bad in ("", "1abc", "a-b", "a b", "a.b"):
        assert not pattern.match(bad), bad


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_openapi_spec_validator(name: str) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    schema_validator = pytest.importorskip("openapi_schema_validator")
    checker = schema_validator.oas31_format_checker
    original = checker.checkers["regex"]

    def ecma_regex(instance: object) -> bool:
        # JSON Schema patterns are ECMA-262 with Unicode property escapes; Python's re lacks \p{..}.
        if isinstance(instance, str):
            re.compile(re.sub(r"\\p\{[A-Za-z_]+\}", "a", instance))
        return True

    checker.checkers["regex"] = (ecma_regex, (re.error,))
    try:
        validator.validate(SPECS[name])
    finally:
        checker.checkers["regex"] = original
