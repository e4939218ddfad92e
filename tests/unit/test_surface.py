"""The surface as a whole: every catalog operation has exactly one tool and one sandbox route, all well formed."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from starlette.routing import Route

from itwin_insights_mcp.api.catalog import TOOL_NAME_PATTERN, load_catalog
from itwin_insights_mcp.sandbox.app import HANDLERS, create_app
from itwin_insights_mcp.server.tools import ToolSurface, annotations_for

CATALOG = load_catalog()


def test_catalog_counts() -> None:
    families = Counter(op.family.name for op in CATALOG)
    assert families == {
        "reporting-v1": 61,
        "itwins-v1": 2,
        "imodels-v2": 3,
        "grouping-mapping-v1": 23,
        "reporting-v2": 16,
        "imodel-query-v1": 2,
    }
    deprecated = [op.tool for op in CATALOG if op.deprecated]
    assert deprecated == ["get_imodel_extraction_status"]
    assert len([op for op in CATALOG if op.family.name == "reporting-v1" and not op.deprecated]) == 60


def test_every_current_operation_has_exactly_one_tool() -> None:
    surface = ToolSurface(CATALOG)
    names = [tool.name for tool in surface.tools]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(op.tool for op in CATALOG.current())  # every toolset, no local tools
    assert "get_imodel_extraction_status" not in names
    with_deprecated = ToolSurface(CATALOG, include_deprecated=True)
    assert len(with_deprecated.tools) == len(CATALOG)


@pytest.mark.parametrize("op", list(CATALOG), ids=lambda op: op.tool)
def test_tool_is_well_formed(op: object) -> None:
    from itwin_insights_mcp.api.catalog import Operation

    assert isinstance(op, Operation)
    assert TOOL_NAME_PATTERN.match(op.tool)
    schema = op.input_schema
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["properties"], "an input schema must not be an empty stub"
    assert not {"anyOf", "oneOf", "allOf"} & set(schema), "no top-level combinators (some hosts reject them)"
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{op.tool}.{name} has no description"
        assert "type" in prop or "enum" in prop, f"{op.tool}.{name} has no type"
    if op.response_content_type == "application/json":
        output = op.output_schema
        assert output is not None and output["type"] == "object" and output["properties"]
        assert output.get("required"), "the wrapper key is required"
    if op.method == "DELETE":
        assert op.success_status == 204 and op.output_schema is None
    assert 0 < len(op.description) <= 120 and "\n" not in op.description


def test_annotations_follow_the_method() -> None:
    seen = {}
    for op in CATALOG:
        a = annotations_for(op)
        seen[op.method] = (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        assert a.title == op.title
    assert seen == {
        "GET": (True, None, None, True),
        "POST": (False, False, False, True),
        "PUT": (False, True, True, True),
        "PATCH": (False, True, False, True),
        "DELETE": (False, True, True, True),
    }


def test_read_only_surface_has_no_writes() -> None:
    surface = ToolSurface(CATALOG, read_only=True)
    assert surface.tools and all(surface.get(t.name).read_only for t in surface.tools)  # type: ignore[union-attr]
    assert "create_mapping" not in surface
    assert "read-only" in surface.refusal("create_mapping")


def test_every_operation_has_one_sandbox_handler_and_route() -> None:
    assert set(HANDLERS) == {op.key for op in CATALOG}
    app = create_app(":memory:")
    try:
        routes = [r for r in app.routes if isinstance(r, Route)]
        for op in CATALOG:
            matching = {
                r.name.split(":")[0]
                for r in routes
                if r.methods and op.method in r.methods and r.path.rstrip("/") == op.full_path.rstrip("/")
            }
            # v1 and v2 share some paths; one route serves both and the Accept header picks the version.
            assert len(matching) == 1 and op.tool in next(iter(matching)).split("+"), op.tool
    finally:
        app.state.sandbox.close()


def test_paging_arguments_use_api_spelling_without_dollar() -> None:
    for op in CATALOG:
        for param in op.parameters:
            assert param.arg == param.name.lstrip("$")
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", param.arg)
        if op.paging_parameter is not None:
            assert op.paging_parameter.arg in ("continuationToken", "skip")
            top = op.input_schema["properties"]["top"]
            assert (top["minimum"], top["maximum"]) == (1, 1000)
