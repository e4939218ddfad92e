"""The report view over real HTTP and in a real browser. Negotiation: which HTTP clients are offered the view.
Browser: headless Chromium (Debian's `chromium`, driven by Playwright) loads a minimal
MCP Apps host page (tests/e2e/ui_host.html) against the real server over HTTP. The host calls the OData page tool,
renders its `ui://` view, and the test reads the DOM: row count, a sorted column, the chart's bars against the data,
paging through the app-only tool, the host's theme, and a screenshot.

UPDATE_UI_SCREENSHOT=1 also writes the screenshot to docs/report-view.png (the README's picture).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mcp import Client
from mcp.client import advertise

from ..contract.helpers import ok
from ..contract.ui_takeoff import publish_takeoff
from .conftest import COMMAND, child_env, free_port, http_server, wait_for

HOST_PAGE = Path(__file__).with_name("ui_host.html")
SCREENSHOT = Path(__file__).parents[2] / "docs" / "report-view.png"
PAGE_SIZE = 25  # OData rows per feed page: the walls span several pages
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is needed for the browser test (.ci/run installs it)"
    return path


@pytest.fixture
def server(sandbox_db: str) -> Iterator[str]:
    """`itwin-insights-mcp serve --transport http` (stateless) with small OData pages."""
    port = free_port()
    env = child_env(sandbox_db, INSIGHTS_SANDBOX_ODATA_PAGE_SIZE=str(PAGE_SIZE))
    process = subprocess.Popen(
        [COMMAND, "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _prepare(base: str) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    async def run() -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
        async with Client(f"{base}/mcp") as client:
            args = (await publish_takeoff(client))["Walls"]
            pages = []
            for sequence in (0, 1):
                page = await ok(client, "get_odata_entity_page", **args, sequence=sequence)
                assert page["rowsShown"] == page["rowsInPage"], "the test needs whole pages"
                pages.append(page["value"])
        return args, pages

    return asyncio.run(run())


APPS = advertise("io.modelcontextprotocol/ui", {"mimeTypes": ["text/html;profile=mcp-app"]})


async def _offered(url: str, mode: str, apps: bool) -> bool:
    """Whether this client sees the view: the page tool's link and the app-only tool."""
    async with Client(url, mode=mode, extensions=[APPS] if apps else None) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        linked = (tools["get_odata_entity_page"].meta or {}).get("ui") is not None
        assert linked == ("view_odata_page" in tools)
        return linked


@pytest.mark.parametrize("sessions", [False, True])
def test_only_http_clients_that_declare_the_extension_are_offered_the_view(sandbox_db: str, sessions: bool) -> None:
    """2026-07-28 clients declare it on every request, so stateless HTTP sees it; a 2025-era client declares it once
    in `initialize`, which only a session remembers (stateless, such a client gets the text-only tools)."""
    with http_server(sandbox_db, *(["--http-sessions"] if sessions else [])) as (base, _):
        url = f"{base}/mcp"
        assert asyncio.run(_offered(url, "auto", apps=True)) is True
        assert asyncio.run(_offered(url, "auto", apps=False)) is False
        assert asyncio.run(_offered(url, "legacy", apps=False)) is False
        assert asyncio.run(_offered(url, "legacy", apps=True)) is sessions


def _cells(frame: Any, column: str, columns: list[str]) -> list[str]:
    index = columns.index(column)
    texts: list[str] = frame.locator(f"#table tbody tr td:nth-child({index + 1})").all_inner_texts()
    return texts


