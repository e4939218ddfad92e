"""The Agent-Skills bundle in `skills/`: its format, its links, and every example in it, run for real.

ECSQL blocks are translated and executed on the sandbox's Sample Office Building; formula blocks are parsed,
type-checked and evaluated against the fixed Walls columns the formula skill announces; tool names and their
arguments are checked against the catalog. A block preceded by `<!-- expect: error -->` must fail instead.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import skills_ref
import yaml

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.sandbox.engine.ecsql import QueryTranslationError, translate
from itwin_insights_mcp.sandbox.engine.formulas import FormulaError, evaluate, infer_type, parse
from itwin_insights_mcp.sandbox.imodels.seed import ensure_seeded
from itwin_insights_mcp.sandbox.store import Store
from itwin_insights_mcp.settings import PROFILES

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "skills"
BUILDING_ID = "6a2c2318-f55b-5eb0-a328-05379c169cbe"
EXPECTED_SKILLS = {
    "insights-reporting",
    "insights-ecsql",
    "insights-properties",
    "insights-formulas",
    "insights-extraction",
    "insights-odata",
    "insights-auth",
    "insights-errors",
    "insights-api-families",
}
# Tools served by this server but not from the API catalog (local tools and the compact mode's two).
EXTRA_TOOLS = {
    "wait_for_extraction",
    "export_odata_entity",
    "read_skill",
    "auth_status",
    "search_operations",
    "call_operation",
}
EXPECT_ERROR = "<!-- expect: error -->"
MAX_BODY_LINES = 500
MAX_DESCRIPTION = 1024

# The columns every formula example may use (the formula skill says so).
FORMULA_COLUMNS = {
    "Length": "Double",
    "Width": "Double",
    "Height": "Double",
    "Thickness": "Double",
    "Volume": "Double",
    "Area": "Double",
    "Cost": "Double",
    "Material": "String",
    "FireRating": "String",
    "IsExternal": "Boolean",
    "Count": "Integer",
    "UserLabel": "String",
}
SAMPLE_ROW: dict[str, object] = {
    "Length": 6.171,
    "Width": 0.3,
    "Height": 3.35,
    "Thickness": 0.3,
    "Volume": 6.201855,
    "Area": 46.2,
    "Cost": 1116.33,
    "Material": "Brick",
    "FireRating": "REI 60",
    "IsExternal": True,
    "Count": 2,
    "UserLabel": "Basic Wall: Exterior - Brick 300mm",
}
NULL_ROW: dict[str, object] = {**SAMPLE_ROW, "Cost": None, "Material": None, "FireRating": None, "UserLabel": None}

TOOL_WORD = re.compile(
    r"^(?:gm_|v2_)?(list|get|create|update|delete|copy|run|wait|export|search|call|read|auth|revoke)_[a-z0-9_]+$"
)
TOOL_CALL = re.compile(r"^([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\(")
INLINE_CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ARGUMENT = re.compile(r"^([A-Za-z_$][A-Za-z0-9_$]*)\s*(?:=|$)")


# ------------------------------------------------------------------------------------------------ markdown helpers


@dataclass(frozen=True)
class Block:
    """A fenced code block of a skill file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    expect_error: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(SKILLS).as_posix()}:{self.line}"


def skill_dirs() -> list[Path]:
    return sorted(p for p in SKILLS.iterdir() if p.is_dir())


def markdown_files() -> list[Path]:
    return sorted(SKILLS.rglob("*.md"))


def split_fences(path: Path) -> tuple[list[Block], str]:
    """The fenced blocks of a file, and its text with those blocks blanked out (line numbers kept)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip()
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            assert end < len(lines), f"{path}:{i + 1}: unclosed code fence"
            before = next((line for line in reversed(lines[:i]) if line.strip()), "")
            blocks.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]), EXPECT_ERROR in before))
            prose.extend("" for _ in range(end - i + 1))
            i = end + 1
            continue
        prose.append(lines[i])
        i += 1
    return blocks, "\n".join(prose)


def all_blocks(lang: str) -> list[Block]:
    return [b for path in markdown_files() for b in split_fences(path)[0] if b.lang == lang]


def frontmatter(skill_md: Path) -> tuple[dict[str, object], str]:
    text = skill_md.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{skill_md} must start with YAML frontmatter"
    _, front, body = text.split("---", 2)
    data = yaml.safe_load(front)
    assert isinstance(data, dict), f"{skill_md}: frontmatter must be a mapping"
    return data, body


def formula_lines(block: Block) -> list[str]:
    return [line.strip() for line in block.text.splitlines() if line.strip()]


def top_level_split(text: str) -> list[str]:
    """Split a call's argument text on commas outside brackets and quotes."""
    parts: list[str] = []
    depth, quote = 0, ""
    current: list[str] = []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def inline_tool_mentions() -> Iterator[tuple[str, str, str | None]]:
    """(where, tool name, argument text or None) for every inline code span that names a tool."""
    for path in markdown_files():
        _, prose = split_fences(path)
        for match in INLINE_CODE.finditer(prose):
            span = " ".join(match.group(1).split())
            where = f"{path.relative_to(SKILLS).as_posix()}:{prose.count(chr(10), 0, match.start()) + 1}"
            if TOOL_WORD.match(span):
                yield where, span, None
                continue
            call = TOOL_CALL.match(span)
            if call is not None:
                inner = span[call.end() :]
                yield where, call.group(1), inner[: inner.rfind(")")] if ")" in inner else inner


