"""The sandbox's HTTP routes fuzzed from the catalog's own OpenAPI documents with schemathesis, in process (ASGI).

Per operation, on a fresh copy of the populated sandbox: schemathesis generates requests from the document (path
ids are often swapped for ids that exist, so handlers run past their 404s). No response may be a 5xx, and each must
use a status code and content type the document declares and match the documented body schema. Every distinct
failure of an operation is collected and reported together.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from itwin_insights_mcp.api.catalog import SPEC_FILES
from itwin_insights_mcp.sandbox.app import create_app

from .conftest import LONG, TALLY, World
from .strategies import portable_schema

EXAMPLES = 100 if LONG else 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document(spec: str) -> dict[str, Any]:
    """A packaged spec, with `\\p{..}` patterns (which Python's re cannot compile) made portable."""
    text = resources.files("itwin_insights_mcp.api").joinpath("specs", spec).read_text(encoding="utf-8")
    loaded: dict[str, Any] = portable_schema(yaml.safe_load(text))
    return loaded


def _operations() -> list[tuple[str, str]]:
    """(document, operation label) for every operation of every document."""
    found: list[tuple[str, str]] = []
    for spec in SPEC_FILES:
        schema = schemathesis.openapi.from_dict(_document(spec))
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # every operation of every document must parse
                raise AssertionError(f"{spec}: {result.err()}")
            found.append((spec, result.ok().label))
    return found


OPERATIONS = _operations()


def _headers(document: dict[str, Any]) -> dict[str, str]:
    accept = document["info"]["x-family"]["accept"]
    return {"Authorization": "Bearer fuzz", "Accept": accept}


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == sum(
        len([m for m in item if m in ("get", "post", "put", "patch", "delete")])
        for spec in SPEC_FILES
        for item in _document(spec)["paths"].values()
    )


@pytest.mark.parametrize(("spec", "label"), OPERATIONS, ids=[f"{s.split('.')[0]}:{lab}" for s, lab in OPERATIONS])
def test_route_answers_as_documented(spec: str, label: str, world: World, tmp_path: Path) -> None:
    document = _document(spec)
    schema = schemathesis.openapi.from_dict(document)
    app = create_app(world.copy_to(tmp_path))
    sandbox = app.state.sandbox
    sandbox.start()
    schema.app = app
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    headers = _headers(document)
    failures: dict[str, str] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), data=st.data())
    def one_request(case: Any, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if name in world.known and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(world.known[name]))
        TALLY["HTTP requests"] += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised instead of answering
            failures.setdefault(f"exception: {type(exc).__name__}: {str(exc)[:200]}", repr(case.path_parameters))
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup of check failures
            for failure in exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]:
                lines = [line.strip() for line in str(failure).strip().splitlines() if line.strip()]
                summary = " / ".join(lines[:3])[:300]
                failures.setdefault(f"{response.status_code} {type(failure).__name__}: {summary}", _shown(case))

    try:
        one_request()
    finally:
        sandbox.close()
    TALLY["HTTP failures"] += len(failures)
    assert not failures, f"{label}: {len(failures)} distinct failure(s):\n" + "\n".join(
        f"- {p}\n    e.g. {e}" for p, e in failures.items()
    )


def _shown(case: Any) -> str:
    parts = {
        "path": case.path_parameters,
        "query": case.query,
        "body": case.body if isinstance(case.body, dict | list | str) else None,
    }
    return repr({k: v for k, v in parts.items() if v})[:300]
