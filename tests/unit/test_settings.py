"""One settings model: each option is declared once, and the CLI, `--help`, validation, the README table and
server.json all follow that declaration."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import pytest

from itwin_insights_mcp import options
from itwin_insights_mcp.cli import _build_parser, _settings_from, main
from itwin_insights_mcp.errors import ConfigError
from itwin_insights_mcp.settings import OPTIONS, SECRET_ENV_VARS, Option, Settings, markdown_table, options_for
from itwin_insights_mcp_build.distribution import STDIO_EXCLUDED_ENV_VARS, USER_CONFIG_ENV, mcpb_manifest, server_json

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = ("serve", "sandbox serve", "sandbox generate", "login", "logout", "whoami", "tools", "capability")
SETTING_NAMES = {f.name for f in fields(Settings)}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _build_parser()
    for word in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal width


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting comes from the developer's environment; the sandbox backend skips the stored-login lookup."""
    for option in OPTIONS:
        if option.env:
            monkeypatch.delenv(option.env, raising=False)
    monkeypatch.setenv("ITWIN_INSIGHTS_BACKEND", "sandbox")
    return monkeypatch


def test_every_option_is_declared_once_and_shows_up_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    """The brief's proof: one declaration per field, and each reaches the CLI, --help, the README and server.json."""
    assert [o.name for o in OPTIONS] == [f.name for f in fields(Settings)]
    variables = [o.env for o in OPTIONS if o.env]
    assert len(variables) == len(set(variables)), "one variable per option"
    serve_help = _help("serve", capsys)
    registry = {
        v["name"]: v for v in json.loads((ROOT / "server.json").read_text())["packages"][0]["environmentVariables"]
    }
    for option in OPTIONS:
        assert option.description and "|" not in option.description, option.name
        if not option.env:
            assert not option.flags, f"{option.name}: a flag without a variable is not a declared setting"
            continue
        assert option.env in serve_help, option.env  # flag help or the environment-only epilog
        assert f"`{option.env}`" in README, option.env
        if option.env not in STDIO_EXCLUDED_ENV_VARS:
            assert registry[option.env]["description"] == option.description
            assert registry[option.env]["isSecret"] is option.secret
            assert registry[option.env].get("choices", []) == list(option.choices)
        for command, flag in option.flags:
            shown = serve_help if command == "serve" else _help(command, capsys)
            assert flag in shown and f"[env {option.env}]" in shown, (command, flag)


def test_the_parser_writes_settings_only_through_generated_flags() -> None:
    """No hand-written argument lands in a setting's name: each command's setting flags are exactly the declared."""
    for command in COMMANDS:
        parser = _subparser(command)
        found = {a.dest: tuple(a.option_strings) for a in parser._actions if a.dest in SETTING_NAMES}
        declared = {o.name: (o.flag(command),) for o in options_for(command)}
        assert found == declared, command
    assert options_for("serve") and options_for("sandbox generate") and options_for("login")


def test_secrets_have_no_flag_and_no_repr() -> None:
    secrets = [o for o in OPTIONS if o.secret]
    assert {o.env for o in secrets} == SECRET_ENV_VARS >= {"ITWIN_ACCESS_TOKEN", "ITWIN_CLIENT_SECRET"}
    values = {o.name: f"s3cret-{o.name}" if o.kind == "str" else (f"s3cret-{o.name}",) for o in secrets}
    shown = repr(Settings(**values))  # type: ignore[arg-type]
    for option in secrets:
        assert not option.flags, option.name
        assert "s3cret" not in shown
    flags = {s for c in COMMANDS for a in _subparser(c)._actions for s in a.option_strings}
    assert not {"--access-token", "--client-secret", "--api-keys", "--state-key"} & flags


def test_readme_configuration_table_is_the_generated_one() -> None:
    block = README.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0].strip()
    assert block == markdown_table(), "run `python -m itwin_insights_mcp.settings` and paste it into the README"
    assert server_json() == json.loads((ROOT / "server.json").read_text()), "regenerate server.json"


