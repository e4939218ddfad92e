"""auth_status names the right identity for every sign-in kind, and its result conforms to its outputSchema."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from jsonschema import Draft202012Validator
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from itwin_insights_mcp.api.catalog import load_catalog
from itwin_insights_mcp.api.desktop_auth import FileStore, StoredLogin
from itwin_insights_mcp.server.local_tools import LOCAL_TOOLS, LocalContext, auth_status
from itwin_insights_mcp.settings import Settings

pytestmark = pytest.mark.anyio

TOOL = next(t for t in LOCAL_TOOLS if t.tool == "auth_status")


async def status(settings: Settings) -> dict[str, Any]:
    context = LocalContext(client=None, settings=settings, catalog=load_catalog(), request=None)  # type: ignore[arg-type]
    result = await auth_status(context, {})
    data = result.structured_content
    assert data is not None and not result.is_error
    errors = list(Draft202012Validator(TOOL.definition.output_schema or {}).iter_errors(data))
    assert not errors, errors[0].message
    dumped = result.model_dump_json()
    for secret in (settings.access_token, settings.client_secret):
        assert not secret or secret not in dumped
    return dict(data)


def token(**claims: Any) -> str:
    return jwt.encode({"exp": int(time.time()) + 3600, **claims}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize("scope", ["itwin-platform insights:read", ["itwin-platform", "insights:read"]])
async def test_a_static_token_with_a_string_or_an_array_scope(scope: object) -> None:
    data = await status(Settings(backend="bentley", access_token=token(email="ana@example.com", scope=scope)))
    assert data["identity"] == "ana@example.com" and data["signedIn"] is True
    assert data["scopes"] == ["itwin-platform", "insights:read"]


async def test_an_expired_static_token_is_not_signed_in() -> None:
    expired = jwt.encode({"exp": int(time.time()) - 60, "sub": "u1"}, "k" * 32, algorithm="HS256")
    data = await status(Settings(backend="bentley", access_token=expired))
    assert data["signedIn"] is False and "expired" in data["nextStep"]


async def test_an_opaque_static_token() -> None:
    data = await status(Settings(backend="bentley", access_token="opaque-token-value"))
    assert data["identity"] == "unknown (opaque token)" and data["scopes"] is None


async def test_client_credentials_name_the_service_app() -> None:
    settings = Settings(backend="bentley", client_id="svc-app", client_secret="s3cret-value", scopes="itwin-platform")
    data = await status(settings)
    assert data["identity"] == "service app svc-app" and data["scopes"] == ["itwin-platform"]


async def test_desktop_login_names_the_signed_in_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = Settings(backend="bentley", desktop_login=True, desktop_client_id="native-app", token_store="file")
    FileStore().save(
        StoredLogin(
            authority=settings.authority,
            client_id="native-app",
            refresh_token="refresh-secret",
            scope="itwin-platform offline_access",
            email="bo@example.com",
        )
    )
    data = await status(settings)
    assert data["identity"] == "bo@example.com" and data["signedIn"] is True
    assert data["scopes"] == ["itwin-platform", "offline_access"]
    assert "client None" not in data["credential"] and "login" in data["credential"]


async def test_hosted_oauth_names_the_user_of_the_request() -> None:
    settings = Settings(
        backend="bentley",
        transport="http",
        auth_mode="oauth",
        client_id="server-web-app",
        client_secret="server-secret",
        public_url="https://mcp.example.com",
        state_key="k",
    )
    user = AccessToken(token="t", client_id="claude", scopes=["itwin-platform"], subject="ims|user-42")
    reset = auth_context_var.set(AuthenticatedUser(user))
    try:
        data = await status(settings)
    finally:
        auth_context_var.reset(reset)
    assert data["identity"] == "ims|user-42" and "server-web-app" not in str(data)
    nobody = await status(settings)
    assert nobody["signedIn"] is False


def test_a_stored_login_is_remembered_between_starts_and_forgotten_on_login_or_logout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` asks whether a sign-in exists at every start; the answer is kept so the keyring is not probed each time
    (about 90 ms), and every save or delete forgets it."""
    from itwin_insights_mcp.api import credentials

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    probes: list[str] = []
    real = credentials.has_stored_login

    def counted(*args: Any, **kwargs: Any) -> bool:
        probes.append("probe")
        return real(*args, **kwargs)

    monkeypatch.setattr(credentials, "has_stored_login", counted)
    authority = Settings().authority
    assert credentials.remembered_login(authority, None, "file") is False
    assert credentials.remembered_login(authority, None, "file") is False
    assert probes == ["probe"]  # the second start did not ask the store
    store = FileStore()
    store.save(StoredLogin(authority=authority, client_id="native", refresh_token="r-secret"))
    assert credentials.remembered_login(authority, None, "file") is True
    assert len(probes) == 2
    assert "r-secret" not in (tmp_path / "itwin-insights-mcp" / "signin-index.json").read_text()
    store.delete(authority, "native")
    assert credentials.remembered_login(authority, None, "file") is False
    assert len(probes) == 3
