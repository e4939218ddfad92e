"""Redirect URIs and metadata-document URLs are judged by their parsed parts (issue 13 item 1).

Each row is a URI and the verdict it must get from the default allowlist; every accepted one is also read by the
standard library, httpx and pydantic, which must all find the same allowed host in it.
"""

from __future__ import annotations

import urllib.parse

import httpx2
import pytest
from pydantic import AnyUrl, TypeAdapter

from itwin_insights_mcp.api.urls import (
    MAX_URL_LENGTH,
    RedirectAllowlist,
    Url,
    UrlError,
    is_loopback_host,
    metadata_document_url,
)
from itwin_insights_mcp.errors import ConfigError
from itwin_insights_mcp.settings import DEFAULT_REDIRECTS

DEFAULTS = RedirectAllowlist(DEFAULT_REDIRECTS)
ALLOWED_HOSTS = {"127.0.0.1", "localhost", "claude.ai", "claude.com", "vscode.dev"}

ACCEPTED = [
    "http://127.0.0.1:53682/callback",
    "http://localhost:7777/callback",
    "http://127.0.0.1/callback",  # `:*` is any port, the default one too
    "http://127.0.0.1:5",
    "http://127.0.0.1:5/cb?x=1",
    "http://127.0.0.1:5?@evil.example",  # an `@` in the query is not userinfo: the host is 127.0.0.1
    "HTTP://LOCALHOST:5/cb",  # scheme and host are case-insensitive
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
    "https://CLAUDE.AI/api/mcp/auth_callback",
    "https://vscode.dev/redirect",
    "https://vscode.dev:443/redirect",
]

REFUSED = {
    # userinfo: the attack from the issue and its relatives
    "http://127.0.0.1:80@evil.example/cb": "userinfo",
    "http://localhost@evil.example:5/cb": "userinfo",
    "http://localhost:5@evil.example/cb": "userinfo",
    "http://user:pass@127.0.0.1:5/cb": "userinfo",
    "http://@127.0.0.1:5/cb": "userinfo",
    # look-alike hosts
    "http://127.0.0.1.evil.example:5/cb": "not listed",
    "http://localhost.evil:5/cb": "not listed",
    "http://localhost.:5/cb": "trailing dot",
    "http://127.0.0.1.:5/cb": "trailing dot",
    "http://evil.example/cb?http://127.0.0.1:5": "not listed",
    "http://[::1]:5/cb": "not listed (loopback, but the default list names 127.0.0.1 and localhost)",
    # IPv4 spellings only some parsers understand
    "http://0x7f.1:5/cb": "numeric",
    "http://0x7f000001:5/cb": "numeric",
    "http://2130706433:5/cb": "numeric",
    "http://127.1:5/cb": "numeric",
    "http://0177.0.0.1:5/cb": "numeric",
    "http://127.000.000.001:5/cb": "numeric",
    "http://[::ffff:127.0.0.1]:5/cb": "not listed",
    # IPv6 zone ids, percent-encoded and non-ASCII hosts
    "http://[fe80::1%25lo]:5/cb": "percent",
    "http://[::1%lo]:5/cb": "percent",
    "http://loc%61lhost:5/cb": "percent",
    "http://127.0.0.1%2f@evil.example/cb": "percent",
    "http://\u24dbocalhost:5/cb": "non-ASCII",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:5/cb": "non-ASCII",
    "http://xn--localhost-.evil:5/cb": "invalid host",
    # fragments, backslashes, whitespace and control characters
    "http://127.0.0.1:5/cb#frag": "fragment",
    "http://127.0.0.1:5\\@evil.example/cb": "backslash",
    "http://127.0.0.1:5/cb\\": "backslash",
    " http://127.0.0.1:5/cb": "whitespace",
    "http://127.0.0.1:5/c b": "whitespace",
    "http://127.0.0.1:5/cb\n": "control",
    "http://127.0.0.1:5/cb\t": "control",
    "http://127.0.0.1:5/c\x00b": "control",
    "http://127.0.0.1:5/cb\u200b": "non-ASCII",
    # malformed shapes
    "http:/127.0.0.1:5/cb": "no //",
    "http:127.0.0.1:5/cb": "no //",
    "//127.0.0.1:5/cb": "no scheme",
    "http://:5/cb": "no host",
    "http:///cb": "no host",
    "http://127.0.0.1:0/cb": "port",
    "http://127.0.0.1:65536/cb": "port",
    "http://127.0.0.1:/cb": "port",
    "http://127.0.0.1:5x/cb": "port",
    "http://127.0.0.1:+5/cb": "port",
    "http://127.0.0.1:5/%2e%2e/cb": "dot segment",
    "http://" + "a" * MAX_URL_LENGTH + ".example/": "length",
    "": "empty",
    # the right host, the wrong scheme, port or path
    "https://127.0.0.1:5/cb": "scheme not listed",
    "ws://127.0.0.1:5/cb": "scheme not listed",
    "javascript://127.0.0.1:5/%0aalert(1)": "scheme not listed",
    "http://claude.ai/api/mcp/auth_callback": "http off loopback",
    "https://claude.ai:8443/api/mcp/auth_callback": "port",
    "https://claude.ai/api/mcp/auth_callback/x": "path",
    "https://claude.ai/api/mcp/auth_callback?next=https://evil.example": "query",
    "https://claude.ai/api/mcp/auth_callback/../../evil": "dot segment",
    "https://claude.ai.evil.example/api/mcp/auth_callback": "host",
    "https://evil.example/api/mcp/auth_callback?https://claude.ai/api/mcp/auth_callback": "host",
    "https://vscode.dev/Redirect": "path is case-sensitive",
}


