"""The sandbox feed read by a standard OData v4 client from PyPI (python-odata), over real HTTP.

Like Power BI's connector, the client reads the service document, reflects `$metadata` into entity types, then
reads an entity set at the URL the service document gives and follows `@odata.nextLink` to the end.
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import time
from collections.abc import Iterator

import httpx2
import pytest
import requests
from odata import ODataService

from ..conftest import BUILDING_ID, ITWIN_ID
from .conftest import COMMAND, child_env, free_port, wait_for

RP = "/insights/reporting"
AUTH = {"Authorization": "Bearer analyst"}


@pytest.fixture
def feed(sandbox_db: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A sandbox over HTTP (100-row pages) with one extracted mapping linked to a report."""
    port = free_port()
    env = child_env(sandbox_db, INSIGHTS_SANDBOX_ODATA_PAGE_SIZE="100")
    process = subprocess.Popen(
        [COMMAND, "sandbox", "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/itwins/", process)
        with httpx2.Client(base_url=base, headers=AUTH) as api:
            mappings = f"{RP}/datasources/imodels/{BUILDING_ID}/mappings"
            mapping = api.post(mappings, json={"mappingName": "QTO"}).json()["mapping"]
            group = api.post(
                f"{mappings}/{mapping['id']}/groups",
                json={"groupName": "Walls", "query": "SELECT * FROM Building.Wall"},
            ).json()["group"]
            props = f"{mappings}/{mapping['id']}/groups/{group['id']}"
            api.post(f"{props}/calculatedProperties", json={"propertyName": "Volume", "type": "Volume"})
            api.post(
                f"{props}/properties",
                json={
                    "propertyName": "External",
                    "dataType": "Boolean",
                    "ecProperties": [
                        {
                            "ecSchemaName": "Building",
                            "ecClassName": "Wall",
                            "ecPropertyName": "IsExternal",
                            "ecPropertyType": "Boolean",
                        }
                    ],
                },
            )
            run = api.post(f"{RP}/datasources/imodels/{BUILDING_ID}/extraction/run").json()["run"]
            deadline = time.monotonic() + 60
            while api.get(f"{RP}/datasources/extraction/status/{run['id']}").json()["status"]["state"] != "Succeeded":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            report = api.post(f"{RP}/reports", json={"displayName": "QTO", "projectId": ITWIN_ID}).json()["report"]
            api.post(
                f"{RP}/reports/{report['id']}/datasources/imodelMappings",
                json={"mappingId": mapping["id"], "imodelId": BUILDING_ID},
            )
            service = f"{base}{RP}/odata/{report['id']}"
            urls = {item["name"]: item["url"] for item in api.get(service).json()["value"]}
        yield service, sandbox_db, urls
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_python_odata_reflects_metadata_and_reads_every_page(feed: tuple[str, str, dict[str, str]]) -> None:
    service_url, db, urls = feed
    session = requests.Session()
    session.headers.update(AUTH)
    service = ODataService(service_url, reflect_entities=True, session=session, quiet_progress=True)
    assert set(service.entities) == {"QTO_Walls"}
    walls = service.entities["QTO_Walls"]
    walls.__odata_collection__ = urls["QTO_Walls"]  # the entity set lives at the URL the service document gives
    rows = list(service.query(walls))

    conn = sqlite3.connect(db)
    expected = dict(
        conn.execute(
            "SELECT printf('0x%x', id), volume FROM im_elements WHERE imodel_id = ? AND class_id = 257", (BUILDING_ID,)
        ).fetchall()
    )
    conn.close()
    assert len(rows) == len(expected) == 840  # nine pages of 100, followed by the client
    for row in rows:
        assert math.isclose(row.Volume, expected[row.ECInstanceId])
        assert isinstance(row.External, bool)
