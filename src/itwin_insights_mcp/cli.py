"""The `itwin-insights-mcp` command: serve (stdio | http), sandbox serve/generate, demo, tools.

`main(argv)` takes its arguments so tests call it directly; `entrypoint()` only passes `sys.argv[1:]`.
Errors the user can fix end as one line on stderr with a TIP and exit code 2; nothing but protocol goes to stdout
while serving stdio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import ConfigError, InsightsError
from .settings import OPTIONS, SECRET_ENV_VARS, SERVE, Option, Settings, options_for, split_list

__all__ = ["entrypoint", "main"]

log = logging.getLogger("itwin_insights_mcp")


def _help(option: Option) -> str:
    """A flag's help: the option's description, its default and its variable (argparse needs % doubled)."""
    default = option.shown().replace("`", "")
    text = option.explained() + (f" (default {default})" if default else "") + f" [env {option.env}]"
    return text.replace("%", "%%")


def _add_setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the flag of every option declared for `command`; unset flags stay None so variables still apply."""
    for option in options_for(command):
        flag = option.flag(command)
        assert flag is not None
        if option.kind == "bool":
            parser.add_argument(flag, dest=option.name, action="store_true", default=None, help=_help(option))
            continue
        converters: dict[str, Callable[[str], object]] = {"int": int, "float": float, "list": split_list}
        convert = converters.get(option.kind, str.upper if option.uppercase else str)
        parser.add_argument(
            flag,
            dest=option.name,
            type=convert,
            choices=option.choices or None,
            metavar=None if option.choices else flag.lstrip("-").upper().replace("-", "_"),
            help=_help(option),
        )