@pytest.mark.parametrize("uri", ACCEPTED)
def test_legitimate_redirects_are_accepted_and_every_parser_agrees_on_the_host(uri: str) -> None:
    assert DEFAULTS.allows(uri)
    hosts = {
        (urllib.parse.urlsplit(uri).hostname or "").lower(),
        httpx2.URL(uri).host,
        (TypeAdapter(AnyUrl).validate_python(uri).host or "").lower(),
    }
    assert len(hosts) == 1 and hosts <= ALLOWED_HOSTS


@pytest.mark.parametrize(("uri", "why"), REFUSED.items(), ids=[repr(u)[:60] for u in REFUSED])
def test_tricky_redirects_are_refused(uri: str, why: str) -> None:
    assert not DEFAULTS.allows(uri), why


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:80@evil.example/cb",
        "http://0x7f.1:5/cb",
        "http://127.0.0.1:5\\@evil.example/cb",
        "http://loc%61lhost:5/cb",
        "http://user@localhost:5/cb",
    ],
)
def test_what_pydantic_normalises_is_judged_on_the_host_a_browser_visits(uri: str) -> None:
    """The SDK hands the provider pydantic's normal form; if that passes, its host must be an allowed one."""
    normal = TypeAdapter(AnyUrl).validate_python(uri)
    verdict = DEFAULTS.allows(str(normal))
    assert verdict == (normal.host in ALLOWED_HOSTS and normal.username is None)


def test_the_parser_names_the_reason_and_keeps_the_parts() -> None:
    url = Url.parse("HTTP://LocalHost:8080/Call/Back?a=B")
    assert (url.scheme, url.host, url.port, url.path, url.query) == ("http", "localhost", 8080, "/Call/Back", "a=B")
    assert Url.parse("https://vscode.dev/redirect").effective_port == 443
    assert Url.parse("http://[0:0:0:0:0:0:0:1]:5/").host == "[::1]"  # one spelling per IPv6 address
    with pytest.raises(UrlError, match="userinfo"):
        Url.parse("http://127.0.0.1:80@evil.example/cb")
    with pytest.raises(UrlError, match="numeric"):
        Url.parse("http://0x7f.1/")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("[::ffff:7f00:1]", False),  # IPv4-mapped: not accepted as a second spelling of loopback
        ("localhost.evil", False),
        ("127.0.0.1.evil.example", False),
        ("evil.localhost", False),
        ("192.0.2.2", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_means_the_host_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_allowlist_entries_with_paths_ports_prefixes_and_private_schemes() -> None:
    allow = RedirectAllowlist(
        (
            "https://app.example/oauth/*",
            "http://[::1]:*",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "https://fixed.example:8443/cb",
        )
    )
    assert allow.allows("https://app.example/oauth/cb")
    assert allow.allows("https://app.example/oauth/a/b?x=1")
    assert not allow.allows("https://app.example/oauthx")
    assert not allow.allows("https://app.example/other")
    assert allow.allows("http://[::1]:5/x") and allow.allows("http://[0:0::1]:5/x")
    assert not allow.allows("http://127.0.0.1:5/x")
    assert allow.allows("cursor://anysphere.cursor-retrieval/oauth/callback")
    assert not allow.allows("cursor://anysphere.cursor-retrieval/oauth/callback2")
    assert not allow.allows("cursor://evil.example/oauth/callback")
    assert allow.allows("https://fixed.example:8443/cb")
    assert not allow.allows("https://fixed.example/cb")


@pytest.mark.parametrize(
    "entry",
    [
        "http://intranet.example/cb",  # http only for loopback
        "https://app.example:*/cb",  # a port wildcard only for loopback
        "https://*.example.com/cb",
        "https://app.example/a*b",
        "http://user@127.0.0.1:*",
        "javascript://x/alert",
        "data://text/html",
        "http://127.0.0.1:*/cb#x",
        "https://app.example?x=1",
        "http://0x7f.1:*",
    ],
)
def test_unusable_allowlist_entries_stop_start_up(entry: str) -> None:
    with pytest.raises(ConfigError, match="allowlist entry"):
        RedirectAllowlist((entry,))


METADATA_REFUSED = [
    "http://localhost@192.0.2.2:8000/x",  # the attack from the issue
    "http://localhost:80@192.0.2.2/x",
    "http://127.0.0.1@192.0.2.2/x",
    "https://user@client.example/meta.json",
    "http://192.0.2.2/x",
    "http://client.example/meta.json",  # plain http off loopback
    "http://127.0.0.1.evil.example/x",
    "http://localhost.evil/x",
    "http://2130706433:5/x",
    "http://0x7f.1:5/x",
    "https://10.0.0.1/x",  # private, link-local and mapped addresses by literal
    "https://192.168.1.1/x",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://client.example",  # a path is required
    "https://client.example/",
    "https://client.example/a/../meta.json",
    "https://client.example/meta.json#f",
    "ftp://client.example/meta.json",
    "client-uuid-1234",
    "https://client.example\\@evil.example/x",
]


@pytest.mark.parametrize("client_id", METADATA_REFUSED)
def test_metadata_document_urls_refused(client_id: str) -> None:
    assert metadata_document_url(client_id) is None


@pytest.mark.parametrize(
    "client_id",
    [
        "https://client.example/meta.json",
        "https://client.example:8443/oauth/client?v=1",
        "http://127.0.0.1:5/client.json",
        "http://localhost:5/client",
        "http://[::1]:5/client",
        "https://8.8.8.8/client",
    ],
)
def test_metadata_document_urls_accepted(client_id: str) -> None:
    url = metadata_document_url(client_id)
    assert url is not None and url.host.strip("[]") == httpx2.URL(client_id).host
