"""What every peer comparison shares: the machine, the HTTP sandbox, the servers as child processes, statistics.

Every server under test talks to one sandbox served over HTTP on 127.0.0.1 (`itwin-insights-mcp sandbox serve`),
so ours and FastMCP's cross the same socket to the same API. Ours runs with the `bentley` backend pointed at it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PEERS = BENCH_DIR / "peers"
FASTMCP_VENV = BENCH_DIR / ".venv-fastmcp"
FASTMCP_REQUIREMENT = "fastmcp==4.2.3"  # pinned so a re-run measures the same peer
TOKEN = "bench"
ACCEPT_V1 = "application/vnd.bentley.itwin-platform.v1+json"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": ACCEPT_V1}
SANDBOX_ITWIN = "5dd80221-4b44-5fa2-9d55-a54755e21a6a"  # the sandbox's sample project
OUR_CLI = str(Path(sys.executable).with_name("itwin-insights-mcp"))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    import psutil

    return {
        "date": dt.date.today().isoformat(),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def ratio(ours: float, baseline: float) -> float | None:
    return round(ours / baseline, 2) if baseline else None


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, headers=headers, timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.05)


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (a GET on /mcp would open a held SSE stream)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout} s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def quiet_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["ITWIN_INSIGHTS_LOG_LEVEL"] = "WARNING"
    env["FASTMCP_LOG_LEVEL"] = "WARNING"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Sandbox:
    """The HTTP sandbox every server under test calls, with one report to read."""

    url: str
    report_id: str
    spec_path: Path


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    from .openapi_doc import write_document

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        db = str(Path(tmp) / "sandbox.db")
        cmd = [OUR_CLI, "sandbox", "serve", "--port", str(port), "--db", db, "--token", TOKEN]
        proc = subprocess.Popen(cmd, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/itwins", headers=HEADERS)
            created = httpx.post(f"{url}/insights/reporting/reports", headers=HEADERS,
                                 json={"displayName": "Bench report", "projectId": SANDBOX_ITWIN})
            created.raise_for_status()
            spec = write_document(url, Path(tmp) / "reporting-v1.json")
            yield Sandbox(url=url, report_id=created.json()["report"]["id"], spec_path=spec)
        finally:
            stop(proc)


def ensure_fastmcp_venv() -> Path:
    """FastMCP pins its own `mcp`: it lives in bench/.venv-fastmcp (made here on first use), never in ours."""
    python = FASTMCP_VENV / "bin" / "python"
    probe = [str(python), "-c", "import fastmcp, sys; sys.exit(fastmcp.__version__ != sys.argv[1])",
             FASTMCP_REQUIREMENT.split("==")[1]]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    log(f"creating {FASTMCP_VENV} with {FASTMCP_REQUIREMENT} (once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(FASTMCP_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", FASTMCP_REQUIREMENT], check=True)
    return python


# ---------------------------------------------------------------- the servers under test


@dataclass(frozen=True)
class ServerCmd:
    """How to start one server under test as a child process."""

    name: str
    command: str
    args: tuple[str, ...]
    env: dict[str, str]

    def argv(self) -> list[str]:
        return [self.command, *self.args]


def ours(sb: Sandbox, *extra: str, backend: str = "bentley", name: str = "ours", httpx2: bool = False) -> ServerCmd:
    """Our server; `httpx2=True` runs the preview of the proposed fix (peers/ours_httpx2.py)."""
    env = quiet_env(ITWIN_INSIGHTS_BACKEND=backend, ITWIN_API_BASE_URL=sb.url, ITWIN_ACCESS_TOKEN=TOKEN)
    if backend == "sandbox":
        env.pop("ITWIN_ACCESS_TOKEN")
        env["INSIGHTS_SANDBOX_DB"] = ":memory:"
    if httpx2:
        return ServerCmd(name, sys.executable, (str(PEERS / "ours_httpx2.py"), "serve", *extra), env)
    return ServerCmd(name, OUR_CLI, ("serve", *extra), env)


def fastmcp(sb: Sandbox, *extra: str, name: str = "fastmcp") -> ServerCmd:
    python = ensure_fastmcp_venv()
    args = (str(PEERS / "fastmcp_openapi.py"), "--spec", str(sb.spec_path),
            "--base-url", f"{sb.url}/insights/reporting", *extra)
    return ServerCmd(name, str(python), args, quiet_env(BENCH_TOKEN=TOKEN))


def sdk_floor(name: str = "sdk_floor") -> ServerCmd:
    return ServerCmd(name, sys.executable, (str(PEERS / "sdk_floor.py"),), quiet_env())


def which(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found")
    return found
