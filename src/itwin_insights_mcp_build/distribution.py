"""Distribution metadata generated from the code, never hand-copied: the MCP registry's `server.json` and the
Claude Desktop bundle's (MCPB) `manifest.json` plus the bundle's own `pyproject.toml`.

The registry entry's environment variables come from `settings.ENV_VARS` / `ENV_DESCRIPTIONS` / `SECRET_ENV_VARS`
(what the CLI reads), the bundle's tool list from the server's own selection code with default settings (what
`tools/list` returns), and every version from `itwin_insights_mcp.__version__`.

`python -m itwin_insights_mcp_build.distribution server-json OUTDIR` writes `OUTDIR/server.json`;
`python -m itwin_insights_mcp_build.distribution mcpb-manifest OUTDIR` writes `OUTDIR/manifest.json` and
`OUTDIR/pyproject.toml` (the bundle's). `packaging/build.sh` runs both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from itwin_insights_mcp import __version__
from itwin_insights_mcp.settings import ENV_DESCRIPTIONS, ENV_VARS, SECRET_ENV_VARS, Settings

__all__ = [
    "BUNDLE_ENTRY_POINT",
    "MCPB_MANIFEST_VERSION",
    "PACKAGE_NAME",
    "REGISTRY_SCHEMA_URL",
    "SERVER_NAME",
    "STDIO_EXCLUDED_ENV_VARS",
    "USER_CONFIG_ENV",
    "bundle_pyproject",
    "main",
    "mcpb_manifest",
    "server_json",
    "wheel_filename",
]

PACKAGE_NAME = "itwin-insights-mcp"
# The registry name: reverse DNS, namespace `io.github.<owner>` proven by GitHub login of that owner, and the PyPI
# README must carry `mcp-name: <this>` for the registry to accept the PyPI package as ours.
SERVER_NAME = "io.github.itwin-insights-mcp/itwin-insights-mcp"
REGISTRY_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
TITLE = "iTwin Insights"
# At most 100 characters (the registry schema's limit).
SHORT_DESCRIPTION = "Bentley iTwin Insights (Reporting) API: mappings, extraction, reports, OData; offline sandbox."
AUTHOR = "itwin-insights-mcp developers"
KEYWORDS = ("mcp", "itwin", "bentley", "insights", "reporting", "odata")
REQUIRES_PYTHON = ">=3.11"

# MCPB manifest 0.4 is the first with `server.type = "uv"` (and the newest @anthropic-ai/mcpb 2.1.2 validates).
MCPB_MANIFEST_VERSION = "0.4"
BUNDLE_ENTRY_POINT = "server/main.py"
BUNDLE_WHEEL_DIR = "wheels"

# Not offered in the registry's stdio package entry: they configure the HTTP transport and its caller
# authentication (setting ITWIN_INSIGHTS_TRANSPORT=http would break a stdio client) or the standalone HTTP sandbox,
# not `serve` over stdio. Names not (yet) among the settings are simply absent from ENV_VARS.
STDIO_EXCLUDED_ENV_VARS = frozenset(
    {
        "ITWIN_INSIGHTS_TRANSPORT",
        "ITWIN_INSIGHTS_HOST",
        "ITWIN_INSIGHTS_PORT",
        "ITWIN_INSIGHTS_ALLOWED_HOSTS",
        "ITWIN_INSIGHTS_ALLOWED_ORIGINS",
        "ITWIN_INSIGHTS_AUTH",
        "ITWIN_INSIGHTS_API_KEYS",
        "ITWIN_INSIGHTS_PUBLIC_URL",
        "ITWIN_INSIGHTS_STATE_DB",
        "ITWIN_INSIGHTS_STATE_KEY",
        "ITWIN_INSIGHTS_REDIRECT_ALLOWLIST",
        "INSIGHTS_SANDBOX_TOKEN",
    }
)
# Settings typed as a Literal (backend, transport, mode, ...) offer exactly its values; the log level is a plain str.
_CHOICES: dict[str, tuple[str, ...]] = {
    name: tuple(str(v) for v in get_args(hint))
    for name, hint in get_type_hints(Settings).items()
    if get_origin(hint) is Literal
} | {"log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}
_FILEPATHS = frozenset({"sandbox_db"})


def wheel_filename(version: str = __version__) -> str:
    """The pure-Python wheel the build produces (normalised project name, any Python 3, any platform)."""
    return f"{PACKAGE_NAME.replace('-', '_')}-{version}-py3-none-any.whl"


def _default_text(attr: str, kind: str) -> str | None:
    """The Settings default as the string an environment variable would carry, or None when there is none.

    Defaults computed at run time (a `default_factory`: paths in the user data dir) depend on the machine, so the
    registry only describes them.
    """
    default = next(f.default for f in fields(Settings) if f.name == attr)
    if default is MISSING or default is None or default == () or default == "":
        return None
    if kind == "bool":
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)  # a comma list, as the variable is read
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _environment_variable(name: str) -> dict[str, Any]:
    attr, kind = ENV_VARS[name]
    entry: dict[str, Any] = {
        "name": name,
        "description": ENV_DESCRIPTIONS[name],
        "isRequired": False,
        "isSecret": name in SECRET_ENV_VARS,
    }
    if kind == "bool":
        entry["format"] = "boolean"
    elif kind in ("int", "float"):
        entry["format"] = "number"
    elif attr in _FILEPATHS:
        entry["format"] = "filepath"
    else:
        entry["format"] = "string"
    default = _default_text(attr, kind)
    if default is not None:
        entry["default"] = default
    if attr in _CHOICES:
        entry["choices"] = list(_CHOICES[attr])
    return entry


def server_json() -> dict[str, Any]:
    """The MCP registry entry (schema 2025-12-11): the PyPI package, run with `uvx itwin-insights-mcp serve`."""
    return {
        "$schema": REGISTRY_SCHEMA_URL,
        "name": SERVER_NAME,
        "title": TITLE,
        "description": SHORT_DESCRIPTION,
        "version": __version__,
        "packages": [
            {
                "registryType": "pypi",
                "registryBaseUrl": "https://pypi.org",
                "identifier": PACKAGE_NAME,
                "version": __version__,
                "runtimeHint": "uvx",
                "transport": {"type": "stdio"},
                "packageArguments": [{"type": "positional", "value": "serve"}],
                "environmentVariables": [
                    _environment_variable(name) for name in ENV_VARS if name not in STDIO_EXCLUDED_ENV_VARS
                ],
            }
        ],
    }


def _tools() -> list[dict[str, str]]:
    """What `tools/list` shows with default settings, computed by the server's own selection code."""
    from itwin_insights_mcp.api.catalog import load_catalog
    from itwin_insights_mcp.server.app import selection_for
    from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS
    from itwin_insights_mcp.server.tools import ToolSurface

    catalog = load_catalog()
    selection = selection_for(Settings()).validate(catalog, LOCAL_TOOLS)
    surface = ToolSurface(catalog, selection, local_tools=LOCAL_TOOLS)
    return [{"name": tool.name, "description": tool.description or tool.name} for tool in surface.tools]


