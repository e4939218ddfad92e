"""Agent experience: waits with progress, bounded OData results, exports, skills, resources, prompts, completion."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceLink, ResourceTemplateReference

from itwin_insights_mcp.backend import open_client
from itwin_insights_mcp.server.app import build_server
from itwin_insights_mcp.server.local_tools import Clock
from itwin_insights_mcp.settings import Settings

from ..conftest import BUILDING_ID, ITWIN_ID
from .helpers import fails, ok, text_of

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def session(db: str, **options: Any) -> AsyncIterator[Client]:
    settings = Settings(backend="sandbox", sandbox_db=db, **options)
    async with open_client(settings) as api, Client(build_server(settings, api), raise_exceptions=True) as client:
        yield client


async def extracted_report(client: Client) -> tuple[str, dict[str, str], str]:
    """Walls of the sample building, extracted and published; returns report id, entity urls, mapping id."""
    mapping = (await ok(client, "create_mapping", imodelId=BUILDING_ID, mappingName="QTO"))["mapping"]
    ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
    group = (await ok(client, "create_group", **ids, groupName="Walls", query="SELECT * FROM Building.Wall"))["group"]
    await ok(client, "create_calculated_property", **ids, groupId=group["id"], propertyName="Volume", type="Volume")
    run = (await ok(client, "run_extraction", imodelId=BUILDING_ID))["run"]
    done = await ok(client, "wait_for_extraction", jobId=run["id"])
    assert done["done"] is True and done["state"] == "Succeeded"
    report = (await ok(client, "create_report", projectId=ITWIN_ID, displayName="QTO"))["report"]
    await ok(client, "create_report_mapping", reportId=report["id"], mappingId=mapping["id"], imodelId=BUILDING_ID)
    service = await ok(client, "get_odata_service", reportId=report["id"])
    return report["id"], {v["name"]: v["url"] for v in service["value"]}, mapping["id"]


def page_args(report_id: str, url: str) -> dict[str, str]:
    region, manifest, entity = url.split("/")
    return {"reportId": report_id, "region": region, "manifestId": manifest, "entityType": entity}


async def test_wait_reports_progress_and_returns_still_running_on_time(sandbox_db: str) -> None:
    """Over MCP with virtual time (`build_server(clock=...)`): each pause advances the clock by the interval while
    the real run goes on, so a 2 s wait ends after two pauses whatever the machine's speed. The exact pacing and the
    still-running reply on a run that never ends are in tests/unit/test_wait_for_extraction.py."""
    virtual = {"now": 0.0}
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        virtual["now"] += seconds
        await asyncio.sleep(0.005)  # let the sandbox's extraction thread run a little

    settings = Settings(backend="sandbox", sandbox_db=sandbox_db)
    clock = Clock(now=lambda: virtual["now"], sleep=pause)
    async with (
        open_client(settings) as api,
        Client(build_server(settings, api, clock=clock), raise_exceptions=True) as client,
    ):
        mapping = (await ok(client, "create_mapping", imodelId=BUILDING_ID, mappingName="All"))["mapping"]
        ids = {"imodelId": BUILDING_ID, "mappingId": mapping["id"]}
        await ok(client, "create_group", **ids, groupName="Everything", query="SELECT * FROM bis.Element")
        run = (await ok(client, "run_extraction", imodelId=BUILDING_ID))["run"]
        reported: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append((progress, total, message))

        first = await client.call_tool(
            "wait_for_extraction", {"jobId": run["id"], "waitSeconds": 2}, progress_callback=on_progress
        )
        assert not first.is_error
        status = first.structured_content
        assert status is not None and status["jobId"] == run["id"]
        assert sum(pauses) <= 2 and status["waitedSeconds"] <= 2  # bounded: it came back instead of holding the call
        if not status["done"]:
            assert status["state"] in ("Queued", "Running") and "again" in status["nextStep"]
        assert reported and all(total == 2 for _, total, _ in reported)
        assert all(message and message.split(":")[0] in ("Queued", "Running", "Succeeded") for *_, message in reported)
        while not status["done"]:
            status = await ok(client, "wait_for_extraction", jobId=run["id"])
        assert status["state"] == "Succeeded"


async def test_wait_errors(mcp: Client) -> None:
    await fails(mcp, "wait_for_extraction", 404, "ExtractionStatusNotFound", jobId="nope")
    await fails(mcp, "wait_for_extraction", None, "InvalidArguments", jobId="x", waitSeconds=120)


async def test_odata_rows_are_bounded_and_export_streams_everything(sandbox_db: str, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    async with session(sandbox_db, export_dir=str(exports), max_rows=25) as client:
        report_id, urls, _ = await extracted_report(client)
        args = page_args(report_id, urls["QTO_Walls"])
        page = await ok(client, "get_odata_entity_page", **args)
        assert len(page["value"]) == 25 and page["rowsInPage"] == 840 and page["rowsShown"] == 25
        assert page["columns"][:5] == ["ECInstanceId", "ECClassId", "UserLabel", "BBoxLow", "BBoxHigh"]
        assert "export_odata_entity" in page["note"]

        exported = await ok(client, "export_odata_entity", **args)
        path = Path(exported["path"])
        assert path.parent == exports.resolve() and path.name == "QTO_Walls.csv"
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == exported["columns"] and rows[0][-1] == "Volume"
        assert len(rows) == 841 and exported["rows"] == 840 and len(exported["preview"]) == 5

        lines = await ok(client, "export_odata_entity", **args, format="jsonl", fileName="walls.jsonl")
        records = [json.loads(line) for line in Path(lines["path"]).read_text(encoding="utf-8").splitlines()]
        assert len(records) == 840 and records[0]["ECClassId"] == "Building.Wall"

        await fails(client, "export_odata_entity", None, "InvalidArguments", **args, fileName="../escape.csv")
        await fails(client, "export_odata_entity", None, "InvalidArguments", **args, fileName="/etc/passwd")
        missing = await fails(
            client, "export_odata_entity", 404, "EntityNotFound", **{**args, "entityType": "QTO_Nothing"}
        )
        assert missing["code"] == "EntityNotFound"
        assert sorted(p.name for p in exports.iterdir()) == ["QTO_Walls.csv", "walls.jsonl"]  # no partial files


async def test_export_over_http_returns_a_resource_link(sandbox_db: str, tmp_path: Path) -> None:
    async with session(sandbox_db, export_dir=str(tmp_path), transport="http") as client:
        report_id, urls, _ = await extracted_report(client)
        result = await client.call_tool("export_odata_entity", page_args(report_id, urls["QTO_Walls"]))
        assert not result.is_error
        links = [c for c in result.content if isinstance(c, ResourceLink)]
        assert len(links) == 1 and links[0].uri == "insights://exports/QTO_Walls.csv"
        read = await client.read_resource(links[0].uri)
        assert read.contents[0].text.count("\n") == 841  # type: ignore[union-attr]
        with pytest.raises(MCPError):
            await client.read_resource("insights://exports/..%2Fsecret")


async def test_skills_resources_and_read_skill(mcp: Client) -> None:
    resources = {str(r.uri) for r in (await mcp.list_resources()).resources}
    assert "skill://index" in resources
    index = json.loads((await mcp.read_resource("skill://index")).contents[0].text)  # type: ignore[union-attr]
    names = {s["name"] for s in index["skills"]}
    assert "insights-reporting" in names
    for skill in index["skills"]:
        assert f"skill://{skill['name']}/SKILL.md" in resources and skill["description"]
    body = (await mcp.read_resource("skill://insights-reporting/SKILL.md")).contents[0].text  # type: ignore[union-attr]
    assert body.startswith("---") and "name: insights-reporting" in body
    same = await mcp.call_tool("read_skill", {"skill": "insights-reporting"})
    assert text_of(same) == body
    manifest = await mcp.call_tool("read_skill", {})
    assert json.loads(text_of(manifest)) == index
    wrong = await fails(mcp, "read_skill", None, "ToolNotAvailable", skill="insights-nothing")
    assert "insights-reporting" in wrong["message"]
    with pytest.raises(MCPError):
        await mcp.read_resource("skill://insights-reporting/../../secrets.md")


async def test_metadata_template(mcp: Client) -> None:
    templates = {t.uri_template for t in (await mcp.list_resource_templates()).resource_templates}
    assert "insights://reports/{reportId}/odata/metadata" in templates
    report_id, _, _ = await extracted_report(mcp)
    xml = (await mcp.read_resource(f"insights://reports/{report_id}/odata/metadata")).contents[0].text  # type: ignore[union-attr]
    assert '<EntitySet Name="QTO_Walls"' in xml
    with pytest.raises(MCPError):
        await mcp.read_resource("insights://reports/nope/odata/metadata")


async def test_prompts_and_completion(mcp: Client) -> None:
    prompts = {p.name for p in (await mcp.list_prompts()).prompts}
    assert prompts == {"quantity_takeoff_report", "audit_mapping", "refresh_and_check_report"}
    got = await mcp.get_prompt("quantity_takeoff_report", {"imodelId": BUILDING_ID})
    text = got.messages[0].content.text  # type: ignore[union-attr]
    assert BUILDING_ID in text and "wait_for_extraction" in text and "'Quantity take-off'" in text
    with pytest.raises(MCPError):
        await mcp.get_prompt("audit_mapping", {"imodelId": BUILDING_ID})

    imodels = await mcp.complete(PromptReference(name="quantity_takeoff_report"), {"name": "imodelId", "value": ""})
    assert BUILDING_ID in imodels.completion.values
    narrowed = await mcp.complete(
        PromptReference(name="quantity_takeoff_report"), {"name": "imodelId", "value": BUILDING_ID[:6]}
    )
    assert narrowed.completion.values == [BUILDING_ID]
    report_id, _, mapping_id = await extracted_report(mcp)
    mappings = await mcp.complete(
        PromptReference(name="audit_mapping"), {"name": "mappingId", "value": ""}, {"imodelId": BUILDING_ID}
    )
    assert mappings.completion.values == [mapping_id]
    reports = await mcp.complete(
        ResourceTemplateReference(uri="insights://reports/{reportId}/odata/metadata"),
        {"name": "reportId", "value": report_id[:4]},
    )
    assert reports.completion.values == [report_id]


async def test_auth_status_in_the_sandbox(mcp: Client) -> None:
    status = await ok(mcp, "auth_status")
    assert status["backend"] == "sandbox" and status["signedIn"] is True
    assert "ITWIN_ACCESS_TOKEN" in status["nextStep"]
