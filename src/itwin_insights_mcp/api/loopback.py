"""The desktop sign-in's redirect receiver: a one-shot HTTP server on the loopback interface that waits for the
authorization response (RFC 8252 §7.3).

It is the standard library's `ThreadingHTTPServer` in a background thread, one thread per connection (browsers
open speculative connections that never send a request, and one must not hold up the real one). The first request
to the redirect path decides the outcome; later ones get 409, other paths 404. The answer page is written before
the outcome is handed to the event loop, so closing the receiver never cuts it off. Request lines carry the
one-time code, so nothing is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import secrets
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import AuthError

__all__ = ["RedirectReceiver"]

IDLE_CONNECTION_SECONDS = 30.0
_POLL_SECONDS = 0.05  # how quickly the serving thread notices close()
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>iTwin Insights MCP</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3em;"><h1>{title}</h1><p>{text}</p></body></html>"""
_RETRY = "Run `itwin-insights-mcp login` again"


class _Handler(BaseHTTPRequestHandler):
    """One connection: GET is answered by the receiver; other methods get the standard 501."""

    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection, then close
    timeout = IDLE_CONNECTION_SECONDS  # an idle speculative connection is dropped after this

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.server.receiver.answer(self)

    def log_message(self, format: str, *args: Any) -> None:  # the base class signature
        """Silent: the request line holds the authorization code."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server bound to one loopback address, IPv4 or IPv6."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, receiver: RedirectReceiver) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (it can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class RedirectReceiver:
    """Listens on `bind_hosts` (the first on `port`, 0 for any; the others best effort on the same port) for a GET
    to `path` carrying this attempt's `state`; `wait` returns the authorization code or raises AuthError."""

    def __init__(self, *, bind_hosts: tuple[str, ...], port: int, path: str, state: str, issuer: str) -> None:
        self._bind_hosts = bind_hosts
        self._requested_port = port
        self._path = path
        self._state = state
        self._issuer = issuer.rstrip("/")
        self._servers: list[_Server] = []
        self._decided = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outcome: asyncio.Future[str] | None = None
        self.port = port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._outcome = self._loop.create_future()
        first, *others = self._bind_hosts
        try:
            self._servers.append(_Server(first, self._requested_port, self))
        except OSError as exc:
            raise AuthError(
                f"Could not listen for the sign-in redirect on {first}:{self._requested_port} ({exc.strerror}). "
                "Close whatever uses that port, or pass --port with another port registered for the app."
            ) from None
        self.port = self._servers[0].server_port
        for host in others:  # best effort ("localhost" may resolve to ::1 in the browser)
            with contextlib.suppress(OSError):
                self._servers.append(_Server(host, self.port, self))
        for server in self._servers:
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name="itwin-insights-login-redirect",
                daemon=True,
            ).start()

    async def wait(self, seconds: float) -> str:
        """The authorization code; AuthError when the response refused the sign-in; TimeoutError after `seconds`."""
        assert self._outcome is not None, "start() first"
        return await asyncio.wait_for(asyncio.shield(self._outcome), seconds)

    async def close(self) -> None:
        """Stop listening and drop idle connections (answers already given were written in full)."""
        for server in self._servers:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
            for connection in list(server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._outcome is not None and not self._outcome.done():
            self._outcome.cancel()

    # -- called on the connection's thread ----------------------------------------------------------------------

    def answer(self, handler: _Handler) -> None:
        """Answer one GET: decide (once) on the redirect path, write the page, then hand the outcome over."""
        parts = urlsplit(handler.path)
        outcome: str | AuthError | None = None
        if parts.path == self._path:
            status, title, text, outcome = self._decide(parts.query)
        else:
            status, title, text = 404, "Not found", "Nothing here."
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("Cache-Control", "no-store")
            handler.send_header("Referrer-Policy", "no-referrer")
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            pass  # the browser went away; the outcome stands
        if outcome is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: login already gave up
                self._loop.call_soon_threadsafe(self._settle, outcome)

    def _settle(self, outcome: str | AuthError) -> None:
        if self._outcome is None or self._outcome.done():
            return
        if isinstance(outcome, AuthError):
            self._outcome.set_exception(outcome)
        else:
            self._outcome.set_result(outcome)

    def _decide(self, query: str) -> tuple[int, str, str, str | AuthError | None]:
        """(status, title, text, outcome) for a request to the redirect path; the first one decides."""
        with self._lock:
            if self._decided:
                return (
                    409,
                    "Already handled",
                    "This sign-in attempt has already finished. Return to the terminal.",
                    None,
                )
            self._decided = True
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        state, code, error = params.get("state", ""), params.get("code"), params.get("error")
        issuer = params.get("iss")  # RFC 9207: when the IdP names itself, it must be the one we asked
        if not secrets.compare_digest(state.encode(), self._state.encode()) or (
            issuer is not None and issuer.rstrip("/") != self._issuer
        ):
            refused = AuthError(
                "The sign-in response did not belong to this login attempt (state mismatch) and was rejected. "
                f"{_RETRY} and finish sign-in in the browser tab it opens."
            )
            return (
                400,
                "Sign-in rejected",
                "The response did not match this login attempt. Return to the terminal.",
                refused,
            )
        if error:
            return self._error(error, params.get("error_description", ""))
        if not code:
            missing = AuthError(f"The sign-in response had no authorization code. {_RETRY}.")
            return 400, "Sign-in failed", "No authorization code was received. Return to the terminal.", missing
        return 200, "Signed in", "You are signed in to iTwin Insights MCP. You can close this window.", code

    @staticmethod
    def _error(error: str, description: str) -> tuple[int, str, str, AuthError]:
        """The IdP's error, in safe characters only, with what to do next."""
        code_text = re.sub(r"[^A-Za-z0-9_.-]", "", error)[:64]
        described = re.sub(r"[^\w .,:;'()/-]", "", description)[:200]
        detail = f" ({described})" if described else ""
        if code_text == "access_denied":
            message = (
                f"Sign-in was cancelled or consent was denied (access_denied){detail}. {_RETRY} and accept the "
                "requested permissions."
            )
        else:
            message = (
                f"The sign-in page returned the error {code_text}{detail}. Check that the client id is a "
                "Desktop/Mobile (native) app whose redirect URI and scopes match, then run `itwin-insights-mcp "
                "login` again."
            )
        return (
            400,
            "Sign-in failed",
            f"{code_text}{detail}. Return to the terminal for what to do next.",
            AuthError(message),
        )
