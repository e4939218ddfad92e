"""Structural checks of every OpenAPI catalog document in src/itwin_insights_mcp/api/specs, one family at a time.

Every rule is parametrised by family (`FAMILIES`: header, operation count, toolsets, path parameters, non-JSON bodies,
preview operations); what is particular to one family is a "facts" test at the end. The documents are also loaded
through the real catalog parser, and validated with openapi-spec-validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
import yaml

from itwin_insights_mcp.api.catalog import TOOL_NAME_PATTERN, Operation, _parse_document

SPEC_DIR = Path(__file__).resolve().parents[2] / "src" / "itwin_insights_mcp" / "api" / "specs"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REF_RE = re.compile(
    r"^#/components/(schemas|parameters|responses|requestBodies|headers|securitySchemes)/[A-Za-z0-9_.-]+$"
)

V1 = "reporting-v1.yaml"
ITWINS = "itwins-v1.yaml"
IMODELS = "imodels-v2.yaml"
GM = "grouping-mapping-v1.yaml"
V2 = "reporting-v2.yaml"
ACCEPT_V1 = "application/vnd.bentley.itwin-platform.v1+json"
ACCEPT_V2 = "application/vnd.bentley.itwin-platform.v2+json"

EXPECTED_TOOLSETS: dict[str, dict[str, set[str]]] = {
    V1: {
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
    },
    ITWINS: {"context": {"list_itwins", "get_itwin"}},
    IMODELS: {"context": {"list_imodels", "get_imodel", "list_changesets"}},
    GM: {
        "gm_mappings": {
            "gm_list_mappings",
            "gm_get_mapping",
            "gm_create_mapping",
            "gm_update_mapping",
            "gm_delete_mapping",
            "gm_list_groups",
            "gm_get_group",
            "gm_create_group",
            "gm_update_group",
            "gm_delete_group",
            "gm_list_properties",
            "gm_get_property",
            "gm_create_property",
            "gm_update_property",
            "gm_delete_property",
        },
        "gm_extraction": {
            "gm_run_extraction",
            "gm_get_extraction_status",
            "gm_list_imodel_extractions",
            "gm_list_extraction_logs",
            "gm_list_mapping_extractions",
            "gm_get_cdm",
            "gm_get_cdm_partition",
            "gm_list_audit_trail",
        },
    },
    V2: {
        "reports_v2": {
            "v2_list_reports",
            "v2_get_report",
            "v2_create_report",
            "v2_update_report",
            "v2_delete_report",
            "v2_list_report_mappings",
            "v2_create_report_mapping",
            "v2_delete_report_mapping",
            "v2_get_odata_service",
            "v2_get_odata_metadata",
            "v2_get_odata_entity_page",
        },
        "api_keys": {"create_api_key", "get_api_key", "list_api_keys", "update_api_key", "revoke_api_key"},
    },
}

# (method, path) -> (operationId, tool)
EXPECTED_OPS: dict[str, dict[tuple[str, str], tuple[str, str]]] = {
    GM: {
        ("get", "/datasources/imodel-mappings"): ("get-mappings", "gm_list_mappings"),
        ("get", "/datasources/imodel-mappings/{mappingId}"): ("get-mapping", "gm_get_mapping"),
        ("post", "/datasources/imodel-mappings"): ("create-mapping", "gm_create_mapping"),
        ("patch", "/datasources/imodel-mappings/{mappingId}"): ("update-mapping", "gm_update_mapping"),
        ("delete", "/datasources/imodel-mappings/{mappingId}"): ("delete-mapping", "gm_delete_mapping"),
        ("get", "/datasources/imodel-mappings/{mappingId}/groups"): ("get-groups", "gm_list_groups"),
        ("get", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}"): ("get-group", "gm_get_group"),
        ("post", "/datasources/imodel-mappings/{mappingId}/groups"): ("create-group", "gm_create_group"),
        ("patch", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}"): ("update-group", "gm_update_group"),
        ("delete", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}"): ("delete-group", "gm_delete_group"),
        ("get", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}/properties"): (
            "get-properties",
            "gm_list_properties",
        ),
        ("get", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}/properties/{propertyId}"): (
            "get-property",
            "gm_get_property",
        ),
        ("post", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}/properties"): (
            "create-property",
            "gm_create_property",
        ),
        ("put", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}/properties/{propertyId}"): (
            "update-property",
            "gm_update_property",
        ),
        ("delete", "/datasources/imodel-mappings/{mappingId}/groups/{groupId}/properties/{propertyId}"): (
            "delete-property",
            "gm_delete_property",
        ),
        ("post", "/datasources/imodel-mappings/extractions"): ("run-extraction", "gm_run_extraction"),
        ("get", "/datasources/imodel-mappings/extractions/{extractionId}"): (
            "get-extraction-status",
            "gm_get_extraction_status",
        ),
        ("get", "/datasources/imodel-mappings/extractions"): ("get-imodel-extractions", "gm_list_imodel_extractions"),
        ("get", "/datasources/imodel-mappings/extractions/{extractionId}/logs"): (
            "get-extraction-logs",
            "gm_list_extraction_logs",
        ),
        ("get", "/datasources/imodel-mappings/{mappingId}/extractions"): (
            "get-mapping-extractions",
            "gm_list_mapping_extractions",
        ),
        ("get", "/datasources/imodel-mappings/{mappingId}/extractions/{extractionId}/cdm"): ("get-cdm", "gm_get_cdm"),
        ("get", "/datasources/imodel-mappings/{mappingId}/extractions/{extractionId}/cdm/partitions"): (
            "get-cdm-partition",
            "gm_get_cdm_partition",
        ),
        ("get", "/audit"): ("get-audit-trail", "gm_list_audit_trail"),
    },
    V2: {
        ("get", "/reports"): ("get-itwin-reports", "v2_list_reports"),
        ("get", "/reports/{reportId}"): ("get-report", "v2_get_report"),
        ("post", "/reports"): ("create-report", "v2_create_report"),
        ("patch", "/reports/{reportId}"): ("update-report", "v2_update_report"),
        ("delete", "/reports/{reportId}"): ("delete-report", "v2_delete_report"),
        ("get", "/reports/{reportId}/datasources/imodelmappings"): ("get-report-mappings", "v2_list_report_mappings"),
        ("post", "/reports/{reportId}/datasources/imodelmappings"): (
            "create-report-mapping",
            "v2_create_report_mapping",
        ),
        ("delete", "/reports/{reportId}/datasources/imodelmappings/{mappingId}"): (
            "delete-report-mapping",
            "v2_delete_report_mapping",
        ),
        ("get", "/odata/{reportId}"): ("odata", "v2_get_odata_service"),
        ("get", "/odata/{reportId}/$metadata"): ("odata-metadata", "v2_get_odata_metadata"),
        ("get", "/odata/{reportId}/{region}/{manifestId}/{entityType}"): ("odata-entity", "v2_get_odata_entity_page"),
        ("post", "/keys"): ("create-apikey", "create_api_key"),
        ("get", "/keys/{apiKeyId}"): ("get-apikey", "get_api_key"),
        ("get", "/keys"): ("get-apikeys", "list_api_keys"),
        ("patch", "/keys/{apiKeyId}"): ("update-apikey", "update_api_key"),
        ("delete", "/keys/{apiKeyId}"): ("revoke-apikey", "revoke_api_key"),
    },
}

AGGREGATION_TOOLS = EXPECTED_TOOLSETS[V1]["aggregations"] | {
    "list_report_aggregations",
    "get_report_aggregation",
    "create_report_aggregation",
    "delete_report_aggregation",
}
API_KEY_TOOLS = EXPECTED_TOOLSETS[V2]["api_keys"]


class FamilyFacts(TypedDict):
    """What each document must declare, and the conventions where families differ."""

    name: str
    basePath: str
    accept: str
    status: str
    server: str
    ops: int
    deprecated: dict[str, str]  # operationId -> tool
    path_params: set[str]
    raw_bodies: dict[str, str]  # operationId -> media type of a non-JSON 200
    trailing_slash: set[str]  # paths Bentley itself spells with a trailing slash
    preview_tools: set[str]  # Technical Preview operations (family status or x-lifecycle)
    says_preview: bool  # descriptions start with "Preview: " (else the tool layer adds it from the lifecycle)
    deletes_answer_422: bool  # Bentley's v1 Swagger lists no 422 on deletes; the later families do


FAMILIES: dict[str, FamilyFacts] = {
    V1: {
        "name": "reporting-v1",
        "basePath": "/insights/reporting",
        "accept": ACCEPT_V1,
        "status": "GA",
        "server": "https://api.bentley.com/insights/reporting",
        "ops": 61,
        "deprecated": {"get-extraction-status-deprecated": "get_imodel_extraction_status"},
        "path_params": {
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
        },
        "raw_bodies": {"odata-metadata": "application/xml"},
        # Bentley's Swagger and both official client versions send create-report as `POST /reports/`.
        "trailing_slash": {"/reports/"},
        "preview_tools": AGGREGATION_TOOLS,
        "says_preview": False,
        "deletes_answer_422": False,
    },
    ITWINS: {
        "name": "itwins-v1",
        "basePath": "/itwins",
        "accept": ACCEPT_V1,
        "status": "GA",
        "server": "https://api.bentley.com/itwins",
        "ops": 2,
        "deprecated": {},
        "path_params": {"iTwinId"},
        "raw_bodies": {},
        "trailing_slash": set(),
        "preview_tools": set(),
        "says_preview": False,
        "deletes_answer_422": True,
    },
    IMODELS: {
        "name": "imodels-v2",
        "basePath": "/imodels",
        "accept": ACCEPT_V2,
        "status": "GA",
        "server": "https://api.bentley.com/imodels",
        "ops": 3,
        "deprecated": {},
        "path_params": {"iModelId"},
        "raw_bodies": {},
        "trailing_slash": set(),
        "preview_tools": set(),
        "says_preview": False,
        "deletes_answer_422": True,
    },
    GM: {
        "name": "grouping-mapping-v1",
        "basePath": "/grouping-and-mapping",
        "accept": ACCEPT_V1,
        "status": "preview",
        "server": "https://api.bentley.com/grouping-and-mapping",
        "ops": 23,
        "deprecated": {},
        "path_params": {"mappingId", "groupId", "propertyId", "extractionId"},
        "raw_bodies": {"get-cdm-partition": "text/csv"},
        "trailing_slash": set(),
        "preview_tools": set().union(*EXPECTED_TOOLSETS[GM].values()),
        "says_preview": True,
        "deletes_answer_422": True,
    },
    V2: {
        "name": "reporting-v2",
        "basePath": "/insights/reporting",
        "accept": ACCEPT_V2,
        "status": "GA",
        "server": "https://api.bentley.com/insights/reporting",
        "ops": 16,
        "deprecated": {},
        "path_params": {"reportId", "mappingId", "apiKeyId", "region", "manifestId", "entityType"},
        "raw_bodies": {"odata-metadata": "application/xml"},
        "trailing_slash": set(),
        "preview_tools": API_KEY_TOOLS,
        "says_preview": True,
        "deletes_answer_422": True,
    },
}


def _load(name: str) -> dict[str, Any]:
    with open(SPEC_DIR / name, encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


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


ALL_OPS = [(name, path, method, op) for name, doc in SPECS.items() for path, method, op in _operations(doc)]
OP_IDS = [f"{n.split('.')[0]}:{m.upper()} {p}" for n, p, m, _ in ALL_OPS]
NAMES = sorted(FAMILIES)


# ---------------------------------------------------------------------------------------------- documents


def test_every_spec_file_is_covered() -> None:
    assert sorted(p.name for p in SPEC_DIR.glob("*.yaml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_header_and_family(name: str) -> None:
    doc, exp = SPECS[name], FAMILIES[name]
    assert doc["openapi"] == "3.1.0"
    info = doc["info"]
    assert info["title"] and info["version"] and info["description"]
    assert info["x-family"] == {k: exp[k] for k in ("name", "basePath", "accept", "status")}
    assert doc["servers"][0]["url"] == exp["server"]


def test_gm_info_states_create_status_inference() -> None:
    assert "201" in SPECS[GM]["info"]["description"]


@pytest.mark.parametrize("name", NAMES)
def test_operations_as_expected(name: str) -> None:
    ops = list(_operations(SPECS[name]))
    assert len(ops) == FAMILIES[name]["ops"]
    deprecated = {op["operationId"]: op["x-mcp"]["tool"] for _, _, op in ops if op.get("deprecated")}
    assert deprecated == FAMILIES[name]["deprecated"]
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    if name in EXPECTED_OPS:
        got = {(method, path): (op["operationId"], op["x-mcp"]["tool"]) for path, method, op in ops}
        assert got == EXPECTED_OPS[name]


@pytest.mark.parametrize("name", NAMES)
def test_tools_and_toolsets(name: str) -> None:
    by_set: dict[str, set[str]] = {}
    for _, _, op in _operations(SPECS[name]):
        by_set.setdefault(op["x-mcp"]["toolset"], set()).add(op["x-mcp"]["tool"])
    assert by_set == EXPECTED_TOOLSETS[name]


def test_tool_names_unique_across_all_spec_files() -> None:
    tools = [op["x-mcp"]["tool"] for _, _, _, op in ALL_OPS]
    dupes = sorted({t for t in tools if tools.count(t) > 1})
    assert not dupes, dupes
    assert all(TOOL_NAME_PATTERN.match(t) for t in tools)


@pytest.mark.parametrize("name", NAMES)
def test_no_path_level_parameters(name: str) -> None:
    for path, item in SPECS[name]["paths"].items():
        assert "parameters" not in item, path
        assert path.startswith("/"), path
        if path not in FAMILIES[name]["trailing_slash"]:
            assert not (path.endswith("/") and path != "/"), f"trailing slash in {path}"


@pytest.mark.parametrize("name", NAMES)
def test_every_ref_resolves(name: str) -> None:
    doc = SPECS[name]
    refs = [(w, n["$ref"]) for w, n in _walk(doc) if isinstance(n, dict) and "$ref" in n]
    assert refs
    for where, ref in refs:
        assert REF_RE.match(ref), f"{where}: {ref}"
        _, _, section, comp = ref.split("/")
        assert comp in doc["components"].get(section, {}), f"{where}: unresolved {ref}"


@pytest.mark.parametrize("name", NAMES)
def test_components_are_used(name: str) -> None:
    doc = SPECS[name]
    used = {n["$ref"] for _, n in _walk(doc) if isinstance(n, dict) and "$ref" in n}
    for section in ("schemas", "parameters", "responses"):
        for comp in doc["components"].get(section, {}):
            assert f"#/components/{section}/{comp}" in used, f"unused {section}/{comp}"


@pytest.mark.parametrize("name", NAMES)
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


@pytest.mark.parametrize("name", NAMES)
def test_parameters_well_formed(name: str) -> None:
    for pname, p in SPECS[name]["components"]["parameters"].items():
        assert p["in"] in ("path", "query", "header"), pname
        assert p["in"] != "header" or pname == "Prefer", pname  # Accept and Authorization are the client's
        assert p.get("description"), pname
        assert "schema" in p, pname
        if p["in"] == "path":
            assert p["required"] is True and p["schema"]["type"] == "string", pname
            assert p["name"] in FAMILIES[name]["path_params"], pname
        if p["name"] == "$top":
            assert p["schema"]["minimum"] == 1 and p["schema"]["maximum"] == 1000
        if p["name"] == "$continuationToken":
            assert p["schema"]["type"] == "string"
        assert p["name"] not in ("top", "continuationToken"), "paging names keep their `$`"


# ---------------------------------------------------------------------------------------------- operations


def _check_body(doc: dict[str, Any], method: str, op: dict[str, Any], params: list[dict[str, Any]]) -> None:
    if "requestBody" not in op:
        assert method not in ("put", "patch"), "write without body"
        return
    assert method in ("post", "put", "patch")
    rb = op["requestBody"]
    assert isinstance(rb["required"], bool)
    assert list(rb["content"]) == ["application/json"]
    body = _resolve(doc, rb["content"]["application/json"]["schema"])
    assert body["type"] == "object" and body["properties"]
    assert "additionalProperties" not in body
    param_args = {p["name"] for p in params} | {p["name"].lstrip("$") for p in params}
    assert not set(body["properties"]) & param_args, "body field collides with a parameter"
    for field in body.get("required", []):
        assert field in body["properties"]
    if method == "patch":
        assert body.get("minProperties") == 1


def _check_responses(name: str, method: str, op: dict[str, Any]) -> None:
    doc, responses = SPECS[name], op["responses"]
    assert "201" not in responses
    if method == "delete":
        assert responses["204"] == {"description": "No Content"}
        assert "200" not in responses
    else:
        ok = responses["200"]
        assert ok.get("description")
        content = ok["content"]
        raw = FAMILIES[name]["raw_bodies"].get(op["operationId"])
        if raw:
            assert list(content) == [raw]
            assert content[raw]["schema"]["type"] == "string"
        else:
            assert list(content) == ["application/json"]
            schema = _resolve(doc, content["application/json"]["schema"])
            assert schema["type"] == "object" and schema["properties"], "empty 200 schema"
            for key in schema.get("required", []):
                assert key in schema["properties"]
    assert responses["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert responses["429"] == {"$ref": "#/components/responses/TooManyRequests"}
    for code, resp in responses.items():
        if code not in ("200", "204"):
            assert "$ref" in resp, f"inline error response {code}"
    if method != "get":
        assert "403" in responses
    if method in ("post", "put", "patch") or (method == "delete" and FAMILIES[name]["deletes_answer_422"]):
        assert "422" in responses
    if "404" in responses:
        assert op.get("x-error-codes"), "404 without x-error-codes"


@pytest.mark.parametrize(("name", "path", "method", "op"), ALL_OPS, ids=OP_IDS)
def test_operation_shape(name: str, path: str, method: str, op: dict[str, Any]) -> None:
    doc = SPECS[name]
    assert re.match(r"^[a-z0-9-]+$", op["operationId"])
    assert op.get("summary") and op.get("tags")
    mcp = op["x-mcp"]
    assert set(mcp) >= {"tool", "toolset", "description", "permissions"}
    assert mcp["tool"] in EXPECTED_TOOLSETS[name][mcp["toolset"]], f"{mcp['tool']} not in toolset {mcp['toolset']}"
    desc = mcp["description"]
    assert 0 < len(desc) <= 110 and "\n" not in desc and desc[0].isupper(), desc

    params = _params(doc, op)
    assert {p["name"] for p in params if p["in"] == "path"} == set(re.findall(r"{([^}]+)}", path))
    names = [(p["name"], p["in"]) for p in params]
    assert len(names) == len(set(names)), "duplicate parameter"
    _check_body(doc, method, op, params)
    _check_responses(name, method, op)
    if "_list_" in f"_{mcp['tool']}":
        qnames = {p["name"] for p in params if p["in"] == "query"}
        assert "$top" in qnames and qnames & {"$continuationToken", "$skip"}, mcp["tool"]
        assert "422" in op["responses"]


@pytest.mark.parametrize(("name", "path", "method", "op"), ALL_OPS, ids=OP_IDS)
def test_preview_marking(name: str, path: str, method: str, op: dict[str, Any]) -> None:
    family = FAMILIES[name]
    tool, desc = op["x-mcp"]["tool"], op["x-mcp"]["description"]
    preview = tool in family["preview_tools"]
    lifecycle = op.get("x-lifecycle", family["status"])
    assert (lifecycle == "preview") == preview, tool
    if family["status"] == "preview":
        assert "x-lifecycle" not in op  # the family says it once
    if family["says_preview"]:
        assert desc.startswith("Preview: ") == preview, desc
    else:
        assert "Preview" not in desc, desc


@pytest.mark.parametrize(("name", "path", "method", "op"), ALL_OPS, ids=OP_IDS)
def test_examples_match_schemas(name: str, path: str, method: str, op: dict[str, Any]) -> None:
    from itwin_insights_mcp.api.validation import problems

    media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "example" not in media:
        return
    (parsed,) = [o for o in _parse_document(SPECS[name], name) if o.operation_id == op["operationId"]]
    assert parsed.body_schema is not None
    assert problems(parsed.body_schema, media["example"]) == []


@pytest.mark.parametrize("name", NAMES)
def test_real_catalog_parser(name: str) -> None:
    family = FAMILIES[name]
    ops: list[Operation] = _parse_document(SPECS[name], name)  # raises CatalogError on any broken invariant
    assert len(ops) == family["ops"]
    for op in ops:
        assert op.family.name == family["name"] and op.family.status == family["status"]
        args = [p.arg for p in op.parameters] + list(op.body_fields)
        assert len(args) == len(set(args)), op.tool
        assert op.success_status == (204 if op.method == "DELETE" else 200)
        if op.operation_id in family["raw_bodies"]:
            assert op.response_content_type == family["raw_bodies"][op.operation_id]
            assert op.output_schema is None
        elif op.method != "DELETE":
            assert op.response_content_type == "application/json"
            assert op.output_schema is not None
        assert op.input_schema["type"] == "object"
        assert op.preview == (op.tool in family["preview_tools"]), op.tool


@pytest.mark.parametrize("name", NAMES)
def test_openapi_spec_validator(name: str) -> None:
    import openapi_schema_validator
    import openapi_spec_validator

    checker = openapi_schema_validator.oas31_format_checker
    original = checker.checkers["regex"]

    def ecma_regex(instance: object) -> bool:
        # JSON Schema patterns are ECMA-262 with Unicode property escapes; Python's re lacks \p{..}.
        if isinstance(instance, str):
            re.compile(re.sub(r"\\p\{[A-Za-z_]+\}", "a", instance))
        return True

    checker.checkers["regex"] = (ecma_regex, (re.error,))
    try:
        openapi_spec_validator.validate(SPECS[name])
    finally:
        checker.checkers["regex"] = original


# ---------------------------------------------------------------------------------------------- facts per family


def _by_id(name: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {op["operationId"]: (path, method, op) for path, method, op in _operations(SPECS[name])}


def test_reporting_specific_facts() -> None:
    doc = SPECS[V1]
    by_id = _by_id(V1)
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
    import regex  # stdlib re has no \p{..}

    pattern = regex.compile(SPECS[V1]["components"]["schemas"]["SimpleIdentifier"]["pattern"])
    for ok in ("Walls", "_x", "Wände_2", "a1"):
        assert pattern.match(ok), ok
    for bad in ("", "1abc", "a-b", "a b", "a.b"):
        assert not pattern.match(bad), bad


def _body(name: str, op_id: str) -> dict[str, Any]:
    op = _by_id(name)[op_id][2]
    body: dict[str, Any] = _resolve(SPECS[name], op["requestBody"]["content"]["application/json"]["schema"])
    return body


def _query(name: str, op_id: str) -> dict[str, dict[str, Any]]:
    op = _by_id(name)[op_id][2]
    return {p["name"]: p for p in _params(SPECS[name], op) if p["in"] == "query"}


def test_gm_schemas() -> None:
    schemas = SPECS[GM]["components"]["schemas"]
    assert "iModel" in schemas["Mapping"]["properties"]["_links"]["properties"]
    assert "imodel" not in schemas["Mapping"]["properties"]["_links"]["properties"]
    assert schemas["DataType"]["enum"] == ["Boolean", "Integer", "Double", "String"]
    assert schemas["QuantityType"]["enum"] == ["Area", "Distance", "Force", "Mass", "Monetary", "Time", "Volume"]
    assert len(schemas["CalculatedPropertyType"]["enum"]) == 10
    assert schemas["ExtractionState"]["enum"] == ["Queued", "Running", "Succeeded", "PartiallySucceeded", "Failed"]
    assert set(schemas["ECPropertyReference"]["properties"]) == {"ecSchemaName", "ecClassName", "ecPropertyName"}
    prop = schemas["Property"]["properties"]
    assert set(prop) == {
        "id",
        "propertyName",
        "dataType",
        "quantityType",
        "ecProperties",
        "calculatedPropertyType",
        "formula",
        "_links",
    }
    assert set(prop["_links"]["properties"]) == {"iModel", "mapping", "group"}
    assert "metadata" in schemas["Group"]["properties"] and "metadata" not in schemas["GroupMinimal"]["properties"]
    assert set(schemas["GroupMetadataEntry"]["properties"]) == {"key", "value"}
    assert set(schemas["ExtractionLogEntry"]["properties"]) == {
        "state",
        "dateTime",
        "contextType",
        "contextId",
        "level",
        "category",
        "message",
    }
    assert set(schemas["MappingExtraction"]["properties"]) == {
        "extractionId",
        "extractionTimestamp",
        "changesetIndex",
        "mappingTimestamp",
        "_links",
    }
    cdm_entity = schemas["CDMEntity"]["properties"]
    assert set(cdm_entity) == {"$type", "name", "attributes", "partitions"}
    assert set(schemas["CDMPartition"]["properties"]) == {"name", "location"}
    assert set(schemas["AuditTrailEntry"]["properties"]) == {"timestamp", "path", "userEmail", "action", "changes"}
    assert set(schemas["AuditPropertyChange"]["properties"]) == {"property", "oldValue", "newValue"}
    ident = schemas["SimpleIdentifier"]
    assert ident["maxLength"] == 128 and ident["x-sandbox-pattern"].startswith(r"^[\p{L}\p{Nl}_]")
    assert ident["pattern"].startswith(r"^[^\x00-\x40")  # portable; see test_schema_patterns.py
    wrappers = {
        "MappingSingle": "mapping",
        "MappingCollection": "mappings",
        "GroupSingle": "group",
        "GroupCollection": "groups",
        "PropertySingle": "property",
        "PropertyCollection": "properties",
        "ExtractionSingle": "extraction",
        "ExtractionCollection": "extractions",
        "ExtractionLogCollection": "logs",
        "MappingExtractionCollection": "extractions",
        "AuditTrailCollection": "auditTrailEntries",
    }
    for sname, key in wrappers.items():
        assert key in schemas[sname]["required"], sname
        if sname.endswith("Collection"):
            assert schemas[sname]["properties"]["_links"] == {"$ref": "#/components/schemas/PagedLinks"}
    assert schemas["PagedLinks"]["required"] == ["self"]


def test_gm_operation_facts() -> None:
    create = _body(GM, "create-mapping")
    assert create["required"] == ["iModelId", "mappingName"]
    assert create["properties"]["extractionEnabled"]["default"] is False
    assert create["properties"]["mappingName"] == {"$ref": "#/components/schemas/SimpleIdentifier"}
    assert "sourceMappingId" in create["properties"]
    group = _body(GM, "create-group")
    assert set(group["required"]) == {"groupName", "query"}
    assert set(group["properties"]["source"]["properties"]) == {"mappingId", "groupId"}
    prop = _body(GM, "create-property")
    assert prop["required"] == ["propertyName", "dataType"]
    assert _by_id(GM)["update-property"][1] == "put" and _body(GM, "update-property") == prop
    run = _body(GM, "run-extraction")
    assert run["required"] == ["iModelId"]
    assert set(run["properties"]) == {"iModelId", "mappings", "changesetId", "ecInstanceIds"}
    assert _query(GM, "get-mappings")["iModelId"]["required"] is True
    assert _query(GM, "get-imodel-extractions")["iModelId"]["required"] is True
    assert _query(GM, "get-cdm-partition")["location"]["required"] is True
    audit = _query(GM, "get-audit-trail")
    assert set(audit) == {"iModelId", "path", "after", "before", "$top", "$continuationToken"}
    assert audit["iModelId"]["required"] is True
    assert audit["after"]["schema"]["format"] == audit["before"]["schema"]["format"] == "date-time"
    groups_op = _by_id(GM)["get-groups"][2]
    assert "metadata" in groups_op["description"]
    assert "description" in _by_id(GM)["get-cdm"][2]


def test_v2_facts() -> None:
    schemas = SPECS[V2]["components"]["schemas"]
    assert set(schemas["Report"]["properties"]["_links"]["properties"]) == {"iTwin", "odata"}
    assert _body(V2, "create-report")["required"] == ["displayName", "iTwinId"]
    assert _body(V2, "update-report")["minProperties"] == 1
    assert set(_body(V2, "create-report-mapping")["properties"]) == {"mappingId"}
    reports = _query(V2, "get-itwin-reports")
    assert reports["iTwinId"]["required"] is True and reports["deleted"]["schema"]["type"] == "boolean"
    keys = _query(V2, "get-apikeys")
    assert set(keys) == {"reportId", "expired", "$top", "$continuationToken"}
    assert not keys["reportId"].get("required") and keys["expired"]["schema"]["type"] == "boolean"
    entity = _query(V2, "odata-entity")
    assert entity["sequence"]["schema"] == {"type": "integer", "minimum": 0}

    key_create = _body(V2, "create-apikey")
    assert key_create["required"] == ["displayName", "reportId", "expiresAt"]
    assert key_create["properties"]["displayName"]["maxLength"] == 256
    assert "6 months" in key_create["properties"]["expiresAt"]["description"]
    assert set(_body(V2, "update-apikey")["properties"]) == {"displayName"}
    assert schemas["ApiKeyCreatedSingle"]["required"] == ["key"]
    assert "apiKey" in schemas["ApiKeyCreated"]["required"]
    assert "apiKey" not in schemas["ApiKey"]["properties"]
    assert schemas["ApiKeyCollection"]["required"] == ["keys", "_links"]

    codes = {c for _, _, op in _operations(SPECS[V2]) for c in op.get("x-error-codes", [])}
    assert codes == {
        "ReportNotFound",
        "ReportMappingNotFound",
        "MappingNotFound",
        "SchemaNotFound",
        "EntityNotFound",
        "ApiKeyNotFound",
    }


def test_v2_expires_at_pattern() -> None:
    import regex

    pattern = regex.compile(_body(V2, "create-apikey")["properties"]["expiresAt"]["pattern"])
    for ok in ("2026-12-31", "2026-12-31T10:00:00Z", "2026-12-31T10:00:00+02:00", "2026-12-31T10:00:00.123Z"):
        assert pattern.match(ok), ok
    for bad in ("", "tomorrow", "31/12/2026", "2026-12-31 10:00"):
        assert not pattern.match(bad), bad
