"""The `x-mcp` overlay carries every per-tool behaviour, and generic code acts on what it declares.

Permissions are checked against Bentley's own Swagger (each operation's "User must have `...` permission" line), row
bounding and error hints through the dispatcher with a scripted API, and the local tools' declarations against the
MCP definitions built from them.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from itwin_insights_mcp.api.catalog import Catalog, CatalogError, Operation, load_catalog, parse_overlay
from itwin_insights_mcp.api.client import ApiResponse, InsightsClient
from itwin_insights_mcp.errors import ApiError
from itwin_insights_mcp.server.dispatch import CallEnv, invoke
from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
from itwin_insights_mcp.server.results import error_payload, error_result
from itwin_insights_mcp.server.selection import ToolSelection
from itwin_insights_mcp.server.tools import ToolSurface
from itwin_insights_mcp.settings import Settings

CATALOG = load_catalog()
SWAGGER = Path(__file__).resolve().parents[1] / "data" / "bentley" / "reporting-v1.swagger.json"


def _swagger_permissions() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for item in json.loads(SWAGGER.read_text(encoding="utf-8"))["paths"].values():
        for raw in item.values():
            if isinstance(raw, dict) and "operationId" in raw:
                line = re.search(r"User must have (.*?) permission", raw["description"])
                assert line is not None, raw["operationId"]
                found[raw["operationId"]] = tuple(re.findall(r"`(\w+)`", line.group(1)))
    return found


def _next_step(op: Operation, status: int, code: str) -> str:
    step = error_payload(error_result(op, ApiError(status, code, "denied"), CATALOG, {}))["nextStep"]
    return str(step)


def test_every_operation_declares_the_permission_it_needs() -> None:
    missing = [op.tool for op in CATALOG if not op.permissions]
    assert missing == []


def test_reporting_v1_permissions_are_bentleys() -> None:
    documented = _swagger_permissions()
    ours = {op.operation_id: op.permissions for op in CATALOG if op.family.name == "reporting-v1"}
    assert len(documented) == 41
    assert {op_id: ours[op_id] for op_id in documented} == documented


def test_a_403_names_the_declared_permission() -> None:
    both = _next_step(CATALOG["create_report_mapping"], 403, "InsufficientPermissions")
    assert "'imodels_read and insights_modify'" in both
    assert "'insights_view'" in _next_step(CATALOG["get_odata_entity_page"], 403, "InsufficientPermissions")
    assert "'imodels_write'" in _next_step(CATALOG["gm_create_mapping"], 403, "InsufficientPermissions")
    assert "'membership of the iTwin'" in _next_step(CATALOG["get_itwin"], 403, "InsufficientPermissions")


def test_error_hints_come_from_the_overlay() -> None:
    entity = CATALOG["get_odata_entity_page"]
    assert entity.overlay is not None and "EntityNotFound" in entity.overlay.error_hints
    assert _next_step(entity, 404, "EntityNotFound") == CATALOG.error_hint("EntityNotFound")
    assert "get_odata_service again" in _next_step(entity, 404, "EntityNotFound")
    # A hint is keyed by error code, so a local tool reading through another operation gets it too.
    assert "list_reports" in _next_step(CATALOG["get_odata_metadata"], 404, "SchemaNotFound")
    assert CATALOG.error_hint("MappingNotFound") is None


def test_conflicting_error_hints_are_refused() -> None:
    ops = [op for op in CATALOG if op.overlay and op.overlay.error_hints]
    clash = ops[0].overlay
    assert clash is not None
    code = next(iter(clash.error_hints))
    other = next(op for op in CATALOG if op.overlay and not op.overlay.error_hints)
    assert other.overlay is not None
    twisted = replace(other, overlay=replace(other.overlay, error_hints={code: "other"}))
    with pytest.raises(CatalogError, match=code):
        Catalog([*ops, twisted])  # refused when the catalog is built, not at the first 404


def test_id_listers_come_from_the_overlay() -> None:
    assert [op.tool for op in CATALOG if op.overlay and op.overlay.lists] == ["list_imodels", "list_itwins"]
    for name, tool in {"iTwinId": "list_itwins", "projectId": "list_itwins", "targetIModelId": "list_imodels"}.items():
        lister = CATALOG.lister_for_id(name)
        assert lister is not None and lister.tool == tool
    lister = CATALOG.lister_for(CATALOG["get_imodel"], "iModelId")
    assert lister is not None and lister.tool == "list_imodels"


def test_deprecated_tools_name_their_replacement() -> None:
    old = CATALOG["get_imodel_extraction_status"]
    assert old.deprecated and old.replaced_by == "get_extraction_status"
    assert "use `get_extraction_status` instead" in ToolSelection.build().why_not(old)


def test_api_key_auth_is_the_specs_security() -> None:
    with_keys = {op.tool for op in CATALOG if "apiKeyBasic" in op.auth_schemes}
    assert with_keys == {op.tool for op in CATALOG if op.toolset == "odata"} | {
        "v2_get_odata_service",
        "v2_get_odata_metadata",
        "v2_get_odata_entity_page",
    }
    assert all("bearerAuth" in op.auth_schemes for op in CATALOG)


@pytest.mark.parametrize(
    ("overlay", "problem"),
    [
        ({"tool": "x", "toolset": "y"}, "missing x-mcp overlay"),
        ({"tool": "x", "toolset": "y", "description": "d", "permision": ["a"]}, "unknown x-mcp keys"),
        ({"tool": "x", "toolset": "y", "description": "d", "rows": True}, "rows must be a mapping"),
        ({"tool": "x", "toolset": "y", "description": "d", "permissions": "insights_view"}, "list of names"),
        ({"tool": "Bad-Name", "toolset": "y", "description": "d"}, "tool name"),
    ],
)
def test_a_malformed_overlay_is_refused(overlay: dict[str, Any], problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        parse_overlay(overlay, "test")


def test_local_tools_are_declared_once() -> None:
    for tool in LOCAL_TOOLS:
        annotations = tool.definition.annotations
        assert tool.definition.name == tool.tool
        assert annotations is not None and annotations.read_only_hint is tool.read_only
    wait = next(t for t in LOCAL_TOOLS if t.tool == "wait_for_extraction")
    assert wait.toolset == "extraction" and wait.also_in == ("gm_extraction",)


class PageApi:
    """Answers every request with one page of 30 OData rows."""

    async def request(self, method: str, path: str, **_: Any) -> ApiResponse:
        rows = [{"ECInstanceId": f"0x{i:x}", "Name": f"row {i}"} for i in range(30)]
        return ApiResponse(200, "application/json", {"@odata.context": "x", "value": rows})


@pytest.mark.anyio
async def test_rows_policy_bounds_only_the_operations_that_declare_it() -> None:
    settings = Settings(backend="sandbox", max_rows=10)
    env = CallEnv(cast(InsightsClient, PageApi()), settings)
    surface = ToolSurface(CATALOG)
    bounded = [op.tool for op in CATALOG if op.rows is not None]
    assert bounded == ["get_odata_entity_page", "v2_get_odata_entity_page"]
    args = {"reportId": "r", "region": "g", "manifestId": "m", "entityType": "E"}
    for tool in bounded:
        page = (await invoke(surface, env, tool, args)).structured_content
        assert page is not None and page["rowsShown"] == 10 and page["rowsInPage"] == 30
        assert "export_odata_entity" in page["note"]
    service = (await invoke(surface, env, "get_odata_service", {"reportId": "r"})).structured_content
    assert service is not None and len(service["value"]) == 30 and "rowsShown" not in service


def test_overlay_references_name_real_tools() -> None:
    local = {tool.tool for tool in LOCAL_TOOLS}
    for op in CATALOG:
        if op.rows is not None and op.rows.export is not None:
            assert op.rows.export in local, op.tool
        if op.replaced_by is not None:
            assert op.deprecated and CATALOG.get(op.replaced_by) is not None, op.tool
        for name in op.overlay.lists if op.overlay else ():
            assert op.method == "GET" and op.paging_parameter is not None, op.tool  # a list that pages
            assert name.endswith("Id"), name