def _environment_only() -> str:
    """The `serve --help` epilog: every variable without a serve flag, so --help names every setting."""
    lines = ["variables without a serve flag:"]
    for option in OPTIONS:
        if option.env and not option.flag(SERVE):
            default = option.shown().replace("`", "")
            lines.append(f"  {option.env}  {option.explained()}" + (f" (default {default})" if default else ""))
    return "\n".join(lines)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="itwin-insights-mcp",
        description="MCP server for Bentley iTwin Insights (Reporting). With no credentials it uses the offline "
        f"sandbox. Secrets ({', '.join(sorted(SECRET_ENV_VARS))}) are read from the environment only, never "
        "from serve's flags, so they do not show in process lists.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the MCP server (stdio by default)",
        epilog=_environment_only(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_setting_flags(serve, "serve")

    sandbox = sub.add_parser("sandbox", help="the offline emulator of the Insights API")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND")
    sb_serve = sandbox_sub.add_parser("serve", help="serve the sandbox API over HTTP")
    sb_serve.add_argument(
        "--host", dest="bind_host", metavar="HOST", default="127.0.0.1", help="bind address (default 127.0.0.1)"
    )
    sb_serve.add_argument(
        "--port", dest="bind_port", metavar="PORT", type=int, default=8765, help="port (default 8765)"
    )
    _add_setting_flags(sb_serve, "sandbox serve")
    sb_serve.add_argument("--token", help="accept only this bearer token (default: any non-empty token)")
    sb_serve.add_argument(
        "--record",
        action="store_true",
        help="log each request's method, path, caller and body in the database (for tests)",
    )
    sb_gen = sandbox_sub.add_parser("generate", help="add a generated iModel of N elements (for benchmarks)")
    sb_gen.add_argument("--elements", type=int, required=True, help="number of physical elements")
    _add_setting_flags(sb_gen, "sandbox generate")
    sb_gen.add_argument("--name", default=None, help="iModel display name")
    sb_gen.add_argument("--seed", type=int, default=0, help="random seed (same seed, same iModel)")

    login = sub.add_parser("login", help="sign in to Bentley (browser, PKCE) and keep a refresh token")
    _add_setting_flags(login, "login")
    login.add_argument(
        "--scopes", dest="login_scopes", metavar="SCOPES", help="scopes (default: itwin-platform offline_access)"
    )
    login.add_argument(
        "--port", dest="login_port", type=int, default=0, help="loopback port for the redirect (default: any free)"
    )
    login.add_argument(
        "--redirect-uri", help="a registered loopback redirect URI, e.g. http://localhost:3000/signin-callback"
    )
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    login.add_argument("--timeout", type=float, default=300, help="seconds to wait for the sign-in")
    for name, text in (("logout", "revoke and forget the stored sign-in"), ("whoami", "who is signed in")):
        command = sub.add_parser(name, help=text)
        _add_setting_flags(command, name)
        if name == "whoami":
            command.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("demo", help="run the whole workflow against a fresh sandbox and print what it made")
    tools = sub.add_parser("tools", help="list the tools this server exposes")
    tools.add_argument("--markdown", action="store_true", help="print the README's tool table")
    _add_setting_flags(tools, "tools")
    capability = sub.add_parser("capability", help="write the Naftiko capability document of a profile (YAML)")
    _add_setting_flags(capability, "capability")
    capability.add_argument("--output", help="file to write (default: stdout)")
    return parser


def _command(args: argparse.Namespace) -> str:
    """The subcommand as options name it: `serve`, `sandbox serve`, `login`, ..."""
    return " ".join(part for part in (args.command, getattr(args, "sandbox_command", None)) if part)


def _settings_from(args: argparse.Namespace) -> Settings:
    flags = {option.name: getattr(args, option.name, None) for option in options_for(_command(args))}
    settings = Settings.from_env().with_overrides(**flags)
    if settings.backend != "sandbox" and not settings.access_token and not settings.client_secret:
        from .api.credentials import remembered_login

        settings = settings.with_overrides(
            desktop_login=remembered_login(settings.authority, settings.desktop_client_id, settings.token_store)
        )
    return settings.validate()


def _configure_logging(level: str) -> None:
    from .logs import FORMAT, RequestContextFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level.upper())  # the package logger may pass DEBUG for MCP clients that ask (client_logs.py)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for noisy in ("httpx", "httpx2", "httpcore"):  # their INFO lines carry full URLs on every call
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve(settings: Settings) -> None:
    from .backend import open_client
    from .server.app import build_server

    async with open_client(settings) as client:
        if settings.transport == "stdio":
            from .server.stdio import serve_stdio

            await serve_stdio(build_server(settings, client))
            return
        import uvicorn

        from .hosted.modes import hosted_auth
        from .server.http import create_http_app

        hosted = hosted_auth(settings)
        server = build_server(settings, client, user_tokens=hosted.user_tokens)
        app = create_http_app(settings, server, hosted)
        log.info("Serving MCP over streamable HTTP at http://%s:%s/mcp", settings.host, settings.port)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, lifespan="on")
        await uvicorn.Server(config).serve()


async def _serve_sandbox(host: str, port: int, settings: Settings, token: str | None, record: bool) -> None:
    import uvicorn

    from .sandbox.app import create_app
    from .sandbox.engine.jobs import SandboxLimits

    db = settings.sandbox_db
    app = create_app(
        db_path=db,
        token=token,
        odata_page_size=settings.sandbox_odata_page_size,
        record=record,
        limits=SandboxLimits.from_settings(settings),
    )
    log.info("Sandbox API at http://%s:%s (db %s)", host, port, db)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    await uvicorn.Server(config).serve()


def _generate(db: str, elements: int, name: str | None, seed: int) -> None:
    from .sandbox.imodels.seed import add_generated_imodel

    imodel_id, count = add_generated_imodel(db, elements=elements, name=name, seed=seed)
    print(f"Generated iModel {imodel_id} with {count} elements in {db}")


def tools_markdown() -> str:
    """The README's tool table, generated from the catalog (a test keeps the README in step)."""
    from .api.catalog import load_catalog

    lines = ["| Toolset | Tool | Kind | Operation | What it does |", "|---|---|---|---|---|"]
    for op in load_catalog():
        kind = "read" if op.read_only else "write"
        if op.deprecated:
            kind += ", deprecated (off by default)"
        lines.append(f"| {op.toolset} | `{op.tool}` | {kind} | `{op.method} {op.full_path}` | {op.description} |")
    return "\n".join(lines)


