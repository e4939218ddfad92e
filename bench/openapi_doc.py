"""The one OpenAPI document FastMCP's peer is generated from: our Reporting v1 spec, pointed at the sandbox.

Only Reporting v1 (60 operations): the iTwins and iModels documents redefine shared component names (`Error`,
`Top`, ...) differently, so a merge would have to rename them; the comparisons that involve tool counts compare
against our server restricted to the same toolsets (REPORTING_TOOLSETS).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SPEC = "reporting-v1.yaml"
BASE_PATH = "/insights/reporting"
# Our toolsets that cover exactly the Reporting v1 operations (plus our local tools in them and the core two).
REPORTING_TOOLSETS = "mappings,properties,extraction,reports,aggregations,odata"


def reporting_document(api_base_url: str) -> dict[str, Any]:
    text = resources.files("itwin_insights_mcp.api").joinpath("specs", SPEC).read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    doc["servers"] = [{"url": api_base_url.rstrip("/") + BASE_PATH}]
    return doc


def write_document(api_base_url: str, path: Path) -> Path:
    path.write_text(json.dumps(reporting_document(api_base_url)), encoding="utf-8")
    return path
