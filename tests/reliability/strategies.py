"""Tool arguments from each tool's own input schema, valid and near-valid, with hostile values mixed in.

Valid arguments come from `hypothesis-jsonschema`; id-named fields often get ids that exist (see world.py) so calls
get past the 404s. Near-valid arguments then replace some fields with values an attacker or a careless client sends:
dot segments, slashes, control characters, lone surrogates, injection text, huge strings and numbers beyond 64 bits,
wrong types, a missing required field or an unknown one.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

__all__ = ["DOT_IDS", "HOSTILE_STRINGS", "hostile_strings", "portable_schema", "tool_arguments"]

HOSTILE_STRINGS: tuple[str, ...] = (
    ".",
    "..",
    "",
    " ",
    "/",
    "a/b",
    "../..",
    "%2e%2e",
    "%2F",
    "?a=1",
    "#x",
    "\x00",
    "a\nb",
    "x.csv\n",
    "\r\n",
    "\t\x07\x1b[31m",
    "\ud800",
    "a\udfffb",
    "'a' + '\ud800'",
    "\u202eevil",
    "\ufeff",
    "'; DROP TABLE records; --",
    '" OR 1=1 --',
    "0x" + "f" * 40,
    "9" * 40,
    "-1",
    "NaN",
    "{{7*7}}${jndi:x}",
    "<script>alert(1)</script>",
    "é" * 300,
    "\U0001d54f" * 300,
)
HOSTILE_OTHERS: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**40,
    1.5,
    [],
    {},
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    {"id": ".."},
)
DOT_IDS: tuple[str, ...] = (".", "..", "", " ", "./", "%2e", "%2E%2E")
_PORTABLE_NAME = "^[A-Za-z_][A-Za-z0-9_]{0,40}$"


def hostile_strings(*, long: bool) -> tuple[str, ...]:
    """The hostile strings plus huge ones: over 64 KB always (ids over 64 KB broke URLs), 1 MB in long runs."""
    big = ("A" * 70_000, "(" * 2_000 + "1" + ")" * 2_000)
    huge = ("x" * 1_000_000, "1" + " + 1" * 250_000) if long else ()
    return (*HOSTILE_STRINGS, *big, *huge)


def portable_schema(schema: Any) -> Any:
    """The schema with `\\p{..}` patterns (valid in JSON Schema, not in Python's re) swapped for an ASCII subset."""
    if isinstance(schema, dict):
        out = {k: portable_schema(v) for k, v in schema.items()}
        if isinstance(out.get("pattern"), str) and "\\p" in out["pattern"]:
            out["pattern"] = _PORTABLE_NAME
        return out
    if isinstance(schema, list):
        return [portable_schema(v) for v in schema]
    return schema


def _id_values(name: str, known: dict[str, list[str]]) -> list[Any]:
    if name in known:
        return list(known[name])
    if name == "mappings" and "mappingId" in known:
        return [[{"id": m}] for m in known["mappingId"]]
    return []


@st.composite
def tool_arguments(
    draw: st.DrawFn,
    schema: dict[str, Any],
    known: dict[str, list[str]],
    strings: tuple[str, ...],
    path_ids: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[str]]:
    """(arguments, the hostile strings put in them) for one call of the tool with this input schema.

    `path_ids` are the arguments that become URL path segments; mode "dot-id" puts `.`, `..` or an empty string in
    one of them while the others stay real ids (how `delete_group(groupId="..")` deleted a whole mapping).
    """
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = list(schema.get("required", []))
    drawn: Any = draw(from_schema(portable_schema(schema)))
    args: dict[str, Any] = copy.deepcopy(drawn)
    for name in sorted(properties):
        choices = _id_values(name, known)
        if choices and (name in args or name in required or draw(st.booleans())) and draw(st.integers(0, 3)) > 0:
            args[name] = draw(st.sampled_from(choices))
    injected: list[str] = []
    modes = ["valid", "valid", "hostile", "hostile", "hostile", "wrong-type", "drop", "extra"]
    mode = draw(st.sampled_from(modes + (["dot-id"] if path_ids else [])))
    names = sorted(properties)
    if mode == "dot-id":
        value = draw(st.sampled_from(DOT_IDS))
        args[draw(st.sampled_from(path_ids))] = value
        injected.append(value)
    elif mode == "hostile" and names:
        for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
            value = draw(st.sampled_from(strings) | st.text(max_size=50))
            if properties[name].get("type") == "array":
                args[name] = [value] if draw(st.booleans()) else [{"id": value}]
            else:
                args[name] = value
            injected.append(value)
    elif mode == "wrong-type" and names:
        args[draw(st.sampled_from(names))] = draw(st.sampled_from(HOSTILE_OTHERS))
    elif mode == "drop" and required:
        args.pop(draw(st.sampled_from(required)), None)
    elif mode == "extra":
        args[draw(st.sampled_from(["__proto__", "$top", "extra", "..", "ID"]))] = draw(st.sampled_from(strings))
    return args, injected