def _user_config() -> dict[str, dict[str, Any]]:
    return {
        "backend": {
            "type": "string",
            "title": "Backend",
            "description": "auto (Bentley when credentials are set, else the offline sandbox), sandbox or bentley.",
            "default": _default_text("backend", "str"),
            "required": False,
        },
        "client_id": {
            "type": "string",
            "title": "Client ID",
            "description": "Bentley service-app client id (with the client secret). Leave empty for the sandbox.",
            "required": False,
        },
        "client_secret": {
            "type": "string",
            "title": "Client secret",
            "description": "Bentley service-app client secret. Stored in the OS keychain, never logged.",
            "sensitive": True,
            "required": False,
        },
        "access_token": {
            "type": "string",
            "title": "Access token",
            "description": "A Bentley bearer token instead of a service app (expires after about an hour).",
            "sensitive": True,
            "required": False,
        },
        "api_base_url": {
            "type": "string",
            "title": "API base URL",
            "description": "The Bentley API host.",
            "default": _default_text("api_base_url", "str"),
            "required": False,
        },
        "export_dir": {
            "type": "directory",
            "title": "Export directory",
            "description": "The only folder export_odata_entity writes CSV/JSON Lines files to. "
            "Empty: a folder in the app's data directory.",
            "required": False,
        },
        "read_only": {
            "type": "boolean",
            "title": "Read-only",
            "description": "Expose and allow only the read tools.",
            "default": False,
            "required": False,
        },
    }


