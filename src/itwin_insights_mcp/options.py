"""How a setting is declared, and what is generated from one declaration: parsing, checks, defaults as text.

`option(...)` / `computed(...)` make a dataclass field that carries its declaration; `declared_options(cls)` reads
them back as `Option` records. Nothing here knows any particular setting: they are declared in `settings.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, Required, TypedDict, TypeVar, Unpack, get_args, get_origin, get_type_hints

from .errors import ConfigError

__all__ = ["SERVE", "Kind", "Option", "Spec", "computed", "declared_options", "on", "option", "split_list"]

Kind = Literal["str", "int", "float", "bool", "list"]
SERVE = "serve"  # the subcommand a flag belongs to unless another is named


class Spec(TypedDict, total=False):
    """What one option declares besides its name, type and default (see `Option` for each key)."""

    description: Required[str]
    env: str
    flags: Mapping[str, str]
    secret: bool
    choices: tuple[str, ...]
    ge: float
    gt: float
    le: float
    shown_default: str
    path: Literal["file", "directory"]
    uppercase: bool


_T = TypeVar("_T")


def on(flag: str, *commands: str) -> dict[str, str]:
    """The same flag on several subcommands (`serve` when none is named)."""
    return {command: flag for command in commands or (SERVE,)}


def option(default: _T, **spec: Unpack[Spec]) -> _T:
    """Declare a setting with a fixed default (a dataclass field carrying its declaration)."""
    return field(default=default, repr=not spec.get("secret", False), metadata={"option": spec})


def computed(factory: Callable[[], _T], **spec: Unpack[Spec]) -> _T:
    """Declare a setting whose default depends on the machine (a path in the user data dir)."""
    return field(default_factory=factory, repr=not spec.get("secret", False), metadata={"option": spec})


@dataclass(frozen=True)
class Option:
    """One setting as declared on `Settings`, with what is generated from the declaration."""

    name: str
    kind: Kind
    description: str
    default: object  # the value, or None when `factory` computes it
    factory: Callable[[], object] | None = None
    env: str | None = None  # None: not configurable from outside (set in code only)
    flags: tuple[tuple[str, str], ...] = ()  # (subcommand, flag); secrets have none
    secret: bool = False  # hidden from repr, marked secret in the registry, never a flag
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    shown_default: str | None = None  # how the docs describe a default computed at run time
    path: Literal["file", "directory"] | None = None  # a local path: the registry's and the bundle's formats
    uppercase: bool = False  # read case-insensitively, kept upper case (log levels)

    def flag(self, command: str) -> str | None:
        """This option's flag on one subcommand (`serve`, `sandbox serve`, `login`, ...), if it has one."""
        return dict(self.flags).get(command)

    @property
    def label(self) -> str:
        """How messages name the option: its serve flag and variable, else whichever exists."""
        flag = self.flag(SERVE)
        if flag and self.env:
            return f"{self.env} ({flag})"
        return self.env or flag or self.name

    def env_default(self) -> str | None:
        """The default as the text its environment variable would carry; None when empty or machine-dependent."""
        default = self.default
        if self.factory is not None or default is None or default in ((), ""):
            return None
        if self.kind == "bool":
            return "true" if default else "false"
        if isinstance(default, tuple):
            return ",".join(str(item) for item in default)  # a comma list, as the variable is read
        if isinstance(default, float) and default.is_integer():
            return str(int(default))
        return str(default)

    def shown(self) -> str:
        """The default as the docs and `--help` show it (empty when there is none)."""
        if self.shown_default:
            return self.shown_default
        text = self.env_default()
        return f"`{text}`" if text else ""

    def parse(self, raw: str, source: str) -> object:
        """Turn the text of a variable (or flag) into this option's type; `source` names it in errors."""
        if self.kind == "bool":
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{source} must be true or false, not {raw!r}.")
        if self.kind == "int":
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{source} must be an integer, not {raw!r}.") from None
        if self.kind == "float":
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{source} must be a number, not {raw!r}.") from None
        if self.kind == "list":
            return split_list(raw)
        return raw.upper() if self.uppercase else raw

    def problem(self, value: object) -> str | None:
        """Why `value` is not allowed (choices, range), or None when it is."""
        if self.choices and value is not None:
            text = str(value).upper() if self.uppercase else value
            if text not in self.choices:
                return f"{self.label} must be {_either(self.choices)}, not {value!r}."
        if isinstance(value, int | float) and not isinstance(value, bool):
            low_ok = (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
            if not low_ok or (self.le is not None and value > self.le):
                return f"{self.label} must be {self.range_text()}, not {value}."
        return None

    def explained(self) -> str:
        """The description with the allowed range, as `--help` and the README show it."""
        bounds = self.range_text()
        return f"{self.description} ({bounds})" if bounds else self.description

    def range_text(self) -> str:
        """The allowed range in words ('between 1 and 1000', 'more than 0 and at most 3600', 'at least 1')."""
        if self.ge is not None and self.le is not None:
            return f"between {_num(self.ge)} and {_num(self.le)}"
        low = ""
        if self.ge is not None:
            low = f"at least {_num(self.ge)}"
        elif self.gt is not None:
            low = f"more than {_num(self.gt)}"
        high = f"at most {_num(self.le)}" if self.le is not None else ""
        return " and ".join(part for part in (low, high) if part)


def split_list(raw: str) -> tuple[str, ...]:
    """A comma list as a tuple, blanks dropped (how list variables and flags are read)."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _either(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]


def _kind(hint: object) -> tuple[Kind, tuple[str, ...]]:
    """The option kind and the Literal choices of a field's type."""
    if get_origin(hint) is Literal:
        return "str", tuple(str(value) for value in get_args(hint))
    if hint is bool:
        return "bool", ()
    if hint is int:
        return "int", ()
    if hint is float:
        return "float", ()
    if get_origin(hint) is tuple:
        return "list", ()
    return "str", ()


def declared_options(cls: type) -> tuple[Option, ...]:
    """The options declared on a dataclass's fields (each made by `option` or `computed`), in field order."""
    hints = get_type_hints(cls)
    options = []
    for item in fields(cls):
        spec: dict[str, Any] = dict(item.metadata["option"])
        kind, choices = _kind(hints[item.name])
        options.append(
            Option(
                name=item.name,
                kind=kind,
                default=None if item.default is MISSING else item.default,
                factory=None if item.default_factory is MISSING else item.default_factory,
                choices=spec.pop("choices", choices),
                flags=tuple(spec.pop("flags", {}).items()),
                **spec,
            )
        )
        if options[-1].flags and (options[-1].secret or not options[-1].env):
            raise TypeError(f"{item.name}: a flag needs a variable, and a secret has no flag (process lists show it)")
    return tuple(options)
