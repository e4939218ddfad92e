"""URLs parsed strictly into parts and judged by their parts: OAuth redirect URIs, Client ID Metadata Document
URLs (hosted mode) and the identity provider's endpoints (`signin.py`: https, or http on loopback only).

Why: a glob over the raw string let `http://127.0.0.1:80@evil.example/cb` pass for `http://127.0.0.1:*` (its host is
`evil.example`), and a `startswith("http://localhost")` test let `http://localhost@192.0.2.2/x` pass for loopback.
Here a URL is accepted only in one plain spelling that every parser reads the same way (this one, browsers, httpx),
and then compared by scheme, host, port and path.

Refused outright (`UrlError`): anything but printable ASCII (whitespace, control characters, non-ASCII/IDN
spellings; punycode `xn--` labels are plain ASCII and allowed), backslashes, fragments, userinfo (`user@`), `%`
anywhere in the authority (encoded hosts, IPv6 zone ids), a missing or empty host, a trailing dot, hosts that only
some parsers read as IPv4 (`0x7f.1`, `127.1`, `2130706433`, `0177.0.0.1`), ports outside 1-65535, dot segments
(`.`, `..`, also `%2e`) in the path, a scheme not followed by `//`, and more than `MAX_URL_LENGTH` characters.
Scheme and host are case-insensitive (compared lower-cased); path and query are compared as written.

Allowlist entries (`ITWIN_INSIGHTS_REDIRECT_ALLOWLIST`, checked when the server starts) are URLs of the same form:
- `scheme://host` or `scheme://host:port`: that origin, any path and query (no port: the scheme's default port);
- `scheme://host:*` (loopback hosts only): any port, as RFC 8252 §7.3 asks for native apps' ephemeral ports;
- with a path, `https://claude.ai/api/mcp/auth_callback`: exactly that path (and query, if the entry gives one);
- a path ending in `/*`, `https://app.example/oauth/*`: any path below that prefix.
`http` is allowed only for loopback hosts (`localhost`, 127.0.0.0/8, `[::1]`), as OAuth 2.1 requires; other schemes
than http and https (a native app's private-use scheme) may be listed, except ones that run or embed content
(`javascript`, `data`, `file`, ...). The default list means what it always meant: loopback on any port and path,
and the exact Claude and VS Code callbacks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError

__all__ = ["MAX_URL_LENGTH", "RedirectAllowlist", "Url", "UrlError", "is_loopback_host", "metadata_document_url"]

MAX_URL_LENGTH = 2048
ANY_PORT = -1  # the `:*` of an allowlist entry

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")  # a label some parsers read as (part of) an IPv4 address
_PORT = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp"})


class UrlError(ValueError):
    """A URL refused before any comparison; the message names the reason, never the whole URL."""


@dataclass(frozen=True)
class Url:
    """The parts of a strictly parsed URL (scheme and host lower-cased; `port` is None when not written)."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str

    @property
    def effective_port(self) -> int | None:
        """The written port, else the scheme's default (None for schemes without one)."""
        return self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    @classmethod
    def parse(cls, url: str, *, allow_any_port: bool = False) -> Url:
        """Parse `url` or raise UrlError; `allow_any_port` admits the `:*` of allowlist entries."""
        if not isinstance(url, str) or not url:
            raise UrlError("not a URL")
        if len(url) > MAX_URL_LENGTH:
            raise UrlError(f"longer than {MAX_URL_LENGTH} characters")
        if any(not 0x21 <= ord(ch) <= 0x7E for ch in url):
            raise UrlError("whitespace, control or non-ASCII characters")
        if "\\" in url:
            raise UrlError("a backslash")
        if "#" in url:
            raise UrlError("a fragment")
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or not _SCHEME.fullmatch(scheme):
            raise UrlError("no scheme://")
        authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        authority = rest[:authority_end]
        if "@" in authority:
            raise UrlError("userinfo (user@) in the authority")
        if "%" in authority:
            raise UrlError("percent-encoding in the host")
        host, port = _split_authority(authority.lower(), allow_any_port)
        try:
            split = urlsplit(url)
        except ValueError:
            raise UrlError("an unparsable URL") from None
        if split.netloc.lower() != authority.lower():  # the standard library must see the same authority
            raise UrlError("an ambiguous authority")
        path, query = split.path, split.query
        if any(unquote(segment) in (".", "..") for segment in path.split("/")):
            raise UrlError("dot segments in the path")
        return cls(scheme=scheme, host=host, port=port, path=path, query=query)


