"""One immutable Settings object: CLI flags win over environment variables, which win over defaults.

Each option is declared ONCE, as a `Settings` field made by `option(...)` or `computed(...)` (see `options.py`):
its environment variable, its flag on each subcommand, its description, whether it is a secret, and its allowed
values or range (choices also come from a `Literal` type). Everything else is generated from those declarations
(`OPTIONS`): `from_env`, the per-option half of `validate`, the CLI flags and `--help` (`cli.py`), the README's
configuration table (`markdown_table`, `python -m itwin_insights_mcp.settings`) and the registry's and bundle's
variable lists (`distribution.py`). Rules between options (pairs, what an auth mode needs) are declared once in
`RULES`. Secrets have no flag, so they never show in process lists.
"""

# option()/computed() return dataclasses.field(...): a field specifier, not a shared default value.
# ruff: noqa: RUF009

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir

from .errors import ConfigError
from .options import SERVE, Option, computed, declared_options, on, option, split_list

__all__ = [
    "ENV_DESCRIPTIONS",
    "ENV_VARS",
    "OPTIONS",
    "PROFILES",
    "RULES",
    "SECRET_ENV_VARS",
    "SERVE",
    "Backend",
    "Mode",
    "Option",
    "Settings",
    "Transport",
    "markdown_table",
    "options_for",
    "split_list",
]

Backend = Literal["auto", "sandbox", "bentley"]
Transport = Literal["stdio", "http"]
Mode = Literal["full", "compact"]
Profile = Literal["reporting-v1", "current", "all"]
AuthMode = Literal["none", "service", "oauth"]
TokenStore = Literal["auto", "keyring", "file"]

DEFAULT_REDIRECTS = (
    "http://127.0.0.1:*",
    "http://localhost:*",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
    "https://vscode.dev/redirect",
)

# The toolsets each profile exposes when --toolsets is not given (None: every toolset).
PROFILES: dict[str, tuple[str, ...] | None] = {
    "reporting-v1": ("context", "mappings", "properties", "extraction", "reports", "aggregations", "odata"),
    "current": ("context", "gm_mappings", "gm_extraction", "reports", "odata", "api_keys"),
    "all": None,
}

DEFAULT_API_BASE_URL = "https://api.bentley.com"
DEFAULT_AUTHORITY = "https://ims.bentley.com"
DEFAULT_SCOPES = "itwin-platform"

ACCOUNT = ("login", "logout", "whoami")  # the desktop sign-in commands
USER_DATA_FILE = "a file in the user data dir"


def default_export_dir() -> str:
    """Where export_odata_entity writes files unless configured (the user data dir)."""
    return str(Path(user_data_dir("itwin-insights-mcp", appauthor=False)) / "exports")


def default_state_db() -> str:
    """The hosted server's shared state (OAuth clients, sessions) unless configured."""
    return str(Path(user_data_dir("itwin-insights-mcp", appauthor=False)) / "state.db")