ECSQL_BLOCKS = all_blocks("ecsql")
FORMULA_BLOCKS = all_blocks("formula")
JSON_BLOCKS = all_blocks("json")
PYTHON_BLOCKS = all_blocks("python")


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def building(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A seeded sandbox store (both sample iModels), shared by this module's ECSQL checks."""
    store = Store(str(tmp_path_factory.mktemp("skills") / "s.db"))
    ensure_seeded(store)
    yield store.conn
    store.close()


# ------------------------------------------------------------------------------------------------ layout and format


def test_the_expected_skills_are_there() -> None:
    assert {p.name for p in skill_dirs()} == EXPECTED_SKILLS


@pytest.mark.parametrize("skill", skill_dirs(), ids=lambda p: p.name)
def test_frontmatter_and_body(skill: Path) -> None:
    skill_md = skill / "SKILL.md"
    assert skill_md.is_file(), f"{skill.name} has no SKILL.md"
    data, body = frontmatter(skill_md)
    assert data.get("name") == skill.name
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", skill.name)
    description = data.get("description")
    assert isinstance(description, str)
    assert description.strip()
    assert len(description) <= MAX_DESCRIPTION
    assert len(body.splitlines()) < MAX_BODY_LINES


@pytest.mark.parametrize("skill", skill_dirs(), ids=lambda p: p.name)
def test_files_are_skill_md_and_one_level_of_references(skill: Path) -> None:
    for file in skill.rglob("*"):
        if file.is_dir():
            assert file == skill / "references", f"unexpected folder {file.relative_to(SKILLS)}"
            continue
        parts = file.relative_to(skill).parts
        assert parts == ("SKILL.md",) or (len(parts) == 2 and parts[0] == "references" and file.suffix == ".md"), (
            f"{file.relative_to(SKILLS)}: a skill holds SKILL.md and references/<file>.md only"
        )


@pytest.mark.parametrize("skill", skill_dirs(), ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_skill(skill: Path) -> None:
    root = skill.resolve()
    linked_from_skill_md: set[Path] = set()
    for file in sorted(skill.rglob("*.md")):
        _, prose = split_fences(file)
        for target in LINK.findall(prose):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            resolved = (file.parent / target.split("#", 1)[0]).resolve()
            where = f"{file.relative_to(SKILLS)} -> {target}"
            assert resolved.is_file(), f"broken link {where}"
            assert resolved.is_relative_to(root), f"link leaves the skill: {where}"
            if file.name == "SKILL.md":
                linked_from_skill_md.add(resolved)
    orphans = {p.resolve() for p in (skill / "references").glob("*.md")} - linked_from_skill_md
    assert not orphans, f"references not linked from SKILL.md: {sorted(str(p) for p in orphans)}"


@pytest.mark.parametrize("skill", skill_dirs(), ids=lambda p: p.name)
def test_skills_ref_validate(skill: Path) -> None:
    assert skills_ref.validate(skill) == []
    script = shutil.which("agentskills", path=str(Path(sys.executable).parent))
    assert script is not None, "the skills-ref package's `agentskills` command is not installed next to Python"
    done = subprocess.run([script, "validate", str(skill)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------------------------ ECSQL examples


def test_there_are_ecsql_examples_of_both_kinds() -> None:
    assert any(not b.expect_error for b in ECSQL_BLOCKS)
    assert any(b.expect_error for b in ECSQL_BLOCKS)


@pytest.mark.parametrize("block", ECSQL_BLOCKS, ids=lambda b: b.id)
def test_ecsql_example(block: Block, building: sqlite3.Connection) -> None:
    if block.expect_error:
        with pytest.raises(QueryTranslationError):
            translate(block.text, BUILDING_ID, building)
        return
    translated = translate(block.text, BUILDING_ID, building)
    rows = building.execute(translated.sql, translated.params).fetchall()
    assert rows, f"{block.id}: the query selects no element of the Sample Office Building"


# ------------------------------------------------------------------------------------------------ formula examples


def test_the_formula_skill_announces_its_columns() -> None:
    text = " ".join((SKILLS / "insights-formulas" / "SKILL.md").read_text(encoding="utf-8").split())
    assert "examples assume a walls group with these columns" in text.lower()
    for name, data_type in FORMULA_COLUMNS.items():
        assert f"`{name}` ({data_type})" in text


def test_there_are_formula_examples_of_both_kinds() -> None:
    assert any(not b.expect_error for b in FORMULA_BLOCKS)
    assert any(b.expect_error for b in FORMULA_BLOCKS)


@pytest.mark.parametrize("block", FORMULA_BLOCKS, ids=lambda b: b.id)
def test_formula_example(block: Block) -> None:
    lines = formula_lines(block)
    assert lines, f"{block.id}: empty formula block"
    for line in lines:
        if block.expect_error:
            with pytest.raises(FormulaError):
                infer_type(parse(line), FORMULA_COLUMNS)
            continue
        formula = parse(line)
        assert infer_type(formula, FORMULA_COLUMNS) in ("Double", "Integer", "String", "Boolean")
        evaluate(formula, SAMPLE_ROW)
        evaluate(formula, NULL_ROW)


# ------------------------------------------------------------------------------------------------ other blocks


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=lambda b: b.id)
def test_json_example_parses(block: Block) -> None:
    assert isinstance(json.loads(block.text), dict | list)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_example_compiles(block: Block) -> None:
    ast.parse(block.text, filename=block.id)


# ------------------------------------------------------------------------------------------------ tool names


def test_every_tool_named_exists_with_those_arguments() -> None:
    catalog = {op.tool: op for op in load_catalog()}
    known = set(catalog) | EXTRA_TOOLS
    mentions = list(inline_tool_mentions())
    assert len(mentions) > 50
    problems: list[str] = []
    for where, tool, arguments in mentions:
        if tool not in known:
            problems.append(f"{where}: `{tool}` is not a tool")
            continue
        if arguments is None or tool not in catalog:
            continue
        accepted = set(catalog[tool].input_schema.get("properties", {}))
        for part in top_level_split(arguments):
            named = ARGUMENT.match(part)
            if named is not None and named.group(1) not in accepted:
                problems.append(f"{where}: `{tool}` has no argument `{named.group(1)}` (it takes {sorted(accepted)})")
    assert not problems, "\n".join(problems)


def test_the_families_skill_names_every_tool_of_the_newer_families() -> None:
    """Grouping & Mapping, Reporting v2 and API-key tools all appear in `insights-api-families`."""
    named = {tool for where, tool, _ in inline_tool_mentions() if where.startswith("insights-api-families/")}
    newer = {op.tool for op in load_catalog() if op.tool.startswith(("gm_", "v2_")) or "api_key" in op.tool}
    assert newer, "the catalog has no Grouping & Mapping, v2 or API-key tools"
    assert not newer - named, f"not named in insights-api-families: {sorted(newer - named)}"


def profile_rows(path: Path) -> dict[str, set[str]]:
    """Profile name -> the backticked names in its table row, for rows starting with a backticked profile."""
    rows: dict[str, set[str]] = {}
    for line in split_fences(path)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 2:
            continue
        first = INLINE_CODE.findall(cells[0])
        if first and first[0] in PROFILES:
            rows[first[0]] = set(INLINE_CODE.findall(cells[1]))
    return rows


@pytest.mark.parametrize(
    "path",
    [SKILLS / "insights-api-families" / "SKILL.md", SKILLS / "insights-reporting" / "references" / "tool-surface.md"],
    ids=lambda p: p.relative_to(SKILLS).as_posix(),
)
def test_profile_tables_match_the_server(path: Path) -> None:
    rows = profile_rows(path)
    assert set(rows) == set(PROFILES), f"{path.name}: profile rows {sorted(rows)}"
    for profile, toolsets in PROFILES.items():
        if toolsets is not None:
            assert rows[profile] == set(toolsets), f"{profile}: {sorted(rows[profile])} != {sorted(toolsets)}"