def test_the_report_view_renders_sorts_charts_and_pages_in_chromium(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    args, pages = _prepare(server)
    rows = pages[0]
    assert len(rows) == PAGE_SIZE and pages[1], "the sample building has more than one page of walls"
    host_url = f"{server}/ui-test-host.html?tool=get_odata_entity_page&args={quote(json.dumps(args))}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            # The host page is served from the server's origin (so /mcp is same-origin); everything else is real.
            page.route("**/ui-test-host.html*", lambda route: route.fulfill(path=str(HOST_PAGE)))
            page.goto(host_url)
            page.wait_for_function("window.host.ready || window.host.errors.length", timeout=20_000)
            host = page.evaluate("window.host")
            assert not host["errors"], host["errors"]
            assert host["view"]["mimeType"] == "text/html;profile=mcp-app"
            assert host["view"]["csp"] == {"connectDomains": [], "resourceDomains": []}
            assert "view_odata_page" in host["appTools"] and "view_odata_page" not in host["modelTools"]
            assert "get_odata_entity_page" in host["modelTools"]

            frame = page.frame_locator("iframe#view")
            # The view asks for the whole first page (types and units) through the app-only tool.
            page.wait_for_function("window.host.calls.length >= 1", timeout=20_000)
            summary = frame.locator("#summary")
            summary.filter(has_text=f"{PAGE_SIZE} rows").wait_for(timeout=20_000)
            assert "more pages follow" in summary.inner_text()
            assert frame.locator("#entity").inner_text() == args["entityType"]
            assert frame.locator("#feed").input_value().endswith(f"/insights/reporting/odata/{args['reportId']}")
            assert frame.locator("#table tbody tr").count() == 20  # 20 rows per screen of the view
            columns = frame.locator("#table thead th .name").all_inner_texts()
            assert columns == list(rows[0])
            volume_header = frame.locator('th[data-column="Volume"]')
            assert "Double" in volume_header.inner_text() and "m³" in volume_header.inner_text()

            # The chart: sum of Volume by Material, one bar per material, lengths proportional to the sums.
            frame.locator("#group-by").select_option("Material")
            frame.locator("#sum-of").select_option("Volume")
            expected: dict[str, float] = defaultdict(float)
            for row in rows:
                expected[str(row["Material"])] += float(row["Volume"])
            bars = frame.locator("#chart rect.bar")
            assert bars.count() == len(expected)
            drawn = {
                bars.nth(i).get_attribute("data-key"): (
                    float(bars.nth(i).get_attribute("data-value") or "nan"),
                    float(bars.nth(i).get_attribute("width") or "nan"),
                )
                for i in range(bars.count())
            }
            assert {k: v for k, (v, _) in drawn.items()} == pytest.approx(dict(expected), rel=1e-9)
            widest = max(expected, key=lambda k: expected[k])
            for key, (value, width) in drawn.items():
                assert width / drawn[widest][1] == pytest.approx(value / expected[widest], rel=1e-3), key

            shot = frame.locator("main").screenshot(path=str(tmp_path / "report-view.png"))
            assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
            if os.environ.get("UPDATE_UI_SCREENSHOT") == "1":
                SCREENSHOT.write_bytes(shot)

            # Sorting: ascending, then descending, by the numeric Volume column.
            volumes = sorted(float(r["Volume"]) for r in rows)
            volume_header.click()
            assert volume_header.get_attribute("aria-sort") == "ascending"
            shown = [float(v.replace(",", "")) for v in _cells(frame, "Volume", columns)]
            assert shown == pytest.approx(volumes[:20], rel=1e-3)
            volume_header.click()
            assert volume_header.get_attribute("aria-sort") == "descending"
            shown = [float(v.replace(",", "")) for v in _cells(frame, "Volume", columns)]
            assert shown == pytest.approx(volumes[::-1][:20], rel=1e-3)

            # Paging inside the view: an app-only tool call through the host, then the second feed page.
            calls_before = len(page.evaluate("window.host.calls"))
            frame.locator("#next-page").click()
            summary.filter(has_text="feed page 2").wait_for(timeout=20_000)
            calls = page.evaluate("window.host.calls")
            assert len(calls) == calls_before + 1
            assert calls[-1] == {"name": "view_odata_page", "arguments": {**args, "sequence": 1}}
            assert page.evaluate("window.host.errors") == []
            ids = _cells(frame, "ECInstanceId", columns)  # still sorted by Volume, descending
            second = sorted(pages[1], key=lambda r: float(r["Volume"]), reverse=True)
            assert ids == [str(r["ECInstanceId"]) for r in second[:20]]

            # Sorting from the keyboard too.
            material = frame.locator('th[data-column="Material"]')
            material.press("Enter")
            assert material.get_attribute("aria-sort") == "ascending"
            assert volume_header.get_attribute("aria-sort") is None
            materials = _cells(frame, "Material", columns)
            assert materials == sorted(materials)

            # Light and dark from the host's variables.
            background = "getComputedStyle(document.body).backgroundColor"
            assert frame.locator("body").evaluate(f"() => {background}") == "rgb(255, 255, 255)"
            page.evaluate("window.setTheme('dark')")
            frame.locator('html[data-theme="dark"]').wait_for(timeout=5_000)
            assert frame.locator("body").evaluate(f"() => {background}") == "rgb(16, 20, 24)"
        finally:
            browser.close()


def test_without_server_tools_the_view_shows_the_models_result_alone(server: str) -> None:
    """A host that does not proxy tool calls: the view renders the tool result it was given (types inferred from the
    values), makes no call and offers no feed paging."""
    from playwright.sync_api import sync_playwright

    args, pages = _prepare(server)
    host_url = f"{server}/ui-test-host.html?serverTools=0&tool=get_odata_entity_page&args={quote(json.dumps(args))}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.route("**/ui-test-host.html*", lambda route: route.fulfill(path=str(HOST_PAGE)))
            page.goto(host_url)
            page.wait_for_function("window.host.ready || window.host.errors.length", timeout=20_000)
            frame = page.frame_locator("iframe#view")
            frame.locator("#summary").filter(has_text=f"{PAGE_SIZE} rows").wait_for(timeout=20_000)
            assert frame.locator('th[data-column="Volume"] .type').inner_text() == "number"
            assert frame.locator("#next-page").is_disabled() and frame.locator("#prev-page").is_disabled()
            ids = frame.locator("#table tbody tr td:first-child").all_inner_texts()
            assert ids == [str(r["ECInstanceId"]) for r in pages[0][:20]]
            assert page.evaluate("window.host.calls") == [] and page.evaluate("window.host.errors") == []
        finally:
            browser.close()


def test_the_view_renders_positional_query_rows(server: str) -> None:
    """The generic shape a query tool can return (`meta` column names, each row a JSON array, navigation properties
    as objects), as the iModel Query API gives it: a table by column and a chart of the numeric column."""
    from playwright.sync_api import sync_playwright

    result = {
        "content": [{"type": "text", "text": "3 rows"}],
        "structuredContent": {
            "meta": [{"name": "ECInstanceId"}, {"name": "Model"}, {"name": "Category"}, {"name": "Volume"}],
            "rows": [
                ["0x1", {"Id": "0x10", "RelECClassId": "0x40"}, "Walls", 2.5],
                ["0x2", {"Id": "0x10", "RelECClassId": "0x40"}, "Slabs", 3.25],
                ["0x3", {"Id": "0x11", "RelECClassId": "0x40"}, "Walls", 1.5],
            ],
        },
    }
    host_url = (
        f"{server}/ui-test-host.html?tool=get_odata_entity_page&args={quote(json.dumps({}))}"
        f"&result={quote(json.dumps(result))}"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.route("**/ui-test-host.html*", lambda route: route.fulfill(path=str(HOST_PAGE)))
            page.goto(host_url)
            frame = page.frame_locator("iframe#view")
            frame.locator("#summary").filter(has_text="3 rows").wait_for(timeout=20_000)
            columns = frame.locator("#table thead th .name").all_inner_texts()
            assert columns == ["ECInstanceId", "Model", "Category", "Volume"]
            assert _cells(frame, "Model", columns)[0] == '{"Id":"0x10","RelECClassId":"0x40"}'
            assert _cells(frame, "Category", columns) == ["Walls", "Slabs", "Walls"]
            frame.locator("#group-by").select_option("Category")
            bars = frame.locator("#chart rect.bar")
            drawn = {bars.nth(i).get_attribute("data-key"): bars.nth(i).get_attribute("data-value") for i in range(2)}
            assert drawn == {"Walls": "4", "Slabs": "3.25"}
            assert frame.locator("#next-page").is_disabled() and page.evaluate("window.host.calls") == []
        finally:
            browser.close()
