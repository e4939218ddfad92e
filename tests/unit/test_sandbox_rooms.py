"""The sandbox's rooms do their one job: the domain runs without HTTP, adapters take base paths from the catalog."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest

from itwin_insights_mcp.api.catalog import Catalog, load_catalog
from itwin_insights_mcp.sandbox.app import FAMILIES, HANDLERS, create_app
from itwin_insights_mcp.sandbox.domain import groups, mappings, properties
from itwin_insights_mcp.sandbox.domain.audit import trail
from itwin_insights_mcp.sandbox.domain.caller import Caller
from itwin_insights_mcp.sandbox.errors import SandboxError
from itwin_insights_mcp.sandbox.store import Store

from ..conftest import BUILDING_ID

AUTH = {"Authorization": "Bearer any-token", "Accept": "application/vnd.bentley.itwin-platform.v1+json"}
MOVED = {"grouping-mapping-v1": "/gm-moved", "imodels-v2": "/imodels-moved"}


@pytest.fixture
def caller(sandbox_db: str) -> Iterator[Caller]:
    store = Store(sandbox_db)
    try:
        yield Caller(store, "domain.user@example.com")
    finally:
        store.close()


def test_domain_rules_run_without_a_request(caller: Caller) -> None:
    """Mappings, groups and a Grouping & Mapping style property, through plain calls: stamped, touched, audited."""
    mapping = mappings.create_mapping(
        caller,
        BUILDING_ID,
        name="Walls",
        description=None,
        extraction_enabled=None,
        default_extraction_enabled=False,
    )
    assert mapping.data["createdBy"] == "domain.user@example.com"
    assert mapping.data["extractionEnabled"] is False
    group = groups.create_group(
        caller, mapping, name="AllWalls", description="", query="SELECT * FROM Building.Wall", metadata=[]
    )
    data = properties.unified_property(
        caller.store,
        mapping,
        group,
        None,
        name="WallLength",
        data_type="Double",
        quantity_type=None,
        ec_properties=None,
        calculated_type="Length",
        formula=None,
    )
    assert (data["kind"], data["quantityType"]) == ("calculated", "Distance")
    prop = properties.add_property(caller, mapping, group, data)
    assert properties.name_taken(caller.store, group.id, "walllength")
    assert not properties.name_taken(caller.store, group.id, "walllength", exclude=prop.id)

    renamed = mappings.update_mapping(caller, mappings.mapping(caller.store, mapping.id), name="Walls2")
    assert (renamed.data["mappingName"], renamed.data["description"]) == ("Walls2", "")

    paths = [(e["action"], e["path"]) for e in trail(caller.store, BUILDING_ID, path=f"mappings/{mapping.id}")]
    assert paths == [
        ("Create", f"mappings/{mapping.id}"),
        ("Create", f"mappings/{mapping.id}/groups/{group.id}"),
        ("Create", f"mappings/{mapping.id}/groups/{group.id}/properties/{prop.id}"),
        ("Update", f"mappings/{mapping.id}"),
    ]


def test_domain_422_leaves_the_code_to_the_family(caller: Caller) -> None:
    """A rule's 422 carries no family code (the adapter's family fills it in), and the write changes nothing."""
    mapping = mappings.create_mapping(
        caller, BUILDING_ID, name="M", description="", extraction_enabled=True, default_extraction_enabled=True
    )
    group = groups.create_group(caller, mapping, name="G", description="", query="SELECT * FROM Building.Wall")
    with pytest.raises(SandboxError) as raised:
        properties.check_formulas(caller.store, group.id, "Bad", "NoSuchColumn * 2", None)
    assert (raised.value.status, raised.value.code, raised.value.target) == (422, None, "formula")
    with pytest.raises(SandboxError) as missing:
        mappings.copy_mapping(caller, mapping, "not-an-imodel", None)
    assert (missing.value.status, missing.value.code, missing.value.target) == (404, "iModelNotFound", "targetIModelId")
    assert [m.data["mappingName"] for m in caller.store.children("mapping", BUILDING_ID)] == ["M"]


def _moved_catalog() -> Catalog:
    ops = []
    for op in load_catalog():
        base = MOVED.get(op.family.name)
        ops.append(
            op if base is None else dataclasses.replace(op, family=dataclasses.replace(op.family, base_path=base))
        )
    return Catalog(ops)


@asynccontextmanager
async def _sandbox(db: str, catalog: Catalog) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(db, catalog=catalog)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=AUTH) as http:
            yield http


@pytest.mark.anyio
async def test_routes_and_links_follow_the_catalog_base_paths(sandbox_db: str) -> None:
    """Move two families in the catalog: their routes move, and every link the adapters write moves with them."""
    async with _sandbox(sandbox_db, _moved_catalog()) as http:
        gm = "/gm-moved/datasources/imodel-mappings"
        assert (await http.post("/grouping-and-mapping/datasources/imodel-mappings", json={})).status_code == 404
        created = await http.post(gm, json={"iModelId": BUILDING_ID, "mappingName": "Moved"})
        assert created.status_code in (200, 201), created.text
        mapping = created.json()["mapping"]
        assert mapping["_links"]["iModel"]["href"] == f"http://sandbox.test/imodels-moved/{BUILDING_ID}"
        group = await http.post(
            f"{gm}/{mapping['id']}/groups", json={"groupName": "Walls", "query": "SELECT * FROM Building.Wall"}
        )
        assert group.status_code in (200, 201), group.text
        links = group.json()["group"]["_links"]
        assert links["mapping"]["href"] == f"http://sandbox.test{gm}/{mapping['id']}"
        imodel = await http.get(f"/imodels-moved/{BUILDING_ID}", headers={"Accept": "application/json"})
        assert imodel.status_code == 200, imodel.text
        href = imodel.json()["iModel"]["_links"]["changesets"]["href"]
        assert href == f"http://sandbox.test/imodels-moved/{BUILDING_ID}/changesets"
        # Reporting v1 did not move, and links its mappings' iModel under the moved iModels base path.
        v1 = await http.get(f"/insights/reporting/datasources/imodels/{BUILDING_ID}/mappings")
        assert v1.status_code == 200, v1.text
        hrefs = {m["_links"]["imodel"]["href"] for m in v1.json()["mappings"]}
        assert hrefs == {f"http://sandbox.test/imodels-moved/{BUILDING_ID}"}


def test_each_family_is_served_by_adapters_that_do_not_overlap() -> None:
    """One handler per (family, operation): no adapter silently replaces another's, and every one is routed."""
    for family, adapters in FAMILIES.items():
        ids = [op_id for adapter in adapters for op_id in adapter]
        assert len(ids) == len(set(ids)), family
    catalog_keys = {op.key for op in load_catalog()}
    assert set(HANDLERS) == catalog_keys
