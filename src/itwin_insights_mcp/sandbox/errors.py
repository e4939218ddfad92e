"""The sandbox's one error type, shared by the domain rules and the HTTP plumbing (no HTTP types here).

A rule that fails raises `SandboxError` with the API's status, code, message and target; `wire.error_response`
writes it as the API's error body. A 422 raised by the domain may leave `code` unset: each API family answers
a bad request with its own code (`InvalidInsightsRequest`, `InvalidiModelsRequest`, ...), filled in on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SandboxError", "conflict", "invalid", "not_found"]


@dataclass
class SandboxError(Exception):
    """An API error reply: status, code (None: the family's invalid-request code), message, and optionally the bad
    field and per-field details."""

    status: int
    code: str | None
    message: str
    target: str | None = None
    details: Sequence[Mapping[str, Any]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


def not_found(code: str, label: str, target: str | None = "id") -> SandboxError:
    """404 in the API's wording: "Requested <Entity> is not available."."""
    return SandboxError(404, code, f"Requested {label} is not available.", target)


def conflict(code: str, message: str, target: str | None) -> SandboxError:
    """409: a name or link that already exists."""
    return SandboxError(409, code, message, target)


def invalid(message: str, target: str | None = None) -> SandboxError:
    """422 with the calling family's invalid-request code."""
    return SandboxError(422, None, message, target)