# Each bundle setting -> the environment variable of the Settings field of the same name.
USER_CONFIG_ENV = {
    "backend": "ITWIN_INSIGHTS_BACKEND",
    "client_id": "ITWIN_CLIENT_ID",
    "client_secret": "ITWIN_CLIENT_SECRET",
    "access_token": "ITWIN_ACCESS_TOKEN",
    "api_base_url": "ITWIN_API_BASE_URL",
    "export_dir": "ITWIN_INSIGHTS_EXPORT_DIR",
    "read_only": "ITWIN_INSIGHTS_READ_ONLY",
}


def mcpb_manifest() -> dict[str, Any]:
    """The Claude Desktop bundle manifest (MCPB 0.4, server type `uv`): the host runs `uv` on the bundle's
    pyproject, which installs this package from the wheel inside the bundle."""
    env = {variable: f"${{user_config.{key}}}" for key, variable in USER_CONFIG_ENV.items()}
    return {
        "manifest_version": MCPB_MANIFEST_VERSION,
        "name": PACKAGE_NAME,
        "display_name": TITLE,
        "version": __version__,
        "description": SHORT_DESCRIPTION,
        "long_description": (
            "One tool per iTwin Insights (Reporting) API operation, plus tools that wait for extractions, export "
            "whole OData tables to files, read the skills bundle and report the backend. With no Bentley "
            "credentials the server uses its built-in sandbox: a persistent emulator of the same API with sample "
            "iModels, so everything works offline."
        ),
        "author": {"name": AUTHOR},
        "server": {
            "type": "uv",
            "entry_point": BUNDLE_ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "python", BUNDLE_ENTRY_POINT],
                "env": env,
            },
        },
        "tools": _tools(),
        "prompts_generated": True,
        "keywords": list(KEYWORDS),
        "license": "MIT",
        "compatibility": {
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": REQUIRES_PYTHON},
        },
        "user_config": _user_config(),
    }


def bundle_pyproject() -> str:
    """The bundle's pyproject: no code of its own, one dependency on this package's wheel shipped in the bundle."""
    return (
        "# Generated by `python -m itwin_insights_mcp_build.distribution mcpb-manifest`; do not edit.\n"
        "# The MCPB `uv` runtime syncs this project: it installs itwin-insights-mcp from the wheel in the bundle\n"
        "# and its dependencies from PyPI.\n"
        "[project]\n"
        f'name = "{PACKAGE_NAME}-bundle"\n'
        f'version = "{__version__}"\n'
        f'requires-python = "{REQUIRES_PYTHON}"\n'
        f'dependencies = ["{PACKAGE_NAME}=={__version__}"]\n'
        "\n"
        "[tool.uv]\n"
        "package = false\n"
        "\n"
        "[tool.uv.sources]\n"
        f'{PACKAGE_NAME} = {{ path = "{BUNDLE_WHEEL_DIR}/{wheel_filename()}" }}\n'
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated files into OUTDIR; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m itwin_insights_mcp_build.distribution", description=__doc__)
    parser.add_argument("what", choices=["server-json", "mcpb-manifest"], help="which file(s) to generate")
    parser.add_argument("outdir", type=Path, help="directory to write into (created if missing)")
    args = parser.parse_args(argv)
    outdir: Path = args.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    if args.what == "server-json":
        _write_json(outdir / "server.json", server_json())
        written = ["server.json"]
    else:
        _write_json(outdir / "manifest.json", mcpb_manifest())
        (outdir / "pyproject.toml").write_text(bundle_pyproject(), encoding="utf-8")
        written = ["manifest.json", "pyproject.toml"]
    print(f"wrote {', '.join(str(outdir / name) for name in written)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
