"""The Naftiko capability document: valid against the schema, in step with the live server, committed fresh.

The round trip compares the document with what a real in-process MCP `Client` session lists (tools with their hints,
resources, templates, prompts) and with the catalog (every operation of each family it touches, exactly once).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from mcp import Client

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.cli import main
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import PROFILES, Settings
from itwin_insights_mcp_build.capability import CAPABILITY_FILE, MCP_NAMESPACE, capability, capability_yaml, kebab

ROOT = Path(__file__).resolve().parents[2]
NAFTIKO = ROOT / "packaging" / "naftiko"
SCHEMA = json.loads((NAFTIKO / "naftiko-schema.json").read_text(encoding="utf-8"))
CATALOG = load_catalog()
PROFILE_NAMES = list(PROFILES)


@pytest.fixture(scope="module", params=PROFILE_NAMES)
def document(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    profile = str(request.param)
    return profile, capability(profile)


def _mcp(doc: dict[str, Any]) -> dict[str, Any]:
    [adapter] = [e for e in doc["capability"]["exposes"] if e["type"] == "mcp"]
    return dict(adapter)


def _consumed(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every consumed operation by its call reference (`namespace.operation`), with its resource path."""
    found: dict[str, dict[str, Any]] = {}
    for adapter in doc["capability"]["consumes"]:
        for resource in adapter["resources"]:
            for op in resource["operations"]:
                key = f"{adapter['namespace']}.{op['name']}"
                assert key not in found, f"{key} is declared twice"
                found[key] = {**op, "path": resource["path"]}
    return found


# -- the schema -----------------------------------------------------------------------------------------------------


def test_the_schema_copy_is_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["naftiko"]["const"] == "1.0.0-alpha3"


def test_document_validates_against_the_naftiko_schema(document: tuple[str, dict[str, Any]]) -> None:
    profile, doc = document
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert errors == [], profile


def test_the_schema_rejects_a_tool_that_calls_nothing() -> None:
    doc = capability("reporting-v1")
    tool = _mcp(doc)["tools"][0]
    del tool["call"]
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)


# -- round trip with the catalog and a live MCP session ---------------------------------------------------------------


def test_every_operation_of_each_consumed_family_appears_once(document: tuple[str, dict[str, Any]]) -> None:
    profile, doc = document
    families = {a["namespace"] for a in doc["capability"]["consumes"]}
    expected = {f"{op.family.name}.{op.operation_id}": op for op in CATALOG if op.family.name in families}
    consumed = _consumed(doc)
    assert set(consumed) == set(expected)
    for key, op in expected.items():
        entry = consumed[key]
        assert entry["method"] == op.method, key
        assert entry["path"] == op.path.replace("{", "{{").replace("}", "}}"), key
        declared = {(p["name"], p["in"]) for p in entry.get("inputParameters", [])}
        wanted = {(p.arg, p.location) for p in op.parameters} | {(f, "body") for f in op.body_fields}
        assert declared == wanted, key
    for adapter in doc["capability"]["consumes"]:
        assert adapter["authentication"] == {"type": "bearer", "token": "{{ITWIN_ACCESS_TOKEN}}"}
        assert adapter["baseUri"].startswith("https://api.bentley.com/")
    assert {"ITWIN_ACCESS_TOKEN"} == {key for bind in doc["binds"] for key in bind["keys"]}
    if profile == "all":
        assert families == {op.family.name for op in CATALOG}


async def _listed(profile: str, sandbox_db: str) -> dict[str, Any]:
    settings = Settings(backend="sandbox", sandbox_db=sandbox_db, profile=profile)  # type: ignore[arg-type]
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        return {
            "tools": (await client.list_tools()).tools,
            "resources": (await client.list_resources()).resources,
            "templates": (await client.list_resource_templates()).resource_templates,
            "prompts": (await client.list_prompts()).prompts,
        }