def test_environment_values_are_read_by_kind() -> None:
    settings = Settings.from_env(
        {
            "ITWIN_INSIGHTS_READ_ONLY": "yes",
            "ITWIN_INSIGHTS_HTTP_SESSIONS": "Off",
            "ITWIN_INSIGHTS_PORT": " 9001 ",
            "ITWIN_INSIGHTS_TIMEOUT": "2.5",
            "ITWIN_INSIGHTS_TOOLSETS": "reports, ,odata,",
            "ITWIN_INSIGHTS_LOG_LEVEL": "debug",
            "ITWIN_INSIGHTS_MAX_ROWS": "",  # empty: the default
        }
    )
    assert (settings.read_only, settings.http_sessions, settings.port) == (True, False, 9001)
    assert settings.timeout_seconds == 2.5 and settings.toolsets == ("reports", "odata")
    assert settings.log_level == "DEBUG" and settings.max_rows == Settings().max_rows
    with pytest.raises(ConfigError, match="ITWIN_INSIGHTS_PORT must be an integer, not 'x'"):
        Settings.from_env({"ITWIN_INSIGHTS_PORT": "x"})
    with pytest.raises(ConfigError, match="ITWIN_INSIGHTS_READ_ONLY must be true or false"):
        Settings.from_env({"ITWIN_INSIGHTS_READ_ONLY": "maybe"})
    with pytest.raises(ConfigError, match="ITWIN_INSIGHTS_TIMEOUT must be a number"):
        Settings.from_env({"ITWIN_INSIGHTS_TIMEOUT": "soon"})


def test_flags_win_over_environment_on_the_command_that_declares_them(clean_env: pytest.MonkeyPatch) -> None:
    parser = _build_parser()
    clean_env.setenv("ITWIN_INSIGHTS_MAX_ROWS", "20")
    clean_env.setenv("ITWIN_INSIGHTS_PORT", "8100")
    assert _settings_from(parser.parse_args(["serve"])).max_rows == 20
    chosen = _settings_from(parser.parse_args(["serve", "--max-rows", "30", "--log-level", "warning", "--read-only"]))
    assert (chosen.max_rows, chosen.log_level, chosen.read_only) == (30, "WARNING", True)
    generated = _settings_from(parser.parse_args(["sandbox", "generate", "--elements", "5", "--db", "x.db"]))
    assert generated.sandbox_db == "x.db"
    # The sandbox's own --port binds the emulator; it is not the MCP server's port.
    assert _settings_from(parser.parse_args(["sandbox", "serve", "--port", "9999"])).port == 8100
    signed = _settings_from(parser.parse_args(["whoami", "--client-id", "native-app"]))
    assert signed.desktop_client_id == "native-app" and signed.client_id is None
    listed = _settings_from(parser.parse_args(["tools", "--toolsets", "reports,odata", "--profile", "all"]))
    assert listed.toolsets == ("reports", "odata") and listed.profile == "all"


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.ge is not None or o.gt is not None], ids=lambda o: o.name)
def test_ranges_come_from_the_declaration(option: Option) -> None:
    step = 1 if option.kind == "int" else 0.5
    inside = [v for v in (option.ge, option.le, None if option.gt is None else option.gt + step) if v is not None]
    outside = [v for v in (None if option.ge is None else option.ge - step, option.gt) if v is not None]
    outside += [option.le + step] if option.le is not None else []
    assert outside
    for value in inside:
        Settings(**{option.name: int(value) if option.kind == "int" else value}).validate()  # type: ignore[arg-type]
    for value in outside:
        with pytest.raises(ConfigError, match=f"{option.env}.* must be {option.range_text()}, not"):
            Settings(**{option.name: value}).validate()  # type: ignore[arg-type]


def test_choices_come_from_the_types_and_the_declaration() -> None:
    chosen = {o.name: o.choices for o in OPTIONS if o.choices}
    assert chosen["backend"] == ("auto", "sandbox", "bentley") and chosen["token_store"] == ("auto", "keyring", "file")
    assert chosen["log_level"] == ("DEBUG", "INFO", "WARNING", "ERROR")
    for name, choices in chosen.items():
        option = next(o for o in OPTIONS if o.name == name)
        assert all(option.problem(choice) is None for choice in choices)
        with pytest.raises(ConfigError, match=f"{option.env}.* must be .*{choices[-1]}, not 'nope'"):
            Settings(**{name: "nope"}).validate()  # type: ignore[arg-type]
    assert Settings(log_level="debug").validate().log_level == "debug"  # levels are read case-insensitively


