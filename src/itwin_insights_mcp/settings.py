"""One immutable Settings object: CLI flags win over environment variables, which win over defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, cast

from platformdirs import user_data_dir

from .errors import ConfigError

__all__ = ["ENV_DESCRIPTIONS", "ENV_VARS", "PROFILES", "SECRET_ENV_VARS", "Backend", "Mode", "Settings", "Transport"]

Backend = Literal["auto", "sandbox", "bentley"]
Transport = Literal["stdio", "http"]
Mode = Literal["full", "compact"]
Profile = Literal["reporting-v1", "current", "all"]
AuthMode = Literal["none", "service", "oauth"]

DEFAULT_REDIRECTS = (
    "http://127.0.0.1:*",
    "http://localhost:*",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
    "https://vscode.dev/redirect",
)

# The toolsets each profile exposes when --toolsets is not given (None: every toolset).
PROFILES: dict[str, tuple[str, ...] | None] = {
    "reporting-v1": (
        "context",
        "mappings",
        "properties",
        "extraction",
        "reports",
        "aggregations",
        "odata",
        "imodel_query",
    ),
    "current": ("context", "gm_mappings", "gm_extraction", "reports", "odata", "api_keys", "imodel_query"),
    "all": None,
}

DEFAULT_API_BASE_URL = "https://api.bentley.com"
DEFAULT_AUTHORITY = "https://ims.bentley.com"
DEFAULT_SCOPES = "itwin-platform"


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

    backend: Backend = "auto"
    api_base_url: str = DEFAULT_API_BASE_URL
    authority: str = DEFAULT_AUTHORITY
    access_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scopes: str = DEFAULT_SCOPES
    sandbox_db: str = field(default_factory=default_sandbox_db)
    sandbox_token: str | None = field(default=None, repr=False)
    sandbox_odata_page_size: int = 1000
    sandbox_group_query_steps: int = 1_000_000_000
    sandbox_group_seconds: float = 120.0
    sandbox_extraction_seconds: float = 1800.0
    sandbox_max_cell_bytes: int = 65_536
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    read_only: bool = False
    include_deprecated: bool = False
    toolsets: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()
    mode: Mode = "full"
    profile: Profile = "reporting-v1"
    auth_mode: AuthMode = "none"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    public_url: str | None = None
    state_db: str = field(default_factory=default_state_db)
    state_key: str | None = field(default=None, repr=False)
    redirect_allowlist: tuple[str, ...] = DEFAULT_REDIRECTS
    desktop_client_id: str | None = None
    token_store: str = "auto"  # noqa: S105 - a storage choice, not a secret
    desktop_login: bool = False  # a stored `itwin-insights-mcp login` exists (found by the CLI at start-up)
    export_dir: str = field(default_factory=default_export_dir)
    max_rows: int = 50
    max_result_bytes: int = 262_144
    http_sessions: bool = False
    timeout_seconds: float = 30.0
    max_retries: int = 3
    max_retry_wait_seconds: float = 60.0
    log_level: str = "INFO"

    @property
    def resolved_backend(self) -> Literal["sandbox", "bentley"]:
        """`auto` means Bentley when credentials exist, else the sandbox."""
        if self.backend != "auto":
            return self.backend
        has_credentials = bool(self.access_token) or bool(self.client_id and self.client_secret) or self.desktop_login
        return "bentley" if has_credentials else "sandbox"

    def validate(self) -> Settings:
        """Reject combinations that cannot work, with the fix in the message."""
        if self.backend not in ("auto", "sandbox", "bentley"):
            raise ConfigError(f"ITWIN_INSIGHTS_BACKEND must be auto, sandbox or bentley, not {self.backend!r}.")
        if self.transport not in ("stdio", "http"):
            raise ConfigError(f"--transport must be stdio or http, not {self.transport!r}.")
        if self.profile not in PROFILES:
            raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, not {self.profile!r}.")
        if self.auth_mode not in ("none", "service", "oauth"):
            raise ConfigError(f"--auth must be none, service or oauth, not {self.auth_mode!r}.")
        if self.auth_mode == "service" and not self.api_keys:
            raise ConfigError("--auth service needs ITWIN_INSIGHTS_API_KEYS: the keys callers present (comma list).")
        if self.auth_mode == "oauth":
            missing = [
                name
                for name, value in (
                    ("ITWIN_INSIGHTS_PUBLIC_URL", self.public_url),
                    ("ITWIN_CLIENT_ID", self.client_id),
                    ("ITWIN_CLIENT_SECRET", self.client_secret),
                    ("ITWIN_INSIGHTS_STATE_KEY", self.state_key),
                )
                if not value
            ]
            if missing:
                raise ConfigError(f"--auth oauth needs {', '.join(missing)} (see the README's hosting section).")
        if self.mode not in ("full", "compact"):
            raise ConfigError(f"--mode must be full or compact, not {self.mode!r}.")
        if bool(self.client_id) != bool(self.client_secret) and not self.access_token:
            raise ConfigError("Set both ITWIN_CLIENT_ID and ITWIN_CLIENT_SECRET (service app), or ITWIN_ACCESS_TOKEN.")
        signed_in = self.access_token or (self.client_id and self.client_secret) or self.desktop_login
        if self.backend == "bentley" and not signed_in:
            raise ConfigError(
                "Backend 'bentley' needs credentials: run `itwin-insights-mcp login`, or set ITWIN_ACCESS_TOKEN, or "
                "ITWIN_CLIENT_ID and ITWIN_CLIENT_SECRET. Use --backend sandbox to try it without a Bentley account."
            )
        if self.token_store not in ("auto", "keyring", "file"):
            raise ConfigError("ITWIN_INSIGHTS_TOKEN_STORE must be auto, keyring or file.")
        if not 1 <= self.max_rows <= 1000:
            raise ConfigError("ITWIN_INSIGHTS_MAX_ROWS must be between 1 and 1000.")
        if not 4096 <= self.max_result_bytes <= 16_777_216:
            raise ConfigError("ITWIN_INSIGHTS_MAX_RESULT_BYTES must be between 4096 and 16777216.")
        if not 0 < self.timeout_seconds <= 3600:
            raise ConfigError("ITWIN_INSIGHTS_TIMEOUT must be more than 0 and at most 3600 seconds.")
        if not 1 <= self.sandbox_odata_page_size <= 100_000:
            raise ConfigError("INSIGHTS_SANDBOX_ODATA_PAGE_SIZE must be between 1 and 100000.")
        if self.sandbox_group_query_steps < 0:
            raise ConfigError("INSIGHTS_SANDBOX_GROUP_QUERY_STEPS must be 0 (no limit) or more.")
        if not (self.sandbox_group_seconds > 0 and self.sandbox_extraction_seconds > 0):
            raise ConfigError("INSIGHTS_SANDBOX_GROUP_SECONDS and INSIGHTS_SANDBOX_EXTRACTION_SECONDS must be > 0.")
        if self.sandbox_max_cell_bytes < 1:
            raise ConfigError("INSIGHTS_SANDBOX_MAX_CELL_BYTES must be at least 1.")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 1 and 65535, not {self.port}.")
        return self

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given non-None fields replaced (how CLI flags are applied)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the documented environment variables; unset or empty ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, (attr, kind) in ENV_VARS.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            values[attr] = _convert(name, raw, kind)
        return cls().with_overrides(**values)


def _convert(name: str, raw: str, kind: str) -> object:
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}.")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, not {raw!r}.") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if kind == "list":
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return cast(object, raw)


# Environment variable -> (Settings field, kind). The README's configuration table is this mapping.
ENV_VARS: dict[str, tuple[str, str]] = {
    "ITWIN_INSIGHTS_BACKEND": ("backend", "str"),
    "ITWIN_API_BASE_URL": ("api_base_url", "str"),
    "ITWIN_AUTHORITY": ("authority", "str"),
    "ITWIN_ACCESS_TOKEN": ("access_token", "str"),
    "ITWIN_CLIENT_ID": ("client_id", "str"),
    "ITWIN_CLIENT_SECRET": ("client_secret", "str"),
    "ITWIN_SCOPES": ("scopes", "str"),
    "INSIGHTS_SANDBOX_DB": ("sandbox_db", "str"),
    "INSIGHTS_SANDBOX_TOKEN": ("sandbox_token", "str"),
    "INSIGHTS_SANDBOX_ODATA_PAGE_SIZE": ("sandbox_odata_page_size", "int"),
    "INSIGHTS_SANDBOX_GROUP_QUERY_STEPS": ("sandbox_group_query_steps", "int"),
    "INSIGHTS_SANDBOX_GROUP_SECONDS": ("sandbox_group_seconds", "float"),
    "INSIGHTS_SANDBOX_EXTRACTION_SECONDS": ("sandbox_extraction_seconds", "float"),
    "INSIGHTS_SANDBOX_MAX_CELL_BYTES": ("sandbox_max_cell_bytes", "int"),
    "ITWIN_INSIGHTS_TRANSPORT": ("transport", "str"),
    "ITWIN_INSIGHTS_HOST": ("host", "str"),
    "ITWIN_INSIGHTS_PORT": ("port", "int"),
    "ITWIN_INSIGHTS_ALLOWED_HOSTS": ("allowed_hosts", "list"),
    "ITWIN_INSIGHTS_ALLOWED_ORIGINS": ("allowed_origins", "list"),
    "ITWIN_INSIGHTS_READ_ONLY": ("read_only", "bool"),
    "ITWIN_INSIGHTS_INCLUDE_DEPRECATED": ("include_deprecated", "bool"),
    "ITWIN_INSIGHTS_TOOLSETS": ("toolsets", "list"),
    "ITWIN_INSIGHTS_TOOLS": ("tools", "list"),
    "ITWIN_INSIGHTS_EXCLUDE_TOOLS": ("exclude_tools", "list"),
    "ITWIN_INSIGHTS_MODE": ("mode", "str"),
    "ITWIN_INSIGHTS_PROFILE": ("profile", "str"),
    "ITWIN_INSIGHTS_AUTH": ("auth_mode", "str"),
    "ITWIN_INSIGHTS_API_KEYS": ("api_keys", "list"),
    "ITWIN_INSIGHTS_PUBLIC_URL": ("public_url", "str"),
    "ITWIN_INSIGHTS_STATE_DB": ("state_db", "str"),
    "ITWIN_INSIGHTS_STATE_KEY": ("state_key", "str"),
    "ITWIN_INSIGHTS_REDIRECT_ALLOWLIST": ("redirect_allowlist", "list"),
    "ITWIN_DESKTOP_CLIENT_ID": ("desktop_client_id", "str"),
    "ITWIN_INSIGHTS_TOKEN_STORE": ("token_store", "str"),
    "ITWIN_INSIGHTS_EXPORT_DIR": ("export_dir", "str"),
    "ITWIN_INSIGHTS_MAX_ROWS": ("max_rows", "int"),
    "ITWIN_INSIGHTS_MAX_RESULT_BYTES": ("max_result_bytes", "int"),
    "ITWIN_INSIGHTS_HTTP_SESSIONS": ("http_sessions", "bool"),
    "ITWIN_INSIGHTS_TIMEOUT": ("timeout_seconds", "float"),
    "ITWIN_INSIGHTS_MAX_RETRIES": ("max_retries", "int"),
    "ITWIN_INSIGHTS_LOG_LEVEL": ("log_level", "str"),
}

# What each variable means (the README's table, server.json and the bundle manifest are generated from it).
ENV_DESCRIPTIONS: dict[str, str] = {
    "ITWIN_INSIGHTS_BACKEND": "auto (Bentley when credentials exist, else sandbox), sandbox or bentley",
    "ITWIN_API_BASE_URL": "Bentley API host",
    "ITWIN_AUTHORITY": "IMS authority (token endpoint discovered from it)",
    "ITWIN_ACCESS_TOKEN": "a bearer token for the Bentley backend",
    "ITWIN_CLIENT_ID": "service-app client id",
    "ITWIN_CLIENT_SECRET": "service-app client secret",
    "ITWIN_SCOPES": "OAuth scopes",
    "INSIGHTS_SANDBOX_DB": "sandbox SQLite file; :memory: for a throwaway one",
    "INSIGHTS_SANDBOX_TOKEN": "make the HTTP sandbox accept only this bearer token",
    "INSIGHTS_SANDBOX_ODATA_PAGE_SIZE": "rows per OData entity page in the sandbox",
    "INSIGHTS_SANDBOX_GROUP_QUERY_STEPS": "sandbox: SQLite steps one group query may take before that group fails "
    "(0: no limit)",
    "INSIGHTS_SANDBOX_GROUP_SECONDS": "sandbox: seconds one group may compute before that group fails",
    "INSIGHTS_SANDBOX_EXTRACTION_SECONDS": "sandbox: seconds one extraction job may run before it ends Failed",
    "INSIGHTS_SANDBOX_MAX_CELL_BYTES": "sandbox: longest stored cell value in bytes (longer computed strings are "
    "stored as null, with a Warning)",
    "ITWIN_INSIGHTS_TRANSPORT": "stdio or http",
    "ITWIN_INSIGHTS_HOST": "HTTP bind address",
    "ITWIN_INSIGHTS_PORT": "HTTP port",
    "ITWIN_INSIGHTS_ALLOWED_HOSTS": "extra Host names accepted over HTTP (comma list)",
    "ITWIN_INSIGHTS_ALLOWED_ORIGINS": "extra Origins accepted over HTTP (comma list)",
    "ITWIN_INSIGHTS_READ_ONLY": "expose and allow only read tools (nothing re-enables writes)",
    "ITWIN_INSIGHTS_INCLUDE_DEPRECATED": "also expose the deprecated per-iModel extraction status",
    "ITWIN_INSIGHTS_TOOLSETS": "toolsets to expose (comma list, see below)",
    "ITWIN_INSIGHTS_TOOLS": "single tools to expose (added to the toolsets; alone, only these)",
    "ITWIN_INSIGHTS_EXCLUDE_TOOLS": "tools to hide (wins over --tools and --toolsets)",
    "ITWIN_INSIGHTS_MODE": "full (one tool per operation) or compact (two tools)",
    "ITWIN_INSIGHTS_AUTH": "who may call the HTTP server: none (loopback only), service (API keys) or oauth",
    "ITWIN_INSIGHTS_API_KEYS": "service mode: the keys callers present as bearer tokens (comma list)",
    "ITWIN_INSIGHTS_PUBLIC_URL": "oauth mode: the URL clients reach the server at (issuer and token audience)",
    "ITWIN_INSIGHTS_STATE_DB": "oauth mode: the SQLite file every replica on the node shares",
    "ITWIN_INSIGHTS_STATE_KEY": "oauth mode: Fernet key sealing users' IMS tokens at rest (same on every replica)",
    "ITWIN_DESKTOP_CLIENT_ID": "your native/desktop app's client id, for itwin-insights-mcp login",
    "ITWIN_INSIGHTS_TOKEN_STORE": "where login keeps the refresh token: auto (OS keyring, else a 0600 file), "
    "keyring or file",
    "ITWIN_INSIGHTS_REDIRECT_ALLOWLIST": "oauth mode: redirect URI patterns clients may register (comma list)",
    "ITWIN_INSIGHTS_PROFILE": "reporting-v1 (the documented Insights API), current (as Bentley's tools work today) "
    "or all",
    "ITWIN_INSIGHTS_EXPORT_DIR": "the only folder export_odata_entity writes to",
    "ITWIN_INSIGHTS_MAX_ROWS": "OData rows kept in one tool result (the rest: next page or export)",
    "ITWIN_INSIGHTS_MAX_RESULT_BYTES": "largest tool result in bytes; longer lists and values are trimmed with a note "
    "saying how to get the rest",
    "ITWIN_INSIGHTS_HTTP_SESSIONS": "serve HTTP with MCP sessions (Mcp-Session-Id) instead of stateless: "
    "2025-era clients can then cancel calls; replicas need sticky sessions",
    "ITWIN_INSIGHTS_TIMEOUT": "total seconds one upstream request may take (connect, send, read), per attempt",
    "ITWIN_INSIGHTS_MAX_RETRIES": "retries of 429 (any method) and of 502/503/504 or connection errors "
    "(GET/PUT/DELETE only)",
    "ITWIN_INSIGHTS_LOG_LEVEL": "log level (logs go to stderr)",
}
SECRET_ENV_VARS = frozenset(
    {
        "ITWIN_ACCESS_TOKEN",
        "ITWIN_CLIENT_SECRET",
        "INSIGHTS_SANDBOX_TOKEN",
        "ITWIN_INSIGHTS_API_KEYS",
        "ITWIN_INSIGHTS_STATE_KEY",
    }
)
