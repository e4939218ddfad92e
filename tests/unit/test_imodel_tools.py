"""The iModel Query tool layer reads both plausible reply shapes (the reference leaves them UNCONFIRMED)."""

from __future__ import annotations

from itwin_insights_mcp.server.imodel_tools import _columns, _next_link, _objects


def test_column_names_from_meta_or_columns() -> None:
    assert _columns({"meta": [{"name": "a", "accessString": "a"}, {"accessString": "b"}]}) == ["a", "b"]
    assert _columns({"columns": ["x", "y"]}) == ["x", "y"]
    assert _columns({"columns": [{"name": "x"}]}) == ["x"]
    assert _columns({"rows": []}) is None


def test_next_page_from_links_or_hal_links() -> None:
    assert _next_link({"links": {"self": "s", "next": "n"}}) == "n"
    assert _next_link({"links": {"self": "s", "next": None}}) is None
    assert _next_link({"_links": {"next": {"href": "h"}}}) == "h"
    assert _next_link({"links": {"self": "s"}}) is None
    assert _next_link({}) is None


def test_rows_as_arrays_or_objects_become_objects() -> None:
    assert _objects([[1, "a"], [2]], ["n", "s"]) == [{"n": 1, "s": "a"}, {"n": 2}]
    assert _objects([[1, 2, 3]], ["n"]) == [{"n": 1, "c1": 2, "c2": 3}]  # more cells than names
    assert _objects([{"n": 1}], []) == [{"n": 1}]