def test_rules_between_options() -> None:
    with pytest.raises(ConfigError, match="--auth service needs ITWIN_INSIGHTS_API_KEYS"):
        Settings(auth_mode="service").validate()
    Settings(auth_mode="service", api_keys=("k",)).validate()
    with pytest.raises(ConfigError, match="--auth oauth needs ITWIN_INSIGHTS_PUBLIC_URL, ITWIN_INSIGHTS_STATE_KEY"):
        Settings(auth_mode="oauth", client_id="c", client_secret="s").validate()
    with pytest.raises(ConfigError, match="Set both ITWIN_CLIENT_ID and ITWIN_CLIENT_SECRET"):
        Settings(client_id="c").validate()
    Settings(client_id="c", access_token="t").validate()  # a token alone is enough
    with pytest.raises(ConfigError, match="needs credentials"):
        Settings(backend="bentley").validate()
    assert Settings(backend="bentley", desktop_login=True).validate().resolved_backend == "bentley"
    assert Settings(client_id="c", client_secret="s").resolved_backend == "bentley"
    assert Settings().resolved_backend == "sandbox"


def test_bad_values_exit_with_the_declared_message(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("ITWIN_INSIGHTS_MAX_ROWS", "0")
    assert main(["tools"]) == 2
    assert "ITWIN_INSIGHTS_MAX_ROWS (--max-rows) must be between 1 and 1000, not 0." in capsys.readouterr().err
    clean_env.setenv("ITWIN_INSIGHTS_MAX_ROWS", "10")
    clean_env.setenv("ITWIN_INSIGHTS_LOG_LEVEL", "TRACE")
    assert main(["tools"]) == 2
    assert "ITWIN_INSIGHTS_LOG_LEVEL (--log-level) must be DEBUG, INFO, WARNING or ERROR" in capsys.readouterr().err


def test_bundle_settings_follow_the_declarations() -> None:
    """The Claude Desktop bundle offers settings whose variable, type, secrecy and default are the declared ones."""
    config = mcpb_manifest()["user_config"]
    assert set(config) == set(USER_CONFIG_ENV)
    for name, entry in config.items():
        option = next(o for o in OPTIONS if o.name == name)
        assert USER_CONFIG_ENV[name] == option.env
        assert entry.get("sensitive", False) is option.secret
        assert (entry["type"] == "boolean") is (option.kind == "bool")
        if "default" in entry and option.kind != "bool":
            assert Settings.from_env({str(option.env): entry["default"]}) == Settings()


def test_ranges_in_words_and_declaration_guards() -> None:
    by_name = {o.name: o for o in OPTIONS}
    assert by_name["timeout_seconds"].range_text() == "more than 0 and at most 3600"
    assert by_name["sandbox_group_query_steps"].range_text() == "at least 0"
    assert by_name["port"].range_text() == "between 1 and 65535"
    assert by_name["max_retries"].range_text() == ""

    @dataclass(frozen=True)
    class Leaky:
        token: str | None = options.option(
            None, env="X_TOKEN", secret=True, flags=options.on("--token"), description="a secret"
        )

    with pytest.raises(TypeError, match="a secret has no flag"):
        options.declared_options(Leaky)

    @dataclass(frozen=True)
    class Fine:
        token: str | None = options.option(None, env="X_TOKEN", secret=True, description="a secret")
        level: Literal["a", "b"] = options.option(
            "a", env="X_LEVEL", flags=options.on("--level", "serve", "tools"), description="x"
        )

    token, level = options.declared_options(Fine)
    assert "token=" not in repr(Fine(token="t")) and not token.flags
    assert level.choices == ("a", "b") and level.flag("tools") == "--level" and level.flag("login") is None