def default_sandbox_db() -> str:
    """The sandbox database file in the user data dir (created on first use)."""
    return str(Path(user_data_dir("itwin-insights-mcp", appauthor=False)) / "sandbox.db")


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to run; built once, passed down, never mutated."""

    backend: Backend = option(
        "auto",
        env="ITWIN_INSIGHTS_BACKEND",
        flags=on("--backend"),
        description="auto (Bentley when credentials exist, else sandbox), sandbox or bentley",
    )
    api_base_url: str = option(
        DEFAULT_API_BASE_URL, env="ITWIN_API_BASE_URL", flags=on("--api-base-url"), description="Bentley API host"
    )
    authority: str = option(
        DEFAULT_AUTHORITY,
        env="ITWIN_AUTHORITY",
        flags=on("--authority", SERVE, *ACCOUNT),
        description="IMS authority (token endpoint discovered from it)",
    )
    access_token: str | None = option(
        None, env="ITWIN_ACCESS_TOKEN", secret=True, description="a bearer token for the Bentley backend"
    )
    client_id: str | None = option(
        None, env="ITWIN_CLIENT_ID", flags=on("--client-id"), description="service-app client id"
    )
    client_secret: str | None = option(
        None, env="ITWIN_CLIENT_SECRET", secret=True, description="service-app client secret"
    )
    scopes: str = option(DEFAULT_SCOPES, env="ITWIN_SCOPES", flags=on("--scopes"), description="OAuth scopes")
    sandbox_db: str = computed(
        default_sandbox_db,
        env="INSIGHTS_SANDBOX_DB",
        flags={SERVE: "--sandbox-db", "sandbox serve": "--db", "sandbox generate": "--db"},
        shown_default=USER_DATA_FILE,
        path="file",
        description="sandbox SQLite file; :memory: for a throwaway one",
    )
    sandbox_token: str | None = option(
        None,
        env="INSIGHTS_SANDBOX_TOKEN",
        secret=True,
        description="make the HTTP sandbox accept only this bearer token (sandbox serve --token wins over it)",
    )
    sandbox_odata_page_size: int = option(
        1000,
        env="INSIGHTS_SANDBOX_ODATA_PAGE_SIZE",
        ge=1,
        le=100_000,
        description="rows per OData entity page in the sandbox",
    )
    sandbox_group_query_steps: int = option(
        1_000_000_000,
        env="INSIGHTS_SANDBOX_GROUP_QUERY_STEPS",
        ge=0,
        description="sandbox: SQLite steps one group query may take before that group fails (0: no limit)",
    )
    sandbox_group_seconds: float = option(
        120.0,
        env="INSIGHTS_SANDBOX_GROUP_SECONDS",
        gt=0,
        description="sandbox: seconds one group may compute before that group fails",
    )
    sandbox_extraction_seconds: float = option(
        1800.0,
        env="INSIGHTS_SANDBOX_EXTRACTION_SECONDS",
        gt=0,
        description="sandbox: seconds one extraction job may run before it ends Failed",
    )
    sandbox_max_cell_bytes: int = option(
        65_536,
        env="INSIGHTS_SANDBOX_MAX_CELL_BYTES",
        ge=1,
        description="sandbox: longest stored cell value in bytes (longer computed strings are stored as null, "
        "with a Warning)",
    )
    transport: Transport = option(
        "stdio", env="ITWIN_INSIGHTS_TRANSPORT", flags=on("--transport"), description="stdio or http"
    )
    host: str = option("127.0.0.1", env="ITWIN_INSIGHTS_HOST", flags=on("--host"), description="HTTP bind address")
    port: int = option(8000, env="ITWIN_INSIGHTS_PORT", flags=on("--port"), ge=1, le=65535, description="HTTP port")
    allowed_hosts: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_ALLOWED_HOSTS",
        flags=on("--allowed-hosts"),
        description="extra Host names accepted over HTTP (comma list)",
    )
    allowed_origins: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_ALLOWED_ORIGINS",
        flags=on("--allowed-origins"),
        description="extra Origins accepted over HTTP (comma list)",
    )
    read_only: bool = option(
        False,
        env="ITWIN_INSIGHTS_READ_ONLY",
        flags=on("--read-only", SERVE, "tools"),
        description="expose and allow only read tools (nothing re-enables writes)",
    )
    include_deprecated: bool = option(
        False,
        env="ITWIN_INSIGHTS_INCLUDE_DEPRECATED",
        flags=on("--include-deprecated"),
        description="also expose the deprecated per-iModel extraction status",
    )
    toolsets: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_TOOLSETS",
        flags=on("--toolsets", SERVE, "tools"),
        shown_default="the profile's",
        description="toolsets to expose (comma list; itwin-insights-mcp tools shows each tool's toolset)",
    )
    tools: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_TOOLS",
        flags=on("--tools"),
        description="single tools to expose (added to the toolsets; alone, only these)",
    )
    exclude_tools: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_EXCLUDE_TOOLS",
        flags=on("--exclude-tools"),
        description="tools to hide (wins over --tools and --toolsets)",
    )
    mode: Mode = option(
        "full",
        env="ITWIN_INSIGHTS_MODE",
        flags=on("--mode"),
        description="full (one tool per operation) or compact (two tools)",
    )
    profile: Profile = option(
        "reporting-v1",
        env="ITWIN_INSIGHTS_PROFILE",
        flags=on("--profile", SERVE, "tools", "capability"),
        description="reporting-v1 (the documented Insights API), current (as Bentley's tools work today) or all",
    )
    auth_mode: AuthMode = option(
        "none",
        env="ITWIN_INSIGHTS_AUTH",
        flags=on("--auth"),
        description="who may call the HTTP server: none (loopback only), service (API keys) or oauth",
    )
    api_keys: tuple[str, ...] = option(
        (),
        env="ITWIN_INSIGHTS_API_KEYS",
        secret=True,
        description="service mode: the keys callers present as bearer tokens (comma list)",
    )
    public_url: str | None = option(
        None,
        env="ITWIN_INSIGHTS_PUBLIC_URL",
        flags=on("--public-url"),
        description="oauth mode: the URL clients reach the server at (issuer and token audience)",
    )
    state_db: str = computed(
        default_state_db,
        env="ITWIN_INSIGHTS_STATE_DB",
        flags=on("--state-db"),
        shown_default=USER_DATA_FILE,
        description="oauth mode: the store every replica shares: a SQLite file (one node) or a postgresql:// URL "
        "(several nodes; pip install 'itwin-insights-mcp[postgres]')",
    )
    state_key: str | None = option(
        None,
        env="ITWIN_INSIGHTS_STATE_KEY",
        secret=True,
        description="oauth mode: Fernet key sealing users' IMS tokens at rest (same on every replica)",
    )
    redirect_allowlist: tuple[str, ...] = option(
        DEFAULT_REDIRECTS,
        env="ITWIN_INSIGHTS_REDIRECT_ALLOWLIST",
        shown_default="loopback, claude.ai, claude.com, vscode.dev",
        description="oauth mode: redirect URI patterns clients may register (comma list)",
    )
    desktop_client_id: str | None = option(
        None,
        env="ITWIN_DESKTOP_CLIENT_ID",
        flags=on("--client-id", *ACCOUNT),
        description="your native/desktop app's client id, for itwin-insights-mcp login",
    )
    token_store: TokenStore = option(
        "auto",
        env="ITWIN_INSIGHTS_TOKEN_STORE",
        description="where login keeps the refresh token: auto (OS keyring, else a 0600 file), keyring or file",
    )
    desktop_login: bool = option(
        False, description="a stored `itwin-insights-mcp login` exists (found by the CLI at start-up, not set)"
    )
    export_dir: str = computed(
        default_export_dir,
        env="ITWIN_INSIGHTS_EXPORT_DIR",
        flags=on("--export-dir"),
        shown_default="a folder in the user data dir",
        path="directory",
        description="the only folder export_odata_entity writes to",
    )
    max_rows: int = option(
        50,
        env="ITWIN_INSIGHTS_MAX_ROWS",
        flags=on("--max-rows"),
        ge=1,
        le=1000,
        description="OData rows kept in one tool result (the rest: next page or export)",
    )
    max_result_bytes: int = option(
        262_144,
        env="ITWIN_INSIGHTS_MAX_RESULT_BYTES",
        flags=on("--max-result-bytes"),
        ge=4096,
        le=16_777_216,
        description="largest tool result in bytes; longer lists and values are trimmed with a note saying how to "
        "get the rest",
    )
    http_sessions: bool = option(
        False,
        env="ITWIN_INSIGHTS_HTTP_SESSIONS",
        flags=on("--http-sessions"),
        description="serve HTTP with MCP sessions (Mcp-Session-Id) instead of stateless: 2025-era clients can then "
        "cancel calls; replicas need sticky sessions",
    )
    timeout_seconds: float = option(
        30.0,
        env="ITWIN_INSIGHTS_TIMEOUT",
        gt=0,
        le=3600,
        description="total seconds one upstream request may take (connect, send, read), per attempt",
    )
    max_retries: int = option(
        3,
        env="ITWIN_INSIGHTS_MAX_RETRIES",
        description="retries of 429 (any method) and of 502/503/504 or connection errors (GET/PUT/DELETE only)",
    )
    max_retry_wait_seconds: float = option(
        60.0, description="longest Retry-After wait honoured between attempts (not configurable from outside)"
    )
    log_level: str = option(
        "INFO",
        env="ITWIN_INSIGHTS_LOG_LEVEL",
        flags=on("--log-level"),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        uppercase=True,
        description="log level (logs go to stderr)",
    )

    @property
    def resolved_backend(self) -> Literal["sandbox", "bentley"]:
        """`auto` means Bentley when credentials exist, else the sandbox."""
        if self.backend != "auto":
            return self.backend
        has_credentials = bool(self.access_token) or bool(self.client_id and self.client_secret) or self.desktop_login
        return "bentley" if has_credentials else "sandbox"

    def validate(self) -> Settings:
        """Reject values and combinations that cannot work, with the fix in the message."""
        for declared in OPTIONS:
            problem = declared.problem(getattr(self, declared.name))
            if problem:
                raise ConfigError(problem)
        for rule in RULES:
            rule(self)
        return self

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given non-None fields replaced (how CLI flags are applied)."""
        unknown = set(changes) - set(_BY_NAME)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the declared environment variables; unset or empty ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for declared in OPTIONS:
            raw = env.get(declared.env, "").strip() if declared.env else ""
            if raw:
                values[declared.name] = declared.parse(raw, declared.env or declared.name)
        return cls().with_overrides(**values)


