"""Packaging end to end: what users install is built, checked and run here, the way CI does it.

`packaging/build.sh` runs once per session into a temporary folder (wheel + sdist via `python -m build`, `twine
check`, server.json, the .mcpb via the pinned official `@anthropic-ai/mcpb` validate + pack). Then the wheel is
installed with pip into ONE fresh venv and served over stdio, run with `uvx` and `pipx run`, and the bundle is
unpacked and run the way its manifest says (`uv run` on the bundle's pyproject). server.json is checked against the
registry's published schema (vendored in tests/data) and the Dockerfile against the files and commands it names.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from itwin_insights_mcp import __version__
from itwin_insights_mcp.settings import ENV_DESCRIPTIONS, ENV_VARS, SECRET_ENV_VARS, Settings
from itwin_insights_mcp_build.distribution import (
    BUNDLE_ENTRY_POINT,
    MCPB_MANIFEST_VERSION,
    REGISTRY_SCHEMA_URL,
    SERVER_NAME,
    STDIO_EXCLUDED_ENV_VARS,
    USER_CONFIG_ENV,
    bundle_pyproject,
    mcpb_manifest,
    server_json,
    wheel_filename,
)
from itwin_insights_mcp_build.distribution import main as distribution_main

from ..conftest import ITWIN_ID
from .conftest import child_env, free_port, wait_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCHEMA = ROOT / "tests" / "data" / "mcp-registry" / "2025-12-11" / "server.schema.json"
MCPB_PACKAGE = re.search(r'^MCPB="([^"]+)"', (ROOT / "packaging" / "build.sh").read_text(), re.M)


def _clean_env(env: dict[str, str]) -> dict[str, str]:
    """No leaking of this test run's own interpreter setup into a child that must use its own install."""
    return {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def _run(cmd: list[str], *, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, f"{shlex.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _repo_skills() -> set[str]:
    return {p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md")}


def _uv_env(env: dict[str, str]) -> dict[str, str]:
    """uv on this interpreter's Python (never a download), with PyPI for dependencies."""
    return {**_clean_env(env), "UV_PYTHON": sys.executable, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


@dataclass(frozen=True)
class Built:
    outdir: Path
    wheel: Path
    sdist: Path
    bundle: Path
    server_json: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`packaging/build.sh` into a temporary folder: everything CI ships, built the way CI builds it."""
    outdir = tmp_path_factory.mktemp("dist")
    env = {**_clean_env(dict(os.environ)), "PYTHON": sys.executable, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    _run(["bash", str(ROOT / "packaging" / "build.sh"), str(outdir)], env=env, cwd=ROOT, timeout=600)
    return Built(
        outdir=outdir,
        wheel=outdir / wheel_filename(),
        sdist=outdir / f"itwin_insights_mcp-{__version__}.tar.gz",
        bundle=outdir / f"itwin-insights-mcp-{__version__}.mcpb",
        server_json=outdir / "server.json",
    )


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel pip-installed (dependencies from the index); returns its bin folder."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run(
        [str(bindir / "python"), "-m", "pip", "install", "--quiet", str(built.wheel)], env=_clean_env(dict(os.environ))
    )
    return bindir


@pytest.fixture
def unpacked_bundle(built: Built, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    with zipfile.ZipFile(built.bundle) as archive:
        archive.extractall(target)
    return target


def _expected_tool_names() -> set[str]:
    return {tool["name"] for tool in mcpb_manifest()["tools"]}


async def _check_session(params: StdioServerParameters) -> None:
    """List the tools (exactly the default surface the manifest declares) and call list_itwins on the sandbox."""
    async with Client(params) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == _expected_tool_names()
        result = await client.call_tool("list_itwins", {})
        assert not result.is_error, result.content
        text = json.dumps(result.structured_content)
        assert ITWIN_ID in text and "Sandbox Project" in text


# -- wheel and sdist ---------------------------------------------------------------------------------------------


def test_wheel_and_sdist_pass_twine_and_carry_what_the_server_reads(built: Built) -> None:
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", str(built.wheel), str(built.sdist)])
    assert checked.stdout.count("PASSED") == 2

    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"itwin_insights_mcp-{__version__}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"itwin_insights_mcp-{__version__}.dist-info/entry_points.txt").decode()
    assert f"Version: {__version__}\n" in metadata
    # The registry accepts the PyPI package as this server's only if its README says so.
    assert f"mcp-name: {SERVER_NAME}" in metadata
    assert "itwin-insights-mcp = itwin_insights_mcp.cli:entrypoint" in entry_points
    assert {f"itwin_insights_mcp/skills/{name}/SKILL.md" for name in _repo_skills()} <= names
    packaged_specs = {n for n in names if n.startswith("itwin_insights_mcp/api/specs/")}
    source_specs = {
        "itwin_insights_mcp/api/specs/" + p.name for p in (ROOT / "src/itwin_insights_mcp/api/specs").glob("*.yaml")
    }
    assert packaged_specs == source_specs and source_specs
    # Build-time and bench-only code (server.json, bundle manifest, capability document, token budget) stays out.
    assert not {n for n in names if n.startswith("itwin_insights_mcp_build/") or n.endswith("/budget.py")}

    with tarfile.open(built.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "src/itwin_insights_mcp/__init__.py", "server.json"} <= members
    assert {f"skills/{name}/SKILL.md" for name in _repo_skills()} <= members


def test_version_lives_in_one_place() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"] and "version" not in pyproject["project"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/itwin_insights_mcp/__init__.py"
    assert server_json()["version"] == server_json()["packages"][0]["version"] == __version__
    assert mcpb_manifest()["version"] == __version__
    assert f'"itwin-insights-mcp=={__version__}"' in bundle_pyproject()


async def test_stdio_session_from_the_wheel_installed_with_pip(installed: Path, sandbox_db: str) -> None:
    where = _run([str(installed / "python"), "-c", "import itwin_insights_mcp as m; print(m.__file__, m.__version__)"])
    location, version = where.stdout.split()
    assert Path(location).is_relative_to(installed.parent) and version == __version__  # not the source checkout
    command = str(installed / "itwin-insights-mcp")
    await _check_session(StdioServerParameters(command=command, args=["serve"], env=_clean_env(child_env(sandbox_db))))

    params = StdioServerParameters(command=command, args=["serve"], env=_clean_env(child_env(sandbox_db)))
    async with Client(params) as client:  # the skills are read from inside the installed package
        listed = await client.call_tool("read_skill", {})
        skills = {s["name"] for s in json.loads(listed.content[0].text)["skills"]}  # type: ignore[union-attr]
    assert skills == _repo_skills()


async def test_uvx_runs_the_wheel(built: Built, sandbox_db: str) -> None:
    uv = str(BIN / "uv")
    shown = _run(
        [uv, "tool", "run", "--from", str(built.wheel), "itwin-insights-mcp", "--version"],
        env=_uv_env(child_env(":memory:")),
    )
    assert shown.stdout.strip() == f"itwin-insights-mcp {__version__}"
    params = StdioServerParameters(
        command=uv,
        args=["tool", "run", "--from", str(built.wheel), "itwin-insights-mcp", "serve"],
        env=_uv_env(child_env(sandbox_db)),
    )
    await _check_session(params)


def test_pipx_runs_the_wheel(built: Built, tmp_path: Path) -> None:
    env = {
        **_clean_env(child_env(":memory:")),
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_DEFAULT_BACKEND": "pip",  # classic pipx (uvx above covers uv)
    }
    shown = _run([str(BIN / "pipx"), "run", "--spec", str(built.wheel), "itwin-insights-mcp", "--version"], env=env)
    assert shown.stdout.strip().splitlines()[-1] == f"itwin-insights-mcp {__version__}"


# -- server.json -------------------------------------------------------------------------------------------------


def _registry_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == REGISTRY_SCHEMA_URL
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_committed_server_json_is_the_generated_one_and_valid(built: Built) -> None:
    committed = (ROOT / "server.json").read_text(encoding="utf-8")
    assert committed == built.server_json.read_text(encoding="utf-8")
    assert json.loads(committed) == server_json()
    errors = [e.message for e in _registry_validator().iter_errors(json.loads(committed))]
    assert errors == []
    assert json.loads(committed)["$schema"] == REGISTRY_SCHEMA_URL


def test_the_registry_schema_is_really_applied() -> None:
    validator = _registry_validator()
    breakages: tuple[Callable[[dict[str, Any]], object], ...] = (
        lambda d: d.update(name="itwin-insights-mcp"),  # no namespace
        lambda d: d.update(description="x" * 101),
        lambda d: d["packages"][0].update(version="latest"),
        lambda d: d["packages"][0]["packageArguments"][0].pop("value"),
        lambda d: d["packages"][0].pop("transport"),
    )
    for breakage in breakages:
        broken = copy.deepcopy(server_json())
        breakage(broken)
        assert not validator.is_valid(broken)


def test_server_json_environment_follows_the_settings() -> None:
    (package,) = server_json()["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == "itwin-insights-mcp"
    assert package["transport"] == {"type": "stdio"} and package["runtimeHint"] == "uvx"
    assert package["packageArguments"] == [{"type": "positional", "value": "serve"}]
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert set(variables) == set(ENV_VARS) - STDIO_EXCLUDED_ENV_VARS
    assert set(ENV_VARS) & STDIO_EXCLUDED_ENV_VARS >= {"ITWIN_INSIGHTS_TRANSPORT", "ITWIN_INSIGHTS_HOST"}
    for name, variable in variables.items():
        assert variable["description"] == ENV_DESCRIPTIONS[name]
        assert variable["isSecret"] is (name in SECRET_ENV_VARS)
        assert variable["isRequired"] is False
        if "choices" in variable:
            assert variable["default"] in variable["choices"]
    assert {"ITWIN_ACCESS_TOKEN", "ITWIN_CLIENT_SECRET"} <= {n for n, v in variables.items() if v["isSecret"]}
    # Every default written in the registry is what the server does with nothing set.
    defaults = {name: v["default"] for name, v in variables.items() if "default" in v}
    assert "ITWIN_INSIGHTS_BACKEND" in defaults and "ITWIN_INSIGHTS_MAX_ROWS" in defaults
    from_defaults, plain = Settings.from_env(defaults), Settings()
    for f in fields(Settings):
        assert getattr(from_defaults, f.name) == getattr(plain, f.name), f.name


def test_distribution_cli_writes_the_files(tmp_path: Path) -> None:
    assert distribution_main(["server-json", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "server.json").read_text()) == server_json()
    assert distribution_main(["mcpb-manifest", str(tmp_path / "bundle")]) == 0
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text()) == mcpb_manifest()
    assert (tmp_path / "bundle" / "pyproject.toml").read_text() == bundle_pyproject()


# -- the Claude Desktop bundle -----------------------------------------------------------------------------------


def test_bundle_holds_the_generated_manifest_and_the_same_wheel(built: Built, unpacked_bundle: Path) -> None:
    files = {p.relative_to(unpacked_bundle).as_posix() for p in unpacked_bundle.rglob("*") if p.is_file()}
    assert files == {"manifest.json", "pyproject.toml", BUNDLE_ENTRY_POINT, f"wheels/{wheel_filename()}"}
    assert (unpacked_bundle / "wheels" / wheel_filename()).read_bytes() == built.wheel.read_bytes()
    manifest = json.loads((unpacked_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == mcpb_manifest()
    assert manifest["manifest_version"] == MCPB_MANIFEST_VERSION and manifest["server"]["type"] == "uv"
    pyproject = tomllib.loads((unpacked_bundle / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"]["itwin-insights-mcp"]["path"] == f"wheels/{wheel_filename()}"

    config = manifest["user_config"]
    assert {"backend", "client_id", "api_base_url", "export_dir"} <= set(config)
    assert config["export_dir"]["type"] == "directory"
    assert {k for k, v in config.items() if v.get("sensitive")} == {"client_secret", "access_token"}
    assert {USER_CONFIG_ENV[k] for k, v in config.items() if v.get("sensitive")} <= SECRET_ENV_VARS
    env = manifest["server"]["mcp_config"]["env"]
    assert env == {USER_CONFIG_ENV[k]: f"${{user_config.{k}}}" for k in config}
    for key, variable in USER_CONFIG_ENV.items():
        assert ENV_VARS[variable][0] == key  # each bundle setting is the server setting of the same name


def test_bundle_manifest_passes_the_official_validator(unpacked_bundle: Path) -> None:
    assert MCPB_PACKAGE is not None, "packaging/build.sh pins the mcpb package"
    done = _run(["npx", "--yes", MCPB_PACKAGE.group(1), "validate", str(unpacked_bundle / "manifest.json")])
    assert "Manifest schema validation passes!" in done.stdout

    broken = json.loads((unpacked_bundle / "manifest.json").read_text())
    broken["user_config"]["backend"]["type"] = "choice"
    (unpacked_bundle / "manifest.json").write_text(json.dumps(broken))
    rejected = subprocess.run(
        ["npx", "--yes", MCPB_PACKAGE.group(1), "validate", str(unpacked_bundle / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rejected.returncode == 1 and "user_config" in rejected.stdout


async def test_bundle_runs_as_its_manifest_says(unpacked_bundle: Path, sandbox_db: str) -> None:
    config = mcpb_manifest()["server"]["mcp_config"]
    args = [a.replace("${__dirname}", str(unpacked_bundle)) for a in config["args"]]
    # A host that leaves the optional settings unfilled: empty, or the placeholder itself; both mean "default".
    env = {name: "" if "secret" in value else value for name, value in config["env"].items()}
    env["ITWIN_INSIGHTS_BACKEND"] = "sandbox"
    command = str(BIN / config["command"])
    params = StdioServerParameters(command=command, args=args, env={**_uv_env(child_env(sandbox_db)), **env})
    await _check_session(params)


# -- the container image -----------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def _copy_sources() -> list[str]:
    sources: list[str] = []
    for instruction, args in _dockerfile():
        if instruction == "COPY" and "--from=" not in args:
            sources += shlex.split(args)[:-1]
    return sources


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in _dockerfile():
        if instruction == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(args)))
    return env


def _image_cmd() -> list[str]:
    (cmd,) = [json.loads(args) for instruction, args in _dockerfile() if instruction == "CMD"]
    assert isinstance(cmd, list)
    return [str(part) for part in cmd]


def test_dockerfile_copies_existing_files_and_runs_a_declared_command() -> None:
    instructions = _dockerfile()
    sources = _copy_sources()
    assert sources and all((ROOT / source).exists() for source in sources), sources
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    cmd = _image_cmd()
    assert cmd[0] in scripts and cmd[1] == "serve"

    users = [args.strip() for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "USER")
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    assert last_user > last_from  # the final stage drops root

    env = _image_env()
    assert {n for n in env if n.startswith(("ITWIN_", "INSIGHTS_"))} <= set(ENV_VARS)  # only real settings
    assert "--transport http" in " ".join(cmd) or env.get("ITWIN_INSIGHTS_TRANSPORT") == "http"
    assert env["ITWIN_INSIGHTS_HOST"] == "0.0.0.0"
    healthchecks = [args for instruction, args in instructions if instruction == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and f":{env['ITWIN_INSIGHTS_PORT']}/healthz" in healthchecks[0]


def test_docker_build_stage_builds_the_same_wheel(built: Built, tmp_path: Path) -> None:
    """The build stage sees only what the Dockerfile copies: from that alone it must build the same wheel."""
    context = tmp_path / "context"
    for source in _copy_sources():
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "wheels"), str(context)])
    with zipfile.ZipFile(tmp_path / "wheels" / wheel_filename()) as docker, zipfile.ZipFile(built.wheel) as ours:
        assert sorted(docker.namelist()) == sorted(ours.namelist())


def test_image_command_serves_http_from_the_installed_wheel(installed: Path, sandbox_db: str) -> None:
    """The image's CMD with the image's ENV, run from the pip-installed wheel: with the operator's settings (an auth
    mode and the host names) it serves and its HEALTHCHECK passes; without either it refuses to bind every
    interface."""
    image_env, cmd = _image_env(), _image_cmd()
    command = [str(installed / cmd[0]), *cmd[1:]]
    port = str(free_port())
    # What `docker run -e ...` adds. The caller-auth settings exist once the hosted auth modes do.
    operator = {"ITWIN_INSIGHTS_ALLOWED_HOSTS": "mcp.example.com"}
    if "ITWIN_INSIGHTS_AUTH" in ENV_VARS:
        operator |= {"ITWIN_INSIGHTS_AUTH": "service", "ITWIN_INSIGHTS_API_KEYS": "test-key-0123456789"}
    env = {**_clean_env(child_env(sandbox_db)), **image_env, **operator, "ITWIN_INSIGHTS_PORT": port}
    env["INSIGHTS_SANDBOX_DB"] = sandbox_db
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process)
        (healthcheck,) = [args for instruction, args in _dockerfile() if instruction == "HEALTHCHECK"]
        probe = shlex.split(
            healthcheck.split(" CMD ", 1)[1].replace(f":{image_env['ITWIN_INSIGHTS_PORT']}/", f":{port}/")
        )
        assert probe[0] == "python"
        _run([str(installed / "python"), *probe[1:]], timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=10)

    for needed in sorted(operator.keys() - {"ITWIN_INSIGHTS_API_KEYS"}):
        without = {k: v for k, v in env.items() if k != needed}
        refused = subprocess.run(command, env=without, capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, (needed, refused.stderr)
        assert ("authentication" if needed == "ITWIN_INSIGHTS_AUTH" else needed) in refused.stderr


# -- the install recipes -------------------------------------------------------------------------------------------


def test_install_recipes_name_real_variables_flags_and_files() -> None:
    doc = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc, re.S)]
    assert len(blocks) >= 4
    for block in blocks:
        servers = block.get("mcpServers") or block["servers"]
        for server in servers.values():
            assert server["args"][-1] == "serve" and "itwin-insights-mcp" in server["args"]
            assert set(server.get("env", {})) <= set(ENV_VARS)
    assert set(re.findall(r"\b(?:ITWIN|INSIGHTS)_[A-Z_]+\b", doc)) <= set(ENV_VARS)
    serve_help = _run([sys.executable, "-m", "itwin_insights_mcp", "serve", "--help"]).stdout
    flags = set()
    for line in doc.splitlines():
        if "itwin-insights-mcp serve" in line and "sandbox serve" not in line:
            flags |= set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", line.split("itwin-insights-mcp serve", 1)[1]))
    assert {"--transport", "--host", "--port", "--read-only", "--toolsets", "--backend"} <= flags
    assert all(flag in serve_help for flag in flags), flags - {f for f in flags if f in serve_help}
    for link in re.findall(r"\]\((\.\./[^)#]+)\)", doc):
        assert (ROOT / "docs" / link).resolve().exists(), link
