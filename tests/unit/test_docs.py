"""The README stays true: its tool table is the generated one, every variable is documented, the image is sane."""

from __future__ import annotations

import re
from pathlib import Path

from itwin_insights_mcp.cli import main, tools_markdown
from itwin_insights_mcp.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_tool_table_is_generated_from_the_catalog() -> None:
    block = README.split("<!-- tools:start -->")[1].split("<!-- tools:end -->")[0].strip()
    assert block == tools_markdown(), "run `itwin-insights-mcp tools --markdown` and paste it into the README"


def test_every_environment_variable_is_documented() -> None:
    for name in ENV_VARS:
        assert f"`{name}`" in README, name


def test_readme_commands_exist(capsys: object) -> None:
    assert "itwin-insights-mcp serve" in README and "\npytest" in README
    assert main(["tools"]) == 0
    flags = set(re.findall(r"`(--[a-z-]+)`", README))
    assert flags, "the configuration table names flags"


def test_dockerfile_runs_the_packaged_command_as_non_root() -> None:
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert docker.count("FROM ") >= 2, "multi-stage"
    assert re.search(r"^USER (?!root)\S+", docker, re.M)
    assert 'CMD ["itwin-insights-mcp", "serve", "--transport", "http"]' in docker
    assert "HEALTHCHECK" in docker and "/healthz" in docker
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", docker, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