OPTIONS: tuple[Option, ...] = declared_options(Settings)
_BY_NAME = {declared.name: declared for declared in OPTIONS}


def options_for(command: str) -> tuple[Option, ...]:
    """The options that have a flag on one subcommand, in declaration order."""
    return tuple(declared for declared in OPTIONS if declared.flag(command))


@dataclass(frozen=True)
class Needs:
    """When option `when` has the value `value`, every option in `needed` must be set."""

    when: str
    value: str
    needed: tuple[str, ...]

    def __call__(self, settings: Settings) -> None:
        if getattr(settings, self.when) != self.value:
            return
        missing = [_BY_NAME[name].env or name for name in self.needed if not getattr(settings, name)]
        if missing:
            flag = _BY_NAME[self.when].flag(SERVE) or _BY_NAME[self.when].env
            raise ConfigError(f"{flag} {self.value} needs {', '.join(missing)} (see the README's hosting section).")


@dataclass(frozen=True)
class Pair:
    """Both options or neither, unless option `unless` is set; `what` names the pair in the message."""

    first: str
    second: str
    unless: str
    what: str

    def __call__(self, settings: Settings) -> None:
        one, other = bool(getattr(settings, self.first)), bool(getattr(settings, self.second))
        if one != other and not getattr(settings, self.unless):
            names = [_BY_NAME[name].env for name in (self.first, self.second, self.unless)]
            raise ConfigError(f"Set both {names[0]} and {names[1]} ({self.what}), or {names[2]}.")