def _split_authority(authority: str, allow_any_port: bool) -> tuple[str, int | None]:
    """Host and port of a lower-cased authority, each checked."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise UrlError("an unclosed IPv6 literal")
        literal, after = authority[1:end], authority[end + 1 :]
        try:
            host = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise UrlError("an invalid IPv6 literal") from None
    else:
        host, colon, port_text = authority.partition(":")
        after = colon + port_text
        _check_host(host)
    if not after:
        return host, None
    if not after.startswith(":"):
        raise UrlError("text after the host")
    port_text = after[1:]
    if port_text == "*" and allow_any_port:
        return host, ANY_PORT
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise UrlError("an invalid port")
    return host, int(port_text)


def _check_host(host: str) -> None:
    """A canonical dotted-quad IPv4 address or a DNS name of letter-digit-hyphen labels."""
    if not host:
        raise UrlError("no host")
    if host.endswith("."):
        raise UrlError("a trailing dot in the host")
    if len(host) > 253:
        raise UrlError("a host name over 253 characters")
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # WHATWG parsers read this host as IPv4: only the plain form passes
        try:
            canonical = str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            canonical = False
        if not canonical:
            raise UrlError("a numeric host that is not a plain dotted-quad IPv4 address")
        return
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlError("a host name with invalid characters")


def is_loopback_host(host: str) -> bool:
    """True when the (already checked) host IS loopback: `localhost`, 127.0.0.0/8 or `[::1]`; never a prefix test."""
    if host == "localhost":
        return True
    address = _ip_literal(host)
    if isinstance(address, ipaddress.IPv6Address):
        return address == ipaddress.IPv6Address("::1")  # not IPv4-mapped forms: one spelling per address
    return address is not None and address.is_loopback


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when the host is an IP literal (IPv6 in brackets), else None."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Entry:
    """One allowlist entry; see the module docstring for how it is written."""

    scheme: str
    host: str
    port: int | None  # None: the default port; ANY_PORT: any
    path: str | None  # None: any path and query
    prefix: bool
    query: str

    @classmethod
    def parse(cls, text: str) -> _Entry:
        try:
            url = Url.parse(text.strip(), allow_any_port=True)
        except UrlError as exc:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r} is not usable: {exc}.") from None
        if url.scheme in _FORBIDDEN_SCHEMES:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r}: the {url.scheme} scheme is never allowed.")
        if url.scheme == "http" and not url.loopback:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r}: http is allowed only for loopback hosts.")
        if url.port == ANY_PORT and not url.loopback:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r}: a port wildcard is for loopback hosts only.")
        if not url.path and url.query:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r}: a query needs a path.")
        prefix = url.path.endswith("/*")
        path = url.path[:-1] if prefix else url.path
        if "*" in path or "*" in url.host:
            raise ConfigError(f"Redirect allowlist entry {text[:100]!r}: '*' may only be the port or a final '/*'.")
        return cls(url.scheme, url.host, url.port, path or None, prefix, url.query)

    def matches(self, url: Url) -> bool:
        if (url.scheme, url.host) != (self.scheme, self.host):
            return False
        if self.port != ANY_PORT and url.effective_port != (
            self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)
        ):
            return False
        if self.path is None:
            return True
        if self.prefix:
            return url.path.startswith(self.path)
        return url.path == self.path and url.query == self.query


class RedirectAllowlist:
    """The redirect URIs this server will send users (and authorization codes) back to."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        """Parse every entry now, so a bad one stops the server at start-up with its reason."""
        self._entries = tuple(_Entry.parse(entry) for entry in entries)

    def allows(self, uri: str) -> bool:
        """True when `uri` parses strictly and one entry matches its scheme, host, port and path."""
        try:
            url = Url.parse(uri)
        except UrlError:
            return False
        if url.scheme == "http" and not url.loopback:
            return False
        return any(entry.matches(url) for entry in self._entries)


def metadata_document_url(client_id: str) -> Url | None:
    """The parsed URL when `client_id` may be fetched as a Client ID Metadata Document, else None.

    Only https, or http to a loopback host; a path is required (the CIMD rules). An IP-literal host must be loopback
    or a global address, so a document URL cannot point the server at a private network by address.
    """
    try:
        url = Url.parse(client_id)
    except UrlError:
        return None
    if url.scheme not in ("https", "http") or (url.scheme == "http" and not url.loopback):
        return None
    if url.path in ("", "/"):
        return None
    address = _ip_literal(url.host)
    if address is not None and not url.loopback and not address.is_global:
        return None
    return url
