"""Scrubbing of anything that looks like a credential from text that came from elsewhere (upstream error bodies,
proxy pages), before it can reach a log line or a tool result.

Upstream services and proxies sometimes echo request headers back in error pages; an agent must never see the bearer
token that way. Known secrets are replaced exactly; unknown ones are caught by shape (bearer/basic credentials, JWTs,
`token=`-style parameters, long opaque strings after a credential-ish key).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = ["REDACTED", "redact"]

REDACTED = "[REDACTED]"

_SOURCES = (
    r"(?i)\b(bearer|basic|negotiate|digest)\s+[A-Za-z0-9\-._~+/=]{8,}",
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",  # JWT / JWS
    r"(?i)\b(access_token|refresh_token|id_token|client_secret|password|passwd|api[_-]?key|secret|token|code"
    r"|authorization|cookie|set-cookie|x-api-key)(\"?\s*[:=]\s*\"?)([^\s\"'&,;<>]{4,})",
)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """Compiled on first use: only failures need them, and start-up should not pay for them."""
    return tuple(re.compile(source) for source in _SOURCES)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and every credential-shaped substring replaced by [REDACTED]."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    credential, jwt, pair = _patterns()
    text = credential.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = jwt.sub(REDACTED, text)
    return pair.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