def _bentley_needs_credentials(settings: Settings) -> None:
    signed_in = settings.access_token or (settings.client_id and settings.client_secret) or settings.desktop_login
    if settings.backend == "bentley" and not signed_in:
        raise ConfigError(
            "Backend 'bentley' needs credentials: run `itwin-insights-mcp login`, or set ITWIN_ACCESS_TOKEN, or "
            "ITWIN_CLIENT_ID and ITWIN_CLIENT_SECRET. Use --backend sandbox to try it without a Bentley account."
        )


# The rules between options, checked in this order after every option's own choices and range.
RULES: tuple[Callable[[Settings], None], ...] = (
    Needs("auth_mode", "service", ("api_keys",)),
    Needs("auth_mode", "oauth", ("public_url", "client_id", "client_secret", "state_key")),
    Pair("client_id", "client_secret", unless="access_token", what="service app"),
    _bentley_needs_credentials,
)

# Views kept for the code that reads variables by name (capability document, packaging tests).
ENV_VARS: dict[str, tuple[str, str]] = {o.env: (o.name, o.kind) for o in OPTIONS if o.env}
ENV_DESCRIPTIONS: dict[str, str] = {o.env: o.description for o in OPTIONS if o.env}
SECRET_ENV_VARS = frozenset(o.env for o in OPTIONS if o.env and o.secret)


def _flag_cell(declared: Option) -> str:
    if declared.secret:
        return "(env only)"
    serve_flag = declared.flag(SERVE)
    if serve_flag:
        return f"`{serve_flag}`"
    return next((f"`{command} {flag}`" for command, flag in declared.flags), "")


def markdown_table() -> str:
    """The README's configuration table (a test keeps the README equal to it)."""
    lines = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for declared in OPTIONS:
        if declared.env:
            cells = (f"`{declared.env}`", _flag_cell(declared), declared.shown(), declared.explained())
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
