"""The test-kind table (tests/conftest.py KINDS) names real tests, and pyproject registers every kind it uses."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ..conftest import KINDS

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("prefix", sorted(KINDS))
def test_every_entry_names_an_existing_test(prefix: str) -> None:
    path, _, name = prefix.partition("::")
    target = TESTS / path
    assert target.exists(), f"{prefix}: no such file or directory under tests/"
    if name:
        assert f"def {name}(" in target.read_text(encoding="utf-8"), f"{prefix}: no such test"


def test_every_kind_is_registered() -> None:
    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    registered = {line.split(":")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}
    used = {kind for kinds in KINDS.values() for kind in kinds}
    assert used == {"e2e", "packaging", "external", "slow"}
    # `long` is set by decorator on the reliability suite's on-demand tests (RELIABILITY_LONG=1), not by KINDS.
    assert registered == used | {"long"}


def test_kinds_are_applied(request: pytest.FixtureRequest) -> None:
    """This test is in none of the kinds; the slow list's tests carry `slow` (checked on the collected items)."""
    assert not {m.name for m in request.node.iter_markers()} & {"e2e", "packaging", "external", "slow"}
    slow = [item for item in request.session.items if item.get_closest_marker("slow")]
    selected = {item.nodeid.split("tests/", 1)[-1] for item in slow}
    wanted = tuple(key for key, kinds in KINDS.items() if "slow" in kinds)
    assert all(node.startswith(wanted) for node in selected)