def _print_tools(settings: Settings, markdown: bool) -> None:
    from .api.catalog import load_catalog
    from .server.app import selection_for
    from .server.tools import ToolSurface

    if markdown:
        print(tools_markdown())
        return
    catalog = load_catalog()
    surface = ToolSurface(catalog, selection_for(settings).validate(catalog))
    for tool in surface.tools:
        op = surface.get(tool.name)
        assert op is not None
        kind = "read " if op.read_only else "WRITE"
        print(f"{op.toolset:<13} {kind} {tool.name:<32} {op.method:<6} {op.full_path}")
    print(f"{len(surface.tools)} tools")


def _account(args: argparse.Namespace, settings: Settings) -> int:
    """login / logout / whoami: the desktop sign-in, printed without ever showing a token."""
    from .api import desktop_auth

    store = desktop_auth.default_store(settings.token_store)
    if args.command == "login":
        if not settings.desktop_client_id:
            raise ConfigError("Set ITWIN_DESKTOP_CLIENT_ID (or --client-id) to your native/desktop app's client id.")

        def show(url: str) -> None:
            print(f"Open this URL to sign in:\n{url}", file=sys.stderr)
            if not args.no_browser:
                import webbrowser

                webbrowser.open(url)

        result = asyncio.run(
            desktop_auth.login(
                settings.authority,
                settings.desktop_client_id,
                args.login_scopes or desktop_auth.desktop_scopes(settings.scopes),
                open_browser=show,
                port=args.login_port,
                redirect_uri=args.redirect_uri,
                timeout=args.timeout,
                store=store,
            )
        )
        info = result.to_dict()
        print(
            f"Signed in as {info.get('email') or info.get('subject')} (scopes {info.get('scopes')}); "
            f"kept in {info.get('location')}."
        )
        return 0
    if args.command == "logout":
        done = asyncio.run(desktop_auth.logout(settings.authority, settings.desktop_client_id, store=store))
        print("Signed out." if done.signed_out else "Nobody was signed in.", done.note or "")
        return 0
    info = desktop_auth.whoami(settings.authority, settings.desktop_client_id, store=store)
    if args.json:
        import json

        print(json.dumps(info, indent=1))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0 if info.get("signed_in") else 1


def _capability(profile: str, output: str | None) -> int:
    """Write the Naftiko capability document: build-time code, imported only here and only from a source checkout
    (`pip install -e .`), since the wheel ships without `itwin_insights_mcp_build`."""
    try:
        from itwin_insights_mcp_build.capability import write
    except ImportError:
        print(
            "error: `capability` generates a build artefact and needs a source checkout of itwin-insights-mcp "
            '(pip install -e ".[test]"); the installed package does not include the generator.',
            file=sys.stderr,
        )
        return 2
    write(profile, output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings_from(args)
        _configure_logging(settings.log_level)
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "sandbox" and args.sandbox_command == "serve":
            asyncio.run(
                _serve_sandbox(
                    args.bind_host, args.bind_port, settings, args.token or settings.sandbox_token, args.record
                )
            )
        elif args.command == "sandbox" and args.sandbox_command == "generate":
            _generate(settings.sandbox_db, args.elements, args.name, args.seed)
        elif args.command in ("login", "logout", "whoami"):
            return _account(args, settings)
        elif args.command == "demo":
            from .demo import run_demo

            asyncio.run(run_demo())
        elif args.command == "tools":
            _print_tools(settings, args.markdown)
        elif args.command == "capability":
            return _capability(settings.profile, args.output)
        else:
            parser.print_help(sys.stderr)
            return 2
    except ConfigError as exc:
        print(f"error: {exc}\nTIP: run `itwin-insights-mcp --help` for the options and variables.", file=sys.stderr)
        return 2
    except InsightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))
