"""The desktop sign-in's redirect receiver (stdlib http.server in a thread) over real loopback sockets: idle
speculative connections do not hold up the redirect, the first request decides, nothing is logged, close() frees
the port and drops idle connections."""

from __future__ import annotations

import asyncio
import socket

import httpx2
import pytest

from itwin_insights_mcp.api.loopback import RedirectReceiver
from itwin_insights_mcp.errors import AuthError

pytestmark = pytest.mark.anyio

STATE = "s" * 43
ISSUER = "https://ims.example.test"


async def get(url: str, method: str = "GET") -> httpx2.Response:
    """A browser request, off the event loop (the receiver answers on its own threads)."""

    def send() -> httpx2.Response:
        with httpx2.Client(trust_env=False, timeout=5) as http:
            return http.request(method, url)

    return await asyncio.to_thread(send)


async def started(**overrides: object) -> RedirectReceiver:
    options: dict[str, object] = {
        "bind_hosts": ("127.0.0.1",),
        "port": 0,
        "path": "/callback",
        "state": STATE,
        "issuer": ISSUER,
    }
    receiver = RedirectReceiver(**{**options, **overrides})  # type: ignore[arg-type]
    await receiver.start()
    return receiver


async def test_an_idle_connection_does_not_hold_up_the_redirect(capfd: pytest.CaptureFixture[str]) -> None:
    receiver = await started()
    idle = socket.create_connection(("127.0.0.1", receiver.port))  # a browser's speculative connection
    try:
        base = f"http://127.0.0.1:{receiver.port}"
        page = await get(f"{base}/callback?code=the-one-time-code&state={STATE}&iss={ISSUER}")
        assert page.status_code == 200 and "close this window" in page.text
        assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
        assert await receiver.wait(5) == "the-one-time-code"
        again = await get(f"{base}/callback?code=another&state={STATE}")
        assert again.status_code == 409
        assert (await get(f"{base}/favicon.ico")).status_code == 404
        assert (await get(f"{base}/callback", "POST")).status_code == 501
    finally:
        await receiver.close()
    idle.settimeout(5)
    assert idle.recv(1) == b""  # dropped at close, not left for its idle timeout
    idle.close()
    out, err = capfd.readouterr()
    assert "the-one-time-code" not in out + err  # http.server logs request lines to stderr by default


async def test_a_wrong_state_or_issuer_is_refused() -> None:
    for query in (f"code=c&state={'x' * 43}", f"code=c&state={STATE}&iss=https://evil.example"):
        receiver = await started()
        try:
            page = await get(f"http://127.0.0.1:{receiver.port}/callback?{query}")
            assert page.status_code == 400
            with pytest.raises(AuthError, match="state mismatch"):
                await receiver.wait(5)
        finally:
            await receiver.close()


async def test_an_idp_error_is_reported_in_safe_characters() -> None:
    receiver = await started()
    try:
        query = f"error=server_error<b>&error_description=Try+later<script>&state={STATE}"
        page = await get(f"http://127.0.0.1:{receiver.port}/callback?{query}")
        assert page.status_code == 400 and "<script>" not in page.text
        with pytest.raises(AuthError, match=r"error server_errorb \(Try laterscript\)"):
            await receiver.wait(5)
    finally:
        await receiver.close()


async def test_a_busy_port_is_a_clear_error_and_close_frees_the_port() -> None:
    first = await started()
    port = first.port
    with pytest.raises(AuthError, match=f"Could not listen .* on 127.0.0.1:{port}.*--port"):
        await started(port=port)
    await first.close()
    second = await started(port=port)  # free again once closed
    assert second.port == port
    await second.close()


async def test_nothing_arriving_is_a_timeout() -> None:
    receiver = await started()
    try:
        with pytest.raises(TimeoutError):
            await receiver.wait(0.1)
    finally:
        await receiver.close()
