"""Power BI's way in, and the mixed workflow Bentley's own tools use today, end to end over HTTP.

The MCP server runs with the *Bentley* backend pointed at a sandbox served over HTTP, so every tool call crosses a
real socket. Mapping and properties via Grouping & Mapping -> extraction -> a v1 report with that mapping -> an API
key -> the feed read like Power BI's OData connector: only `Authorization: Basic`, no Accept header,
`?api-version=v1`.
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from mcp import Client

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from ..contract.helpers import ok
from .conftest import COMMAND, child_env, free_port, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_url(sandbox_db: str) -> Iterator[str]:
    port = free_port()
    env = child_env(sandbox_db, INSIGHTS_SANDBOX_ODATA_PAGE_SIZE="100")
    process = subprocess.Popen(
        [COMMAND, "sandbox", "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/itwins/", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def tools(sandbox_url: str) -> AsyncIterator[Client]:
    settings = Settings(backend="bentley", api_base_url=sandbox_url, access_token="analyst-token", profile="current")
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


def power_bi_get(url: str, key: str, **extra: Any) -> httpx2.Response:
    """A GET as Power BI's OData connector sends it: Basic credentials with the key as password, no Accept."""
    basic = base64.b64encode(f"powerbi:{key}".encode()).decode()
    return httpx2.get(url, headers={"Authorization": f"Basic {basic}"}, **extra)


async def test_mixed_workflow_then_power_bi_reads_the_feed(tools: Client, sandbox_url: str, sandbox_db: str) -> None:
    mcp = tools
    mapping = (await ok(mcp, "gm_create_mapping", iModelId=BUILDING_ID, mappingName="PowerBI"))["mapping"]
    group = (
        await ok(
            mcp, "gm_create_group", mappingId=mapping["id"], groupName="Columns", query="SELECT * FROM Building.Column"
        )
    )["group"]
    gid = {"mappingId": mapping["id"], "groupId": group["id"]}
    await ok(
        mcp,
        "gm_create_property",
        **gid,
        propertyName="Profile",
        dataType="String",
        ecProperties=[{"ecSchemaName": "Building", "ecClassName": "Column", "ecPropertyName": "Profile"}],
    )
    await ok(
        mcp, "gm_create_property", **gid, propertyName="Volume", dataType="Double", calculatedPropertyType="Volume"
    )
    await ok(mcp, "gm_create_property", **gid, propertyName="Mass", dataType="Double", formula="Volume * 2400")
    run = (await ok(mcp, "gm_run_extraction", iModelId=BUILDING_ID, mappings=[{"id": mapping["id"]}]))["extraction"]
    assert (await ok(mcp, "wait_for_extraction", jobId=run["id"]))["state"] == "Succeeded"
    report = (await ok(mcp, "create_report", projectId=ITWIN_ID, displayName="Power BI"))["report"]
    await ok(mcp, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)
    expires = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    key = (await ok(mcp, "create_api_key", displayName="Power BI", reportId=report["id"], expiresAt=expires))["key"]
    secret = key["apiKey"]

    feed = report["_links"]["odata"]["href"]
    assert feed.endswith("?api-version=v1")
    service = power_bi_get(feed, secret)
    assert service.status_code == 200
    entity = service.json()["value"][0]
    assert entity["name"] == "PowerBI_Columns"
    base = feed.split("?")[0]
    metadata = power_bi_get(f"{base}/$metadata", secret, params={"api-version": "v1"})
    assert metadata.status_code == 200 and 'Name="PowerBI_Columns"' in metadata.text
    assert '<Property Name="Mass" Type="Edm.Double"/>' in metadata.text
    rows: list[dict[str, Any]] = []
    url: str | None = f"{base}/{entity['url']}?api-version=v1"
    pages = 0
    while url:
        page = power_bi_get(url, secret)
        assert page.status_code == 200
        rows += page.json()["value"]
        url = page.json().get("@odata.nextLink")
        pages += 1
    conn = sqlite3.connect(sandbox_db)
    volumes = dict(
        conn.execute(
            "SELECT printf('0x%x', id), volume FROM im_elements WHERE imodel_id = ? AND class_id = 261", (BUILDING_ID,)
        ).fetchall()
    )
    conn.close()
    assert len(rows) == len(volumes) == 180 and pages == 2
    assert all(abs(r["Mass"] - volumes[r["ECInstanceId"]] * 2400) < 1e-6 for r in rows)

    # The same key is refused for another report, and everywhere once revoked or expired.
    other = (await ok(mcp, "create_report", projectId=ITWIN_ID, displayName="Other"))["report"]
    assert power_bi_get(other["_links"]["odata"]["href"], secret).status_code == 401
    assert power_bi_get(f"{sandbox_url}/insights/reporting/reports/{report['id']}", secret).status_code == 401
    await ok(mcp, "revoke_api_key", apiKeyId=key["id"])
    revoked = power_bi_get(feed, secret)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "Unauthorized"

    second = (await ok(mcp, "create_api_key", displayName="Excel", reportId=report["id"], expiresAt=expires))["key"]
    assert power_bi_get(feed, second["apiKey"]).status_code == 200
    conn = sqlite3.connect(sandbox_db)
    with conn:  # let the key run out, as time would
        conn.execute(
            "UPDATE records SET data = json_set(data, '$.expiresAt', '2020-01-01T00:00:00Z') "
            "WHERE kind = 'api_key' AND id = ?",
            (second["id"],),
        )
    conn.close()
    assert power_bi_get(feed, second["apiKey"]).status_code == 401
    listed = (await ok(mcp, "list_api_keys", expired=True))["keys"]
    assert [k["id"] for k in listed] == [second["id"]]
