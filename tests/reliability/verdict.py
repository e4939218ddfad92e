"""What every tool reply must look like, whatever the arguments: a success that matches the tool's output schema,
or an `isError` result with readable text; never a 5xx, an internal error, a traceback or an unbounded reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from mcp.types import CallToolResult, TextContent

__all__ = ["RESULT_BYTES_LIMIT", "reply_problems"]

# A generous ceiling on one tool result; the branch adding result byte budgets (issue 13, item 5) sets the real,
# smaller budget. Anything above this floods an agent's context whatever the budget is.
RESULT_BYTES_LIMIT = 2_000_000
# Text that only a bug puts in front of the agent.
_LEAKS = ("Traceback (most recent call last)", "Internal error", "InternalServerError", 'File "/', "RecursionError")
_ECHO_LIMIT = 1_000  # an injected value this long must not come back whole (issue 13, item 5)


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def reply_problems(
    result: CallToolResult,
    output_schema: dict[str, Any] | None,
    injected: Iterable[str] = (),
    dotted: dict[str, str] | None = None,
) -> list[str]:
    """Everything wrong with one reply (empty when it is acceptable).

    `dotted` names the path-id arguments that held a dot segment or nothing: such a call must be refused, since
    the URL it builds names another resource (issue 13, item 2).
    """
    found: list[str] = []
    if dotted and not result.is_error:
        found.extend(f"accepted {name}={value!r} (a dot segment or empty path id)" for name, value in dotted.items())
    text = _text(result)
    if not text.strip():
        found.append("no readable text in the reply")
    for leak in _LEAKS:
        if leak in text:
            found.append(f"reply contains {leak!r}")
    size = len(text.encode("utf-8", "surrogatepass")) + len(
        json.dumps(result.structured_content, default=str) if result.structured_content else ""
    )
    if size > RESULT_BYTES_LIMIT:
        found.append(f"reply of {size:,} bytes (limit {RESULT_BYTES_LIMIT:,})")
    for value in injected if result.is_error else ():  # a created record may hold its long value; errors must not
        if len(value) >= _ECHO_LIMIT and value in text:
            found.append(f"reply echoes a {len(value):,}-character input whole")
    if result.is_error:
        error = (result.structured_content or {}).get("error")
        status = error.get("status") if isinstance(error, dict) else None
        if isinstance(status, int) and status >= 500:
            found.append(f"API status {status} ({error.get('code') if isinstance(error, dict) else ''})")
        return found
    if output_schema is not None:
        if result.structured_content is None:
            found.append("success without structuredContent although the tool declares an outputSchema")
        else:
            errors = sorted(Draft202012Validator(output_schema).iter_errors(result.structured_content), key=str)
            found.extend(f"structuredContent breaks outputSchema: {e.message[:200]}" for e in errors[:3])
    return found
