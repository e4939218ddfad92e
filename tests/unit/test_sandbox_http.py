"""The sandbox at the HTTP level: auth, error bodies, paging, persistence, restarts and concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from itwin_insights_mcp.sandbox.app import create_app

from ..conftest import BUILDING_ID, ITWIN_ID

pytestmark = pytest.mark.anyio

RP = "/insights/reporting"
AUTH = {"Authorization": "Bearer any-token", "Accept": "application/vnd.bentley.itwin-platform.v1+json"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@asynccontextmanager
async def sandbox(db: str, **options: Any) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(db, **options)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=AUTH) as http:
            yield http


async def test_missing_and_bad_authorization(sandbox_db: str) -> None:
    async with sandbox(sandbox_db, token="pinned") as http:
        empty = await http.get(f"{RP}/reports", params={"projectId": ITWIN_ID}, headers={"Authorization": ""})
        bare = httpx2.AsyncClient(transport=http._transport, base_url="http://sandbox.test")
        no_header = await bare.get(f"{RP}/reports", params={"projectId": ITWIN_ID})
        await bare.aclose()
        assert no_header.status_code == 401
        assert no_header.json() == {
            "error": {
                "code": "HeaderNotFound",
                "message": "Header Authorization was not found in the request. Access denied.",
            }
        }
        assert empty.status_code == 401 and empty.json()["error"]["code"] == "Unauthorized"
        wrong = await http.get(f"{RP}/reports", params={"projectId": ITWIN_ID})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "Unauthorized"
        basic = await http.get(
            f"{RP}/reports", params={"projectId": ITWIN_ID}, headers={"Authorization": "Basic dXNlcjpwYXNz"}
        )
        assert basic.status_code == 401
        right = await http.get(
            f"{RP}/reports", params={"projectId": ITWIN_ID}, headers={"Authorization": "Bearer pinned"}
        )
        assert right.status_code == 200 and right.json()["reports"] == []


async def test_error_bodies_404_409_422(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        missing = await http.get(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/{UNKNOWN}")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {
                "code": "MappingNotFound",
                "message": "Requested Mapping is not available.",
                "target": "id",  # as in the Swagger's get-mapping example
            }
        }
        mapping = (
            await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": "M"})
        ).json()["mapping"]
        base = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/{mapping['id']}"
        group = await http.post(f"{base}/groups", json={"groupName": "G", "query": "SELECT * FROM bis.Element"})
        assert group.status_code == 200
        gid = group.json()["group"]["id"]
        body = {"propertyName": "Len", "type": "Length"}
        assert (await http.post(f"{base}/groups/{gid}/calculatedProperties", json=body)).status_code == 200
        conflict = await http.post(f"{base}/groups/{gid}/calculatedProperties", json=body)
        assert conflict.status_code == 409
        assert conflict.json()["error"] == {
            "code": "CalculatedPropertyExists",
            "target": "propertyName",
            "message": "CalculatedProperty with this 'propertyName' already exists.",
        }
        invalid = await http.post(f"{base}/groups", json={"groupName": "1 bad", "query": "x"})
        assert invalid.status_code == 422
        error = invalid.json()["error"]
        assert error["code"] == "InvalidInsightsRequest" and error["target"] == "groupName"
        assert error["details"][0]["target"] == "groupName"
        missing_field = await http.post(f"{base}/groups", json={"groupName": "G2"})
        assert missing_field.status_code == 422 and missing_field.json()["error"]["target"] == "query"
        not_json = await http.post(f"{base}/groups", content=b"{nope", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["error"]["target"] == "body"
        empty_patch = await http.patch(base, json={})
        assert empty_patch.status_code == 422
        bad_top = await http.get(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", params={"$top": "0"})
        assert bad_top.status_code == 422 and bad_top.json()["error"]["target"] == "$top"
        bad_token = await http.get(
            f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", params={"$continuationToken": "garbage!"}
        )
        assert bad_token.status_code == 422 and bad_token.json()["error"]["target"] == "$continuationToken"
        nowhere = await http.get("/insights/reporting/nothing/here")
        assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "ResourceNotFound"
        # Unknown JSON fields are ignored, as the service does.
        extra = await http.post(
            f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": "Extra", "colour": "red"}
        )
        assert extra.status_code == 200 and "colour" not in extra.json()["mapping"]


async def test_paging_2500_reports_with_top_1000_yields_each_once(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        store = http._transport.app.state.sandbox.store  # type: ignore[attr-defined]
        with store.transaction():  # 2,500 rows through the store; the walk below is pure HTTP
            for i in range(2500):
                store.insert(
                    "report",
                    ITWIN_ID,
                    {
                        "id": f"r-{i:04}",
                        "displayName": f"R{i}",
                        "description": "",
                        "deleted": False,
                        "createdOn": "x",
                        "modifiedOn": "x",
                    },
                )
        seen: list[str] = []
        url: str | None = f"{RP}/reports?projectId={ITWIN_ID}&$top=1000"
        pages = 0
        while url:
            page = (await http.get(url)).json()
            seen += [r["id"] for r in page["reports"]]
            assert page["_links"]["self"]["href"].startswith("http://sandbox.test/insights/reporting/reports")
            url = page["_links"].get("next", {}).get("href")
            pages += 1
        assert pages == 3
        assert len(seen) == 2500 and len(set(seen)) == 2500


async def test_state_persists_across_restart(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        report = (await http.post(f"{RP}/reports", json={"displayName": "Kept", "projectId": ITWIN_ID})).json()
    async with sandbox(sandbox_db) as http:
        again = await http.get(f"{RP}/reports/{report['report']['id']}")
        assert again.status_code == 200 and again.json()["report"]["displayName"] == "Kept"


async def test_restart_mid_job_leaves_it_failed_with_a_reason(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        store = http._transport.app.state.sandbox.store  # type: ignore[attr-defined]
        jobs = http._transport.app.state.sandbox.jobs  # type: ignore[attr-defined]
        with store.transaction():
            job = jobs.enqueue(BUILDING_ID, {}, "someone@example.com")  # queued, never started: as if cut off
    async with sandbox(sandbox_db) as http:
        status = (await http.get(f"{RP}/datasources/extraction/status/{job.id}")).json()["status"]
        assert status["state"] == "Failed" and "restarted" in status["reason"]
        logs = (await http.get(f"{RP}/datasources/extraction/status/{job.id}/logs")).json()["logs"]
        assert logs[-1]["state"] == "Failed" and logs[-1]["level"] == "Error"


async def test_concurrent_writes_do_not_corrupt(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:

        async def create(i: int) -> httpx2.Response:
            return await http.post(f"{RP}/reports", json={"displayName": f"C{i}", "projectId": ITWIN_ID})

        responses = await asyncio.gather(*(create(i) for i in range(50)))
        assert all(r.status_code == 200 for r in responses)
        listed = (await http.get(f"{RP}/reports", params={"projectId": ITWIN_ID})).json()["reports"]
        assert sorted(r["displayName"] for r in listed) == sorted(f"C{i}" for i in range(50))


async def test_failed_request_changes_nothing(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        mapping = (
            await http.post(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings", json={"mappingName": "M"})
        ).json()["mapping"]
        base = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/{mapping['id']}"
        before = (await http.get(base)).json()
        copy = await http.post(f"{base}/copy", json={"targetIModelId": UNKNOWN})
        assert copy.status_code == 404
        after = (await http.get(base)).json()
        assert before == after
        mappings = (await http.get(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings")).json()["mappings"]
        assert [m["id"] for m in mappings] == [mapping["id"]]


async def test_paths_with_and_without_trailing_slash(sandbox_db: str) -> None:
    async with sandbox(sandbox_db) as http:
        created = await http.post(f"{RP}/reports/", json={"displayName": "Slash", "projectId": ITWIN_ID})
        assert created.status_code == 200
        assert (await http.get(f"{RP}/datasources/imodels/{BUILDING_ID}/mappings/")).status_code == 200
        itwins = await http.get("/itwins", params={"subClass": "Project"})
        assert itwins.status_code == 200 and itwins.json()["iTwins"][0]["id"] == ITWIN_ID
        imodels = await http.get("/imodels/", params={"iTwinId": ITWIN_ID}, headers={"Prefer": "return=representation"})
        assert imodels.json()["iModels"][0]["iTwinId"] == ITWIN_ID
