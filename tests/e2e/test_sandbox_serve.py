"""`itwin-insights-mcp sandbox serve`, then plain curl calls returning the reference's shapes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from ..conftest import BUILDING_ID, ITWIN_ID
from .conftest import COMMAND, child_env, free_port, wait_for

CURL = shutil.which("curl") or "curl"


@pytest.fixture
def sandbox_url(sandbox_db: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "sandbox", "serve", "--port", str(port)],
        env=child_env(sandbox_db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/itwins/", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def curl(*args: str, auth: bool = True) -> tuple[int, dict[str, object]]:
    token = ["-H", "Authorization: Bearer demo"] if auth else []
    done = subprocess.run(
        [
            CURL,
            "-s",
            "-w",
            "\n%{http_code}",
            *token,
            "-H",
            "Accept: application/vnd.bentley.itwin-platform.v1+json",
            *args,
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    body, _, status = done.stdout.decode().rpartition("\n")
    return int(status), (json.loads(body) if body.strip() else {})


def test_curl_walks_the_api(sandbox_url: str) -> None:
    status, itwins = curl(f"{sandbox_url}/itwins/?subClass=Project")
    assert status == 200 and itwins["iTwins"][0]["id"] == ITWIN_ID  # type: ignore[index]
    status, created = curl(
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"mappingName":"Curl"}',
        f"{sandbox_url}/insights/reporting/datasources/imodels/{BUILDING_ID}/mappings",
    )
    assert status == 200
    mapping = created["mapping"]
    assert isinstance(mapping, dict) and mapping["_links"]["imodel"]["href"] == f"{sandbox_url}/imodels/{BUILDING_ID}"
    status, page = curl(f"{sandbox_url}/insights/reporting/datasources/imodels/{BUILDING_ID}/mappings/?$top=100")
    assert status == 200 and page["_links"]["self"]["href"].startswith(sandbox_url)  # type: ignore[index]
    status, error = curl(f"{sandbox_url}/insights/reporting/reports/nope")
    assert status == 404 and error == {
        "error": {"code": "ReportNotFound", "message": "Requested Report is not available.", "target": "id"}
    }
    status, denied = curl(f"{sandbox_url}/insights/reporting/reports/nope", auth=False)
    assert status == 401 and denied["error"]["code"] == "HeaderNotFound"  # type: ignore[index]
    status, deleted = curl(
        "-X", "DELETE", f"{sandbox_url}/insights/reporting/datasources/imodels/{BUILDING_ID}/mappings/{mapping['id']}"
    )
    assert status == 204 and deleted == {}
