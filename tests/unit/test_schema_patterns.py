"""Every `pattern` a host can see means the same in Python `re` and in ECMAScript `RegExp`, with and without `u`.

Hosts validate tool arguments with whatever engine they have: Python agent frameworks use `jsonschema` (`re.search`),
TypeScript hosts use `new RegExp(pattern)` or `new RegExp(pattern, "u")`. So each pattern of every tool's input and
output schema, in every profile, must compile in all three and give the same verdict on a set of awkward strings
(non-ASCII letters, astral characters, lone surrogates, Unicode digits, a trailing newline). One `node` process
checks them all; a machine without node fails this test rather than skipping it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from itwin_insights_mcp.api.catalog import SANDBOX_PATTERN, load_catalog
from itwin_insights_mcp.api.validation import problems
from itwin_insights_mcp.server.app import selection_for
from itwin_insights_mcp.server.compact import compact_tools
from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
from itwin_insights_mcp.server.tools import ToolSurface
from itwin_insights_mcp.settings import PROFILES, Settings

SAMPLES = [
    "",
    "Walls",
    "_x1",
    "Wände_2",
    "名前",
    "e\u0301",  # e + combining acute
    "ǅx",  # titlecase letter
    "1abc",
    "a b",
    "a-b",
    "a.b",
    "a/b",
    "a€",
    "\u00a0x",  # no-break space
    "x\u200d",  # zero-width joiner (a format character)
    "a\U0001f600",  # astral: two UTF-16 code units, one code point
    "\U0001d49c",  # astral letter (mathematical script A)
    "\ud800",  # lone surrogate
    "a\n",
    "abc\n",
    "\nabc",
    "2026-01-01",
    "2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00.5+01:00",
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661",  # 2026-01-01 in Arabic-Indic digits
    "2026-01-01\n",
    "0x20000003c47",
    "report.csv",
    "report-1.jsonl",
    ".hidden",
]

# Patterns known not to mean the same everywhere, each a strict xfail (it turns red once fixed). None left.
KNOWN_PROBLEMS: dict[str, str] = {}

NODE_SCRIPT = r"""
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = input.patterns.map((p) => {
  const result = {};
  for (const [name, flags] of [["plain", ""], ["unicode", "u"]]) {
    try {
      const re = new RegExp(p, flags);
      result[name] = input.samples.map((s) => re.test(s));
    } catch (e) {
      result[name] = String(e);
    }
  }
  return result;
});
process.stdout.write(JSON.stringify(out));
"""


def _patterns(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            else:
                yield from _patterns(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _patterns(item, f"{where}[{index}]")


def _tool_schemas() -> list[tuple[str, dict[str, Any]]]:
    """(profile/tool/side, schema) for every tool of every profile, full and compact mode, deprecated included."""
    catalog = load_catalog()
    schemas: list[tuple[str, dict[str, Any]]] = []
    for profile in PROFILES:
        selection = selection_for(Settings(profile=profile, include_deprecated=True))  # type: ignore[arg-type]
        surface = ToolSurface(catalog, selection, local_tools=LOCAL_TOOLS)
        for tool in [*surface.tools, *compact_tools(surface)]:
            schemas.append((f"{profile}/{tool.name}/input", tool.input_schema))
            if tool.output_schema is not None:
                schemas.append((f"{profile}/{tool.name}/output", tool.output_schema))
    return schemas


SCHEMAS = _tool_schemas()
FOUND = [(f"{name}{where}", pattern) for name, schema in SCHEMAS for where, pattern in _patterns(schema, "")]
PATTERNS = sorted({pattern for _, pattern in FOUND})


def _python_verdicts(pattern: str) -> list[bool]:
    compiled = re.compile(pattern)  # what jsonschema does with `pattern`
    return [compiled.search(sample) is not None for sample in SAMPLES]


@pytest.fixture(scope="module")
def node_verdicts() -> dict[str, dict[str, Any]]:
    """Each pattern's verdicts on SAMPLES from ONE node process: {"plain": [...], "unicode": [...]} or errors."""
    node = shutil.which("node")
    assert node is not None, "node is required for this test (install Node.js; CI installs it where missing)"
    payload = json.dumps({"patterns": PATTERNS, "samples": SAMPLES})
    done = subprocess.run(
        [node, "-e", NODE_SCRIPT], input=payload, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(zip(PATTERNS, json.loads(done.stdout), strict=True))


def test_the_schemas_have_patterns_to_check() -> None:
    """The identifier rule is in dozens of input schemas of two profiles; an empty collection would prove nothing."""
    identifier_inputs = {name for name, pattern in FOUND if "/input" in name and pattern.startswith(r"^[^\x00-\x40")}
    assert len(identifier_inputs) >= 23
    assert {name.split("/")[0] for name in identifier_inputs} == set(PROFILES)


def test_no_sandbox_only_rule_reaches_a_tool() -> None:
    leaked = [name for name, schema in SCHEMAS if SANDBOX_PATTERN in json.dumps(schema)]
    assert leaked == []


def _cases() -> list[Any]:
    cases: list[Any] = []
    for pattern in PATTERNS:
        reason = KNOWN_PROBLEMS.get(pattern)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(pattern, marks=marks, id=pattern[:40]))
    return cases


@pytest.mark.parametrize("pattern", _cases())
def test_pattern_means_the_same_in_python_and_ecmascript(
    pattern: str, node_verdicts: dict[str, dict[str, Any]]
) -> None:
    python = _python_verdicts(pattern)
    verdicts = node_verdicts[pattern]
    for flags in ("plain", "unicode"):
        assert isinstance(verdicts[flags], list), f"RegExp({pattern!r}, {flags}) does not compile: {verdicts[flags]}"
        differing = [repr(s) for s, a, b in zip(SAMPLES, python, verdicts[flags], strict=True) if a != b]
        assert differing == [], f"{flags} RegExp and Python re disagree on {differing}"
    assert any(python) and not all(python), "the samples must exercise both verdicts"


def test_names_may_hold_non_ascii_letters_and_the_sandbox_keeps_bentleys_exact_rule() -> None:
    """Tools accept any non-ASCII character in a name (portable); the sandbox also applies Bentley's \\p{L} rule."""
    create = load_catalog()["create_mapping"]
    tool_schema = create.input_schema["properties"]["mappingName"]
    sandbox_schema = create.body_schema["properties"]["mappingName"] if create.body_schema else {}
    for good in ("Wände", "名前", "_x1"):
        assert problems(tool_schema, good) == [] and problems(sandbox_schema, good) == [], good
    for bad in ("1abc", "a b", "a-b", "abc\n"):
        assert problems(tool_schema, bad) and problems(sandbox_schema, bad), bad
    # Non-ASCII non-letters pass the portable rule and are refused only where the exact rule is checked.
    assert problems(tool_schema, "a€") == []
    refused = problems(sandbox_schema, "a€")
    assert refused and "simple identifier" in refused[0].message
