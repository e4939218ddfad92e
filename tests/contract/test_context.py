"""Contract: the discovery tools (iTwins, iModels, changesets) an agent uses to find its ids."""

from __future__ import annotations

import pytest
from mcp import Client

from ..conftest import BUILDING_ID, ITWIN_ID, SITE_ID
from .helpers import fails, ok

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def test_list_and_get_itwins(mcp: Client) -> None:
    listed = await ok(mcp, "list_itwins", subClass="Project")
    assert [(i["id"], i["displayName"]) for i in listed["iTwins"]] == [(ITWIN_ID, "Sandbox Project")]
    assert set(listed["iTwins"][0]) == {"id", "class", "subClass", "type", "number", "displayName"}
    assert listed["nextSkip"] is None and listed["_links"]["next"] is None
    assert (await ok(mcp, "list_itwins", search="sandbox"))["iTwins"][0]["id"] == ITWIN_ID
    assert (await ok(mcp, "list_itwins", search="nothing-like-this"))["iTwins"] == []
    assert (await ok(mcp, "get_itwin", iTwinId=ITWIN_ID))["iTwin"]["number"] == "SBX-0001"
    await fails(mcp, "get_itwin", 404, "iTwinNotFound", iTwinId=UNKNOWN)
    bad = await fails(mcp, "list_itwins", 422, "InvalidiTwinsRequest", subClass="Planet")
    assert bad["details"][0]["target"] == "subClass"


async def test_list_and_get_imodels(mcp: Client) -> None:
    listed = (await ok(mcp, "list_imodels", iTwinId=ITWIN_ID))["iModels"]
    assert {i["id"] for i in listed} == {BUILDING_ID, SITE_ID}
    assert set(listed[0]) == {"id", "displayName"}
    found = (await ok(mcp, "list_imodels", iTwinId=ITWIN_ID, search="storey"))["iModels"]
    assert [i["displayName"] for i in found] == ["Sample Office Building"]
    paged = await ok(mcp, "list_imodels", iTwinId=ITWIN_ID, top=1)
    assert len(paged["iModels"]) == 1 and paged["nextContinuationToken"]
    rest = await ok(mcp, "list_imodels", iTwinId=ITWIN_ID, top=1, continuationToken=paged["nextContinuationToken"])
    assert len(rest["iModels"]) == 1 and rest["iModels"][0]["id"] != paged["iModels"][0]["id"]
    imodel = (await ok(mcp, "get_imodel", iModelId=BUILDING_ID))["iModel"]
    assert imodel["iTwinId"] == ITWIN_ID and imodel["state"] == "initialized"
    assert imodel["_links"]["changesets"]["href"].endswith(f"/imodels/{BUILDING_ID}/changesets")
    await fails(mcp, "get_imodel", 404, "iModelNotFound", iModelId=UNKNOWN)
    await fails(mcp, "list_imodels", 404, "iTwinNotFound", iTwinId=UNKNOWN)
    await fails(mcp, "list_imodels", None, "InvalidArguments")


async def test_list_changesets(mcp: Client) -> None:
    changesets = (await ok(mcp, "list_changesets", iModelId=BUILDING_ID))["changesets"]
    assert [c["index"] for c in changesets] == [1, 2, 3, 4, 5]
    latest = (await ok(mcp, "list_changesets", iModelId=BUILDING_ID, orderBy="index desc", top=1))["changesets"]
    assert latest[0]["index"] == 5 and len(latest[0]["id"]) == 40
    ranged = (await ok(mcp, "list_changesets", iModelId=BUILDING_ID, afterIndex=2, lastIndex=4))["changesets"]
    assert [c["index"] for c in ranged] == [3, 4]
    await fails(mcp, "list_changesets", 404, "iModelNotFound", iModelId=UNKNOWN)
    await fails(mcp, "list_changesets", None, "InvalidArguments", iModelId=BUILDING_ID, orderBy="size")
