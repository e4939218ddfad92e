"""A hosted deployment on 127.0.0.1 for end-to-end auth tests: a real OpenID Connect provider standing in for IMS,
the sandbox over HTTP as the Bentley API (recording who called what), two replicas of `serve --transport http
--auth oauth` sharing one state database, and a round-robin load balancer in front of them.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import uvicorn
from cryptography.fernet import Fernet

from .conftest import COMMAND, child_env, free_port, wait_for

IDP_DIR = Path(__file__).parent / "idp"
SERVER_CLIENT_ID = "itwin-insights-mcp-hosted"
SERVER_CLIENT_SECRET = "test-only-server-secret"
CLIENT_REDIRECT = "http://127.0.0.1:7777/callback"
# One TLS context for every test HTTP client: building one per client costs ~18 ms of CPU (the CA bundle is parsed),
# which, for the hundreds of short-lived clients of the concurrency test, was most of its run time.
TLS = ssl.create_default_context()


def ensure_idp_installed() -> None:
    """Install the OpenID Connect provider from npm the first time (pinned in idp/package.json)."""
    if (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the OpenID Connect provider used by the auth tests"
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=IDP_DIR, check=True, timeout=300)


class RoundRobin:
    """An ASGI reverse proxy sending each request to the next replica: any replica must serve any request.

    One HTTP client (opened at start-up, pooled connections) carries every proxied request, as a real balancer
    keeps its upstream connections; a client per request cost more CPU than the replicas spent serving.
    """

    def __init__(self, backends: list[str]) -> None:
        self._backends = backends
        self._next = itertools.count()
        self._http: httpx2.AsyncClient | None = None
        self.hits = [0] * len(backends)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._http = httpx2.AsyncClient(timeout=60, verify=TLS, limits=httpx2.Limits(max_connections=None))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._http is not None:
                        await self._http.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        index = next(self._next) % len(self._backends)
        self.hits[index] += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        url = (
            self._backends[index]
            + scope["path"]
            + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        )
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        hop_by_hop = (b"content-length", b"transfer-encoding", b"connection")
        assert self._http is not None, "the balancer's lifespan has not started"
        async with self._http.stream(scope["method"], url, headers=headers, content=body) as reply:
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status_code,
                    "headers": [(k, v) for k, v in reply.headers.raw if k.lower() not in hop_by_hop],
                }
            )
            async for chunk in reply.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class Deployment:
    """Everything a test needs to reach and inspect the deployment."""

    url: str
    idp: str
    sandbox_db: str
    state_db: str
    state_key: str
    logs: list[Path]
    balancer: RoundRobin
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def sealed_upstream_tokens(self) -> list[dict[str, Any]]:
        """The users' IMS tokens as the shared state holds them (decrypted with the key, for the no-leak check)."""
        from itwin_insights_mcp.hosted.state import SharedState

        state = SharedState(self.state_db, self.state_key)
        sealed: list[str] = []
        with state.transaction() as conn:
            cursor = conn.execute("SELECT sealed FROM upstream_tokens")
            while (row := cursor.fetchone()) is not None:
                sealed.append(str(row[0]))
        fernet = Fernet(self.state_key.encode())
        return [json.loads(fernet.decrypt(s.encode())) for s in sealed]

    def recorded(self) -> list[tuple[str, str, str, str]]:
        import sqlite3

        conn = sqlite3.connect(self.sandbox_db)
        rows = conn.execute("SELECT method, path, user_email, body FROM sandbox_requests ORDER BY seq").fetchall()
        conn.close()
        return [(r[0], r[1], r[2], r[3] or "") for r in rows]


