"""The project's exceptions, one tree so callers catch exactly what they mean.

    InsightsError                 root of everything this package raises on purpose
    ├── ConfigError               settings that cannot work (bad flag, missing credential pair)
    ├── AuthError                 no token could be obtained (token endpoint refused, discovery failed)
    ├── InvalidArgumentError      an argument that must never reach the API (e.g. `..` as an id); nothing was sent
    ├── ApiError                  the API answered with an error status (.status, .code, .message, .target)
    └── TransportError            no usable answer: timeout, refused connection, dropped stream

Tokens never appear in any message: the classes only carry what the API or the transport said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "ErrorDetail",
    "InsightsError",
    "InvalidArgumentError",
    "TransportError",
]


class InsightsError(Exception):
    """Root of the errors this package raises."""


class ConfigError(InsightsError):
    """The settings cannot work as given."""


class AuthError(InsightsError):
    """No access token could be obtained."""


@dataclass
class InvalidArgumentError(InsightsError):
    """An argument refused before any request was built: `field` and why."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"`{self.field}`: {self.problem}"


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the API error body's `details` array."""

    code: str
    message: str
    target: str | None = None


@dataclass
class ApiError(InsightsError):
    """The API answered with a non-success status; fields mirror its error body."""

    status: int
    code: str
    message: str
    target: str | None = None
    details: list[ErrorDetail] = field(default_factory=list)
    retry_after: float | None = None
    attempts: int = 1

    def __str__(self) -> str:
        where = f" (target: {self.target})" if self.target else ""
        return f"{self.status} {self.code}: {self.message}{where}"


@dataclass
class TransportError(InsightsError):
    """The request got no usable answer (timeout, connection refused or dropped)."""

    message: str
    method: str
    retried: bool = False
    attempts: int = 1

    def __str__(self) -> str:
        return self.message
