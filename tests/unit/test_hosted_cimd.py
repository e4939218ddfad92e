"""Fetching a Client ID Metadata Document from a real socket: size cap, one total deadline, no redirects.

A small HTTP server on 127.0.0.1 misbehaves in the ways an attacker's document host could: an endless body, a huge
declared length, bytes trickled slower than any per-read timeout would notice, headers that never come, a redirect
to a valid document, a compressed body. Each fetch must give up (None) quickly and without reading everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from itwin_insights_mcp.hosted.cimd import CIMD_MAX_BYTES, CIMD_TIMEOUT_SECONDS, fetch_metadata_document

pytestmark = pytest.mark.anyio

DOCUMENT = {"client_name": "Doc client", "redirect_uris": ["http://127.0.0.1:7777/callback"]}
CHUNK = 16_384


class Misbehaving:
    """The server: one behaviour per path, every path requested and every body byte sent recorded."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.sent = 0
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.paths.append(path)
            await self.behaviours()[path](writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def behaviours(self) -> dict[str, Callable[[asyncio.StreamWriter], Awaitable[None]]]:
        return {
            "/ok": lambda w: self._reply(w, 200, json.dumps({"client_id": self.url("/ok"), **DOCUMENT}).encode()),
            "/list": lambda w: self._reply(w, 200, b"[1, 2]"),
            "/not-json": lambda w: self._reply(w, 200, b"hello"),
            "/missing": lambda w: self._reply(w, 404, b"{}"),
            "/redirect": lambda w: self._reply(w, 302, b"", f"Location: {self.url('/ok')}\r\n"),
            "/gzip": lambda w: self._reply(
                w, 200, gzip.compress(json.dumps(DOCUMENT).encode()), "Content-Encoding: gzip\r\n"
            ),
            "/declared-huge": self._declared_huge,
            "/endless": self._endless,
            "/trickle": self._trickle,
            "/silent": self._silent,
        }

    async def _reply(self, writer: asyncio.StreamWriter, status: int, body: bytes, extra: str = "") -> None:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async def _declared_huge(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(30)

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        while self.sent < 200_000_000:
            writer.write(f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n")
            await writer.drain()
            self.sent += CHUNK

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        body = json.dumps({"client_id": self.url("/trickle"), **DOCUMENT}).encode()
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for byte in body:  # one byte every 50 ms: no single read ever waits long
            writer.write(bytes([byte]))
            await writer.drain()
            self.sent += 1
            await asyncio.sleep(0.05)

    async def _silent(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@pytest.fixture
async def server() -> AsyncIterator[Misbehaving]:
    misbehaving = Misbehaving()
    listener = await asyncio.start_server(misbehaving.handle, "127.0.0.1", 0)
    misbehaving.port = listener.sockets[0].getsockname()[1]
    try:
        yield misbehaving
    finally:
        listener.close()
        await misbehaving.close()


async def test_the_limits_are_the_documented_defaults() -> None:
    assert (CIMD_MAX_BYTES, CIMD_TIMEOUT_SECONDS) == (65_536, 5.0)


async def test_a_document_on_loopback_is_read(server: Misbehaving) -> None:
    assert await fetch_metadata_document(server.url("/ok")) == {"client_id": server.url("/ok"), **DOCUMENT}


@pytest.mark.parametrize("path", ["/list", "/not-json", "/missing", "/gzip"])
async def test_unusable_answers_give_nothing(server: Misbehaving, path: str) -> None:
    assert await fetch_metadata_document(server.url(path)) is None
    assert server.paths == [path]


async def test_a_redirect_is_not_followed(server: Misbehaving) -> None:
    assert await fetch_metadata_document(server.url("/redirect")) is None
    assert server.paths == ["/redirect"]  # the valid document it points to was never requested


async def test_an_endless_body_is_dropped_past_the_size_limit(server: Misbehaving) -> None:
    started = time.monotonic()
    assert await fetch_metadata_document(server.url("/endless")) is None
    assert time.monotonic() - started < 3
    await asyncio.sleep(0.2)  # let the server notice the closed connection
    assert server.sent < 16_000_000  # stopped early: socket buffers hold a few MB at most, never the 200 MB


async def test_a_huge_declared_length_is_refused_before_reading(server: Misbehaving) -> None:
    started = time.monotonic()
    assert await fetch_metadata_document(server.url("/declared-huge")) is None
    assert time.monotonic() - started < 1


async def test_a_trickled_body_hits_the_total_deadline(server: Misbehaving) -> None:
    started = time.monotonic()
    assert await fetch_metadata_document(server.url("/trickle"), time_limit=1.0) is None
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0  # each read waits only 50 ms: only a total deadline stops this
    assert 0 < server.sent < 40


async def test_headers_that_never_come_hit_the_deadline(server: Misbehaving) -> None:
    started = time.monotonic()
    assert await fetch_metadata_document(server.url("/silent"), time_limit=0.5) is None
    assert time.monotonic() - started < 1.5


async def test_a_smaller_size_limit_is_honoured(server: Misbehaving) -> None:
    assert await fetch_metadata_document(server.url("/ok"), max_bytes=10) is None
    assert await fetch_metadata_document(server.url("/ok"), max_bytes=10_000) is not None


@pytest.mark.parametrize("client_id", ["http://localhost@127.0.0.1:{port}/ok", "http://127.0.0.1:{port}/ok#x"])
async def test_a_refused_url_is_never_requested(server: Misbehaving, client_id: str) -> None:
    assert await fetch_metadata_document(client_id.format(port=server.port)) is None
    assert server.paths == []