@contextmanager
def _uvicorn(app: Any, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "load balancer did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def deployment(sandbox_db: str, workdir: Path, state_db: str | None = None) -> Iterator[Deployment]:
    """The whole deployment; `state_db` is the replicas' shared store (a SQLite file by default, or a URL)."""
    ensure_idp_installed()
    ports = {name: free_port() for name in ("idp", "sandbox", "a", "b", "lb")}
    public = f"http://127.0.0.1:{ports['lb']}"
    idp = f"http://127.0.0.1:{ports['idp']}"
    logs: list[Path] = []
    processes: list[subprocess.Popen[bytes]] = []

    readiness: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, command: list[str], env: dict[str, str], ready: str) -> None:
        """Launch now, wait later: the four processes start side by side (none needs another to start)."""
        log = workdir / f"{name}.log"
        logs.append(log)
        handle = log.open("wb")
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
        processes.append(process)
        readiness.append((ready, process))

    state_key = Fernet.generate_key().decode()
    try:
        clients = [
            {
                "client_id": SERVER_CLIENT_ID,
                "client_secret": SERVER_CLIENT_SECRET,
                "redirect_uris": [f"{public}/oauth/callback"],
            }
        ]
        node = shutil.which("node") or "node"
        start(
            "idp",
            [node, str(IDP_DIR / "ims.mjs")],
            {**os.environ, "PORT": str(ports["idp"]), "CLIENTS": json.dumps(clients)},
            f"{idp}/.well-known/openid-configuration",
        )
        start(
            "sandbox",
            [COMMAND, "sandbox", "serve", "--port", str(ports["sandbox"]), "--record"],
            child_env(sandbox_db),
            f"http://127.0.0.1:{ports['sandbox']}/itwins/",
        )
        state_db = state_db or str(workdir / "state.db")
        for replica in ("a", "b"):
            env = child_env(
                sandbox_db,
                ITWIN_INSIGHTS_BACKEND="bentley",
                ITWIN_API_BASE_URL=f"http://127.0.0.1:{ports['sandbox']}",
                ITWIN_AUTHORITY=idp,
                ITWIN_CLIENT_ID=SERVER_CLIENT_ID,
                ITWIN_CLIENT_SECRET=SERVER_CLIENT_SECRET,
                ITWIN_INSIGHTS_AUTH="oauth",
                ITWIN_INSIGHTS_PUBLIC_URL=public,
                ITWIN_INSIGHTS_STATE_DB=state_db,
                ITWIN_INSIGHTS_STATE_KEY=state_key,
                ITWIN_INSIGHTS_LOG_LEVEL="DEBUG",
            )
            start(
                f"replica-{replica}",
                [COMMAND, "serve", "--transport", "http", "--port", str(ports[replica])],
                env,
                f"http://127.0.0.1:{ports[replica]}/healthz",
            )
        for ready, process in readiness:
            wait_for(ready, process)
        balancer = RoundRobin([f"http://127.0.0.1:{ports['a']}", f"http://127.0.0.1:{ports['b']}"])
        with _uvicorn(balancer, ports["lb"]):
            yield Deployment(public, idp, sandbox_db, state_db, state_key, logs, balancer, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


async def sign_in(authorization_url: str, user: str) -> tuple[str, str | None]:
    """Play the user's browser: follow redirects through the server and the IdP, sign in, consent, and return
    the authorization code and state delivered to the MCP client's redirect URI."""
    location = authorization_url
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30, verify=TLS) as browser:
        reply = await browser.get(location)
        for _ in range(30):
            if reply.status_code in (301, 302, 303, 307):
                location = urljoin(location, reply.headers["location"])
                if location.startswith(CLIENT_REDIRECT):
                    query = parse_qs(urlsplit(location).query)
                    assert "code" in query, f"sign-in failed: {query}"
                    return query["code"][0], query.get("state", [None])[0]
                reply = await browser.get(location)
                continue
            assert reply.status_code == 200, f"unexpected {reply.status_code} at {location}: {reply.text[:300]}"
            action = re.search(r'<form[^>]*action="([^"]+)"', reply.text)
            assert action, f"no form at {location}"
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', reply.text))
            if 'name="login"' in reply.text:
                fields.update(login=user, password="any")
            reply = await browser.post(urljoin(location, action.group(1)), data=fields)
    raise AssertionError("sign-in did not finish")
