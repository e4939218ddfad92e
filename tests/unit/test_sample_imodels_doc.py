"""docs/sample-imodels.md states counts of the generated sample data; they are read back from the data here.

Each figure is parsed out of the document's own sentences and tables, so a wording edit that drops one fails loudly
(the regex finds nothing) and a generator change that moves one fails on the number.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from itwin_insights_mcp.sandbox.imodels import SANDBOX_IMODELS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sample-imodels.md").read_text(encoding="utf-8")
BUILDING, SITE = SANDBOX_IMODELS[0].id, SANDBOX_IMODELS[1].id
BUILDING_TEXT = DOC.split("**Sample Office Building**")[1].split("**Sample Site Utilities**")[0]
SITE_TEXT = DOC.split("**Sample Site Utilities**")[1].split("## 6.")[0]


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _find(pattern: str, text: str = DOC) -> re.Match[str]:
    match = re.search(pattern, text, flags=re.S)
    assert match is not None, f"docs/sample-imodels.md no longer says {pattern!r}"
    return match


@pytest.fixture(scope="module")
def db(template_db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{template_db}?mode=ro", uri=True)
    yield conn
    conn.close()


def _scalar(db: sqlite3.Connection, sql: str, *args: object) -> int:
    return int(db.execute(sql, args).fetchone()[0])


def _class_counts(db: sqlite3.Connection, imodel: str, table: str) -> dict[str, int]:
    rows = db.execute(
        f"SELECT c.schema_name || '.' || c.class_name, COUNT(*) FROM {table} x "
        "JOIN im_classes c ON c.imodel_id = x.imodel_id AND c.class_id = x.class_id "
        "WHERE x.imodel_id = ? GROUP BY 1",
        (imodel,),
    )
    return {name: count for name, count in rows}


def _per_element(db: sqlite3.Connection, imodel: str, what: str, where: str = "") -> dict[int, int]:
    """How many elements carry N (distinct aspect classes | aspects) -> {N: elements}."""
    rows = db.execute(
        f"SELECT n, COUNT(*) FROM (SELECT a.element_id, {what} n FROM im_aspects a "
        "JOIN im_classes c ON c.imodel_id = a.imodel_id AND c.class_id = a.class_id "
        f"WHERE a.imodel_id = ? {where} GROUP BY a.element_id) GROUP BY n",
        (imodel,),
    )
    return {n: count for n, count in rows}


@pytest.mark.parametrize(("imodel", "text"), [(BUILDING, BUILDING_TEXT), (SITE, SITE_TEXT)], ids=["building", "site"])
def test_element_and_aspect_totals(db: sqlite3.Connection, imodel: str, text: str) -> None:
    totals = _find(r"^ — ([\d,]+) element rows, ([\d,]+) aspects", text)
    assert _number(totals[1]) == _scalar(db, "SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", imodel)
    assert _number(totals[2]) == _scalar(db, "SELECT COUNT(*) FROM im_aspects WHERE imodel_id = ?", imodel)


@pytest.mark.parametrize(("imodel", "text"), [(BUILDING, BUILDING_TEXT), (SITE, SITE_TEXT)], ids=["building", "site"])
def test_class_tables(db: sqlite3.Connection, imodel: str, text: str) -> None:
    stated = {m[1]: _number(m[2]) for m in re.finditer(r"^\| `(\w+\.\w+)` \| ([\d,]+) \|", text, flags=re.M)}
    assert len(stated) >= 6
    actual = _class_counts(db, imodel, "im_elements")
    assert {name: actual.get(name) for name in stated} == stated


def test_building_aspects(db: sqlite3.Connection) -> None:
    actual = _class_counts(db, BUILDING, "im_aspects")
    stated = _find(
        r"`CostAspect` ([\d,]+).*?`FireRatingAspect` ([\d,]+).*?`MaintenanceRecordAspect` ([\d,]+) records on "
        r"([\d,]+) doors and windows: \*\*([\d,]+) elements\s+have exactly one record, ([\d,]+) have two\*\*",
        BUILDING_TEXT,
    )
    assert _number(stated[1]) == actual["Building.CostAspect"]
    assert _number(stated[2]) == actual["Building.FireRatingAspect"]
    assert _number(stated[3]) == actual["Building.MaintenanceRecordAspect"]
    records = _per_element(db, BUILDING, "COUNT(*)", "AND c.class_name = 'MaintenanceRecordAspect'")
    assert _number(stated[4]) == sum(records.values())
    assert (_number(stated[5]), _number(stated[6])) == (records[1], records[2])
    assert set(records) == {1, 2}


def test_elements_with_aspects_of_several_classes(db: sqlite3.Connection) -> None:
    stated = _find(r"([\d,]+)\s+elements carry aspects of exactly two classes and ([\d,]+) of all three", BUILDING_TEXT)
    classes = _per_element(db, BUILDING, "COUNT(DISTINCT a.class_id)")
    assert (_number(stated[1]), _number(stated[2])) == (classes[2], classes[3])
    assert max(classes) == 3


def test_wall_fire_ratings(db: sqlite3.Connection) -> None:
    line = _find(r"Wall `FireRating`: ([^\n]+)\.", BUILDING_TEXT)[1]
    stated = {name.rsplit(" ", 1)[0]: int(name.rsplit(" ", 1)[1]) for name in line.split(", ")}
    rows = db.execute(
        "SELECT COALESCE(json_extract(e.props, '$.FireRating'), 'none'), COUNT(*) FROM im_elements e "
        "JOIN im_classes c ON c.imodel_id = e.imodel_id AND c.class_id = e.class_id "
        "WHERE e.imodel_id = ? AND c.class_name = 'Wall' GROUP BY 1",
        (BUILDING,),
    )
    assert stated == {rating: count for rating, count in rows}


def test_site_aspects(db: sqlite3.Connection) -> None:
    stated = _find(
        r"`Building\.CostAspect` ([\d,]+),\s+`Building\.MaintenanceRecordAspect` ([\d,]+) on ([\d,]+) "
        r"elements \(([\d,]+) with one, ([\d,]+) with two\)",
        SITE_TEXT,
    )
    actual = _class_counts(db, SITE, "im_aspects")
    records = _per_element(db, SITE, "COUNT(*)", "AND c.class_name = 'MaintenanceRecordAspect'")
    assert _number(stated[1]) == actual["Building.CostAspect"]
    assert _number(stated[2]) == actual["Building.MaintenanceRecordAspect"]
    assert _number(stated[3]) == sum(records.values())
    assert (_number(stated[4]), _number(stated[5])) == (records[1], records[2])


def test_which_pipes_and_fittings_have_no_code(db: sqlite3.Connection) -> None:
    _find(r"In the building, pipes and fittings have NULL `CodeValue`; on the site only the fittings do")
    stated = _find(r"the ([\d,]+) site pipes are\s+coded `(P-\d+)`…`(P-\d+)`")

    def codes(imodel: str, cls: str) -> list[str | None]:
        rows = db.execute(
            "SELECT e.code_value FROM im_elements e JOIN im_classes c "
            "ON c.imodel_id = e.imodel_id AND c.class_id = e.class_id "
            "WHERE e.imodel_id = ? AND c.schema_name = 'Plumbing' AND c.class_name = ? ORDER BY e.code_value",
            (imodel, cls),
        )
        return [code for (code,) in rows]

    assert set(codes(BUILDING, "Pipe")) == {None} and set(codes(BUILDING, "Fitting")) == {None}
    assert set(codes(SITE, "Fitting")) == {None}
    site_pipes = codes(SITE, "Pipe")
    assert None not in site_pipes
    assert (len(site_pipes), site_pipes[0], site_pipes[-1]) == (_number(stated[1]), stated[2], stated[3])