@pytest.mark.anyio
@pytest.mark.parametrize("profile", PROFILE_NAMES)
async def test_exposes_matches_tools_list_of_a_live_session(profile: str, sandbox_db: str) -> None:
    listed = await _listed(profile, sandbox_db)
    doc = capability(profile)
    adapter = _mcp(doc)
    consumed = _consumed(doc)
    tools = {t["name"]: t for t in adapter["tools"]}
    assert Counter(t["name"] for t in adapter["tools"]) == Counter(kebab(t.name) for t in listed["tools"])
    for live in listed["tools"]:
        tool = tools[kebab(live.name)]
        notes = live.annotations
        assert notes is not None
        hints = {
            "readOnly": notes.read_only_hint,
            "destructive": notes.destructive_hint,
            "idempotent": notes.idempotent_hint,
            "openWorld": notes.open_world_hint,
        }
        assert tool["hints"] == {k: v for k, v in hints.items() if v is not None}, live.name
        assert tool["description"] == live.description
        params = {p["name"]: p["required"] for p in tool.get("inputParameters", [])}
        assert params == {n: n in live.input_schema.get("required", []) for n in live.input_schema["properties"]}
        op = CATALOG.get(live.name)
        if op is not None:
            assert tool["call"] == f"{op.family.name}.{op.operation_id}"
            targets = [(tool["call"], tool.get("with", {}))]
        else:
            targets = [(step["call"], step["with"]) for step in tool.get("steps", [])]
            assert targets or tool["outputParameters"], f"{live.name}: a local tool needs steps or the mock form"
        for call, with_ in targets:
            assert call in consumed, f"{live.name} calls {call}, which is not consumed"
            names = {p["name"] for p in consumed[call].get("inputParameters", [])}
            assert set(with_) <= names, f"{live.name}: {set(with_) - names} are not parameters of {call}"
            path_params = {p["name"] for p in consumed[call].get("inputParameters", []) if p["in"] == "path"}
            assert path_params <= set(with_), f"{live.name}: path parameters of {call} left unbound"
            assert all(v.startswith(f"{MCP_NAMESPACE}.") and v.split(".", 1)[1] in params for v in with_.values())

    uris = [r["uri"] for r in adapter["resources"]]
    for template in listed["templates"]:
        assert template.uri_template in uris
    for resource in listed["resources"]:
        uri = str(resource.uri)
        skill = uri.removeprefix("skill://").split("/", 1)[0]
        assert uri in uris or f"skill://{skill}/{{path}}" in uris, uri
    prompts = {p["name"]: p for p in adapter["prompts"]}
    assert set(prompts) == {p.name for p in listed["prompts"]}
    for live_prompt in listed["prompts"]:
        arguments = [a["name"] for a in prompts[live_prompt.name].get("arguments", [])]
        assert arguments == [a.name for a in live_prompt.arguments or []]
        content = prompts[live_prompt.name]["template"][0]["content"]
        assert all("{{" + a + "}}" in content for a in arguments)


def test_the_skill_adapter_points_at_every_skill_folder() -> None:
    [adapter] = [e for e in capability()["capability"]["exposes"] if e["type"] == "skill"]
    folders = sorted(p.name for p in (ROOT / "skills").iterdir() if (p / "SKILL.md").is_file())
    assert [s["name"] for s in adapter["skills"]] == folders
    for skill in adapter["skills"]:
        assert (ROOT / skill["location"].removeprefix("file:///./")).joinpath("SKILL.md").is_file()


# -- the committed file, the CLI, the sdist -------------------------------------------------------------------------


def test_the_committed_document_is_fresh() -> None:
    committed = (ROOT / CAPABILITY_FILE).read_text(encoding="utf-8")
    assert committed == capability_yaml("reporting-v1"), (
        f"run `itwin-insights-mcp capability --output {CAPABILITY_FILE}` and commit it"
    )
    assert yaml.safe_load(committed) == capability("reporting-v1")


def test_generation_is_deterministic() -> None:
    assert capability_yaml("all") == capability_yaml("all")


def test_cli_writes_the_document_of_any_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITWIN_INSIGHTS_BACKEND", "sandbox")
    target = tmp_path / "all.yml"
    assert main(["capability", "--profile", "all", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == capability_yaml("all")


def test_the_sdist_ships_the_document() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert f"/{CAPABILITY_FILE}" in project["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


# -- Spectral with naftiko-rules.yml --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spectral() -> Path:
    """The Spectral CLI pinned by packaging/naftiko/package-lock.json (installed with `npm ci` when missing)."""
    binary = NAFTIKO / "node_modules" / ".bin" / "spectral"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is required to lint the capability document (CI installs it)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NAFTIKO, check=True, timeout=600)
    return binary


def _lint(spectral: Path, files: list[Path]) -> list[dict[str, Any]]:
    ruleset = NAFTIKO / "naftiko-rules.yml"
    run = subprocess.run(
        [str(spectral), "lint", "--ruleset", str(ruleset), "-f", "json", "-F", "hint", "-q", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=NAFTIKO,
    )
    assert run.stdout.strip(), run.stderr
    results: list[dict[str, Any]] = json.loads(run.stdout)
    return results


def test_spectral_finds_no_error_in_any_profile(spectral: Path, tmp_path: Path) -> None:
    files = []
    for profile in PROFILE_NAMES:
        path = tmp_path / f"{profile}.capability.yml"
        path.write_text(capability_yaml(profile), encoding="utf-8")
        files.append(path)
    broken = tmp_path / "broken.capability.yml"  # proves the ruleset and its custom functions really run
    broken.write_text(
        capability_yaml().replace("namespace: itwin-insights-skills", "namespace: itwin-insights"), encoding="utf-8"
    )
    results = _lint(spectral, [*files, broken])
    errors = [r for r in results if r["severity"] == 0]
    assert {Path(r["source"]).name for r in errors} == {broken.name}
    assert {r["code"] for r in errors} == {"naftiko-namespaces-unique"}
    others = [f"{Path(r['source']).name}: {r['code']} {r['message']}" for r in results if r["severity"] != 0]
    assert not [o for o in others if not o.startswith(broken.name)], others
