"""JSON Schema validation shared by both edges: tool arguments and sandbox request bodies.

Every `pattern` in the specs is portable (it means the same in Python `re` and ECMAScript `RegExp` with or without
the `u` flag), so jsonschema's own `re`-based check applies. Where Bentley's exact rule needs Unicode classes (the OData
SimpleIdentifier `\\p{L}...`), the spec adds it as `x-sandbox-pattern`, checked here with the `regex` module; the
catalog strips it from tool schemas, so only the sandbox enforces it. Messages name the field so an agent can fix it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import SANDBOX_PATTERN

if TYPE_CHECKING:
    from jsonschema import ValidationError

__all__ = ["Problem", "problems", "unencodable"]


@functools.cache
def _validator_class() -> Any:
    """Draft 2020-12 plus `x-sandbox-pattern` (Unicode classes via `regex`); both load on first use (~50 ms)."""
    import jsonschema
    import regex
    from jsonschema.validators import extend

    compiled = functools.cache(regex.compile)

    def exact(validator: Any, patrn: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not compiled(patrn).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    return extend(jsonschema.Draft202012Validator, {SANDBOX_PATTERN: exact})  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Problem:
    """One violation: the dotted field path (empty for the whole object) and a sentence about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"`{self.field}`: {self.message}" if self.field else self.message


# Schemas come from the catalog and live as long as the process, so validators are kept per schema object.
_validators: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    entry = _validators.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _validator_class()(schema))
        _validators[id(schema)] = entry
    return entry[1]


def unencodable(instance: Any, path: str = "") -> list[Problem]:
    """Strings (keys too) holding a lone UTF-16 surrogate: valid in a JSON escape, but no UTF-8 body can carry them,
    so they are refused before any request is built instead of failing while it is encoded."""
    found: list[Problem] = []
    if isinstance(instance, str):
        try:
            instance.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(instance[exc.start])
            found.append(
                Problem(
                    path,
                    f"holds a lone UTF-16 surrogate (U+{code:04X}) at position {exc.start}, which cannot be sent "
                    "as UTF-8; remove it or write the whole character (a surrogate pair)",
                )
            )
    elif isinstance(instance, Mapping):
        for key, value in instance.items():
            where = f"{path}.{key}" if path else str(key)
            found.extend(unencodable(key, f"{path} (a key)" if path else "(a key)") if isinstance(key, str) else [])
            found.extend(unencodable(value, where))
    elif isinstance(instance, list):
        for index, item in enumerate(instance):
            found.extend(unencodable(item, f"{path}[{index}]"))
    return found


def problems(schema: Mapping[str, Any], instance: Any) -> list[Problem]:
    """Every violation of `schema` by `instance`, sorted by field, each phrased for a person or an agent."""
    errors = sorted(_validator(schema).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(error) for error in errors]


def _describe(error: ValidationError) -> Problem:
    path = ".".join(str(part) for part in error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return Problem(f"{path}.{missing}" if path else missing, "is required")
    if kind == "additionalProperties":
        extra = error.message.split("(")[-1].rstrip(")")
        return Problem(path, f"unknown field(s): {extra}")
    if kind == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)  # type: ignore[union-attr]
        return Problem(path, f"must be one of: {allowed} (got {error.instance!r})")
    if kind in ("pattern", SANDBOX_PATTERN):
        described = error.schema.get("description", "") if isinstance(error.schema, Mapping) else ""
        identifier = "SimpleIdentifier" in str(described) or "\\p{L}" in str(error.validator_value)
        what = (
            "a simple identifier (a letter or _, then letters, digits or _)"
            if identifier
            else f"text matching {error.validator_value}"
        )
        return Problem(path, f"must be {what} (got {error.instance!r})")
    if kind == "maxLength":
        return Problem(path, f"must be at most {error.validator_value} characters (got {len(str(error.instance))})")
    if kind == "minLength":
        return Problem(path, "must not be empty")
    if kind in ("minimum", "maximum"):
        return Problem(path, f"{error.message} (allowed range in the description)")
    if kind == "minItems":
        return Problem(path, f"needs at least {error.validator_value} item(s)")
    if kind == "minProperties":
        return Problem(path, "give at least one field to change")
    if kind == "type":
        return Problem(path, f"must be of type {error.validator_value} (got {type(error.instance).__name__})")
    return Problem(path, error.message)
