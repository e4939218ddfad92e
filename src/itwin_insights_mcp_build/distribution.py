"""Distribution metadata generated from the code, never hand-copied: the MCP registry's `server.json` and the
Claude Desktop bundle's (MCPB) `manifest.json` plus the bundle's own `pyproject.toml`.

The registry entry's environment variables come from the settings' declarations (`settings.OPTIONS`: what the CLI
reads), the bundle's tool list from the server's own selection code with default settings (what
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
from pathlib import Path
from typing import Any

from itwin_insights_mcp import __version__
from itwin_insights_mcp.settings import OPTIONS, Option, Settings

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
# not `serve` over stdio. Names not (yet) among the settings are simply absent from the declarations.
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


def wheel_filename(version: str = __version__) -> str:
    """The pure-Python wheel the build produces (normalised project name, any Python 3, any platform)."""
    return f"{PACKAGE_NAME.replace('-', '_')}-{version}-py3-none-any.whl"


def _default_text(name: str) -> str | None:
    """The default of the setting `name` as its environment variable would carry it (None: empty or computed)."""
    return next(option.env_default() for option in OPTIONS if option.name == name)


def _environment_variable(option: Option) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": option.env,
        "description": option.description,
        "isRequired": False,
        "isSecret": option.secret,
    }
    if option.kind == "bool":
        entry["format"] = "boolean"
    elif option.kind in ("int", "float"):
        entry["format"] = "number"
    elif option.path == "file":
        entry["format"] = "filepath"
    else:
        entry["format"] = "string"
    default = option.env_default()
    if default is not None:
        entry["default"] = default
    if option.choices:
        entry["choices"] = list(option.choices)
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
                    _environment_variable(option)
                    for option in OPTIONS
                    if option.env and option.env not in STDIO_EXCLUDED_ENV_VARS
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


# The bundle's settings screen in Claude Desktop: the title and help of each setting offered there (UI copy). The
# variable, type, secrecy and default of each come from the settings' declarations.
_BUNDLE_COPY: dict[str, tuple[str, str]] = {
    "backend": ("Backend", "auto (Bentley when credentials are set, else the offline sandbox), sandbox or bentley."),
    "client_id": (
        "Client ID",
        "Bentley service-app client id (with the client secret). Leave empty for the sandbox.",
    ),
    "client_secret": ("Client secret", "Bentley service-app client secret. Stored in the OS keychain, never logged."),
    "access_token": (
        "Access token",
        "A Bentley bearer token instead of a service app (expires after about an hour).",
    ),
    "api_base_url": ("API base URL", "The Bentley API host."),
    "export_dir": (
        "Export directory",
        "The only folder export_odata_entity writes CSV/JSON Lines files to. "
        "Empty: a folder in the app's data directory.",
    ),
    "read_only": ("Read-only", "Expose and allow only the read tools."),
}
_BUNDLE_OPTIONS = {option.name: option for option in OPTIONS if option.name in _BUNDLE_COPY}


def _user_config() -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {}
    for name, (title, text) in _BUNDLE_COPY.items():
        option = _BUNDLE_OPTIONS[name]
        kind = "boolean" if option.kind == "bool" else option.path or "string"
        entry: dict[str, Any] = {"type": kind, "title": title, "description": text}
        default = option.default if option.kind == "bool" else option.env_default()
        if default is not None:
            entry["default"] = default
        if option.secret:
            entry["sensitive"] = True
        config[name] = entry | {"required": False}
    return config


# Each bundle setting -> the environment variable of the Settings field of the same name.
USER_CONFIG_ENV: dict[str, str] = {name: str(_BUNDLE_OPTIONS[name].env) for name in _BUNDLE_COPY}


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
