"""Sandbox input limits at the HTTP level (issue 13 items 5, 6, 9, 12): hostile formulas, continuation tokens,
OData sequences and unencodable values get the API's 4xx error body, short, never a 500 or a crash."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from itwin_insights_mcp.sandbox.app import create_app
from itwin_insights_mcp.sandbox.engine.formulas import MAX_DEPTH, MAX_FORMULA_LENGTH, FormulaError, check, parse
from itwin_insights_mcp.sandbox.store import Store

from ..conftest import BUILDING_ID, ITWIN_ID

pytestmark = pytest.mark.anyio

RP = "/insights/reporting"
AUTH = {"Authorization": "Bearer any-token", "Accept": "application/vnd.bentley.itwin-platform.v1+json"}


@asynccontextmanager
async def sandbox(db: str, **options: Any) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(db, **options)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=AUTH) as http:
            yield http


async def _group(http: httpx2.AsyncClient) -> str:
    """A new mapping with one group; returns the group's URL."""
    mapping = (await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": "L"})).json()
    base = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/{mapping['mapping']['id']}"
    group = await http.post(f"{base}/groups", json={"groupName": "G", "query": "SELECT * FROM Building.Door"})
    return f"{base}/groups/{group.json()['group']['id']}"


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# -- formulas (item 6, item 9) ------------------------------------------------------------------------------------


HOSTILE_FORMULAS = {
    "601 flat terms": " + ".join(["1"] * 601),
    "deep parentheses": "(" * 4000 + "1" + ")" * 4000,
    "deep unary": "-" * 9000 + "1",
    "right-associative chain": "**".join(["2"] * 3000),
    "1 MB formula": "1+" * 500_000 + "1",
    "0x and 100k hex digits": "0x" + "f" * 100_000,
    "0x and 1000 hex digits": "0x" + "f" * 1000,
    "lone surrogate escape": "'a' + '\\ud800'",
    "lone surrogate character": "'a' + '\ud800'",
}


@pytest.mark.parametrize("formula", HOSTILE_FORMULAS.values(), ids=HOSTILE_FORMULAS.keys())
def test_hostile_formulas_are_formula_errors_not_crashes(formula: str) -> None:
    with pytest.raises(FormulaError) as caught:
        check({"C": formula}, {})
    assert len(str(caught.value)) < 400  # the message names the problem, it does not echo the formula


def test_limits_leave_ordinary_formulas_alone() -> None:
    assert parse(" + ".join(["1"] * MAX_DEPTH)).evaluate({}) == float(MAX_DEPTH)
    assert parse("'a' + '\\ud83d\\ude00'").evaluate({}) == "a\U0001f600"  # a complete pair is one character
    assert len(" + ".join(["1"] * 600)) < MAX_FORMULA_LENGTH  # the flat-chain case is refused for depth, not size


@pytest.mark.parametrize(
    ("formula", "says"),
    [
        (" + ".join(["Length"] * 601), "nested too deeply"),
        ("(" * 4000 + "1" + ")" * 4000, "nested too deeply"),
        ("1+" * 500_000 + "1", "characters long"),
        ("0x" + "f" * 100_000, "characters long"),
        ("0x" + "f" * 1000, "too large"),
        ("'a' + '\\ud800'", "lone UTF-16 surrogate"),
    ],
    ids=["601 terms", "deep", "1 MB", "100k hex", "1000 hex", "surrogate"],
)
async def test_hostile_formula_is_a_clear_422_naming_formula(sandbox_db: str, formula: str, says: str) -> None:
    async with sandbox(sandbox_db) as http:
        group = await _group(http)
        reply = await http.post(f"{group}/customCalculations", json={"propertyName": "C", "formula": formula})
        assert reply.status_code == 422
        error = reply.json()["error"]
        assert error["code"] == "InvalidInsightsRequest" and error["target"] == "formula"
        assert says in error["message"]
        assert len(reply.content) < 2000
        listed = (await http.get(f"{group}/customCalculations")).json()["customCalculations"]
        assert listed == []  # nothing was stored


async def test_raw_lone_surrogate_in_the_json_body_is_refused(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        group = await _group(http)
        body = b'{"propertyName": "C", "formula": "\'a\' + \'\\ud800\'"}'  # the JSON escape, decoded by the server
        reply = await http.post(
            f"{group}/customCalculations", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 422 and reply.json()["error"]["target"] == "formula"


# -- error messages (item 5) --------------------------------------------------------------------------------------


async def test_validation_error_quotes_only_a_short_prefix_of_the_bad_value(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        huge = "x" * 1_000_000 + "!"
        reply = await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": huge})
        assert reply.status_code == 422
        assert len(reply.content) < 5000
        error = reply.json()["error"]
        assert error["target"] == "mappingName" and "x" * 30 in json.dumps(error)  # a prefix, not all


# -- continuation tokens and OData sequence (item 12) -------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        _token({"s": 2**64}),
        _token({"s": -1}),
        _token({"s": "abc"}),
        _token({"s": 1.5}),
        _token({"s": True}),
        _token([1]),
        _token("s"),
        "!!!not-base64!!!",
        "A" * 60_000,
        base64.urlsafe_b64encode(b"[" * 300).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["2^64", "negative", "string", "float", "bool", "list", "no object", "garbage", "60k", "nested", "binary"],
)
async def test_bad_continuation_token_is_a_422(sandbox_db: str, token: str) -> None:
    async with sandbox(sandbox_db) as http:
        for url, params in (
            (f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", {}),
            ("/imodels/", {"iTwinId": ITWIN_ID}),  # an offset-paged list
        ):
            reply = await http.get(url, params={**params, "$continuationToken": token})
            assert reply.status_code == 422, (url, reply.text[:200])
            error = reply.json()["error"]
            assert error["target"] == "$continuationToken" and error["code"].startswith("Invalid")


async def _published_entity(http: httpx2.AsyncClient, sandbox_db: str) -> str:
    """A report with one extracted table; returns its OData entity URL."""
    group = await _group(http)
    mapping_id = group.split("/mappings/")[1].split("/")[0]
    report = (await http.post(f"{RP}/reports", json={"displayName": "R", "projectId": ITWIN_ID})).json()["report"]
    await http.post(
        f"{RP}/reports/{report['id']}/datasources/imodelMappings",
        json={"imodelId": BUILDING_ID, "mappingId": mapping_id},
    )
    run = (await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/extraction/run")).json()["run"]
    for _ in range(400):
        state = (await http.get(f"{RP}/datasources/extraction/status/{run['id']}")).json()["status"]["state"]
        if state in ("Succeeded", "Failed"):
            break
        await _sleep()
    assert state == "Succeeded"
    service = (await http.get(f"{RP}/odata/{report['id']}")).json()
    return f"{RP}/odata/{report['id']}/{service['value'][0]['url']}"


async def _sleep() -> None:
    import anyio

    await anyio.sleep(0.05)


@pytest.mark.parametrize("sequence", [str(2**64), str(2**63), "-1", "abc", "1e3", "9" * 5000])
async def test_bad_odata_sequence_is_a_422(sandbox_db: str, sequence: str) -> None:
    async with sandbox(sandbox_db) as http:
        url = await _published_entity(http, sandbox_db)
        assert (await http.get(url)).status_code == 200
        reply = await http.get(url, params={"sequence": sequence})
        assert reply.status_code == 422, reply.text[:200]
        error = reply.json()["error"]
        assert error["code"] == "InvalidInsightsRequest" and error["target"] == "sequence"
        assert len(reply.content) < 2000


# -- unencodable stored values (item 9) ---------------------------------------------------------------------------


async def test_stored_lone_surrogate_never_makes_a_page_fail(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        url = await _published_entity(http, sandbox_db)
        store: Store = http._transport.app.state.sandbox.store  # type: ignore[attr-defined]
        with store.transaction() as conn:  # a value as an older sandbox could have stored it
            (data,) = conn.execute("SELECT data FROM ex_rows WHERE row_no = 0").fetchone()
            values = json.loads(data)
            values[2] = "bad \ud800 label"
            conn.execute("UPDATE ex_rows SET data = ? WHERE row_no = 0", (json.dumps(values),))  # \ud800 escaped
        page = await http.get(url)
        assert page.status_code == 200
        assert page.json()["value"][0]["UserLabel"] == "bad \ufffd label"
        body = b'{"displayName": "name \\udc00", "projectId": "' + ITWIN_ID.encode() + b'"}'
        created = await http.post(f"{RP}/reports", content=body, headers={"Content-Type": "application/json"})
        assert created.status_code == 200 and created.json()["report"]["displayName"] == "name \ufffd"
        listed = await http.get(f"{RP}/reports", params={"projectId": ITWIN_ID})
        assert listed.status_code == 200
