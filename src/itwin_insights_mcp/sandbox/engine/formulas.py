"""The custom-calculation ``formula`` language: tokenizer, parser, type checker and compiled evaluator.

A custom calculation is a per-row expression over the other columns of its group (group properties, calculated
properties and other custom calculations). This module is the sandbox's single implementation of that language;
it follows the reference (§8.4 of ``insights-api.md``) and, where the reference is silent, Bentley's
grouping-mapping widget validator (``FormulaOperatorsProvider``/``FormulaFunctionProvider``), and JavaScript
semantics for the values themselves.

Grammar (lowest to highest precedence; all binary operators are left-associative except ``**``)::

    formula  := expr EOF
    expr     := expr "||" expr
              | expr "&&" expr
              | expr ("==" | "!=") expr
              | expr ("<" | "<=" | ">" | ">=") expr
              | expr ("+" | "-") expr
              | expr ("*" | "/" | "%") expr      # also implicit "*", see below
              | expr "**" expr                   # right-associative: 2 ** 3 ** 2 == 2 ** 9
              | ("-" | "+" | "!") expr           # binds tighter than "**": -2 ** 2 == (-2) ** 2 == 4
              | primary
    primary  := NUMBER | STRING | "true" | "false" | "null" | CONSTANT
              | NAME "(" [expr ("," expr)*] ")"   # function call (NAME is a known function)
              | NAME                              # column reference
              | "(" expr ")"

* NUMBER: decimal (``12``, ``1.5``, ``.5``, ``1e-3``), binary ``0b101``, octal ``0o17``, hex ``0x1F``.
  Every numeric literal is a Double.
* STRING: ``"..."`` or ``'...'`` with JavaScript backslash escapes (``\\n \\t \\r \\b \\f \\v \\0 \\xHH \\uHHHH
  \\u{H...}``; any other escaped character stands for itself).
* NAME: a letter or ``_`` followed by letters, digits or ``_``. ``true``, ``false``, ``null`` and the constants
  ``E LN2 LN10 LOG2E LOG10E PI SQRT1_2 SQRT2`` are keywords (case-insensitive) and always win over a column of the
  same name (this is what the widget does, and it lets :func:`parse` know the referenced columns without the group's
  schema). A name followed by ``(`` is a function call; any other name is a column (``min * max`` multiplies the
  columns ``min`` and ``max``). Function, column, constant and keyword names are case-insensitive.
* Implicit multiplication (widget behaviour): a number directly followed by a name (``2PI``, ``3 Length``), or a
  number or ``)`` directly followed by ``(`` (``2(a + b)``, ``(a)(b)``), multiplies.
* Positions in error messages are 0-based character offsets into the formula.

Typing (:func:`infer_type`) -- result ``dataType`` is one of Double, Integer, String, Boolean:

* Numeric literals and constants are Double; arithmetic (``* / % ** -`` and numeric ``+``) is always Double, even
  on Integer operands. Integer only results from an Integer column passing through unchanged: a bare reference
  ``Count``, unary ``+Count``, or a conditional whose branches are all Integer.
* ``* / % **`` and ``-`` (unary or binary) reject String operands; binary ``+`` with a String operand is String
  concatenation; unary ``+`` keeps its operand's type. Boolean operands are allowed in arithmetic (true = 1).
* Comparisons, ``==``/``!=``, ``&&``, ``||`` and ``!`` are Boolean. The ``null`` literal is only allowed as an
  operand of ``==``/``!=`` and where a function documents it; a formula that can only ever be null is rejected.
* Numeric functions take numbers (Double or Integer; String and Boolean arguments are rejected: use ``tonumber``) and
  return Double; ``indexof`` and ``tonumber`` return Double. String functions take Strings (use ``tostring``) and
  return String. ``isin`` and ``toboolean`` return Boolean. Unit functions return String.
* ``if(cond, a, b)``: ``cond`` must be Boolean; ``ifnull``/``ifnotnull``: both arguments; ``isin``: all arguments --
  must share one type. Integer and Double mix to Double; ``null`` literals are allowed in ``if`` branches and as the
  first argument of ``ifnull``/``ifnotnull``; any other mix (e.g. Double and String) is an error that suggests
  ``tostring()``/``tonumber()``. The ``ifempty`` family takes and returns Strings.
* A column type of ``None`` (or any value outside the four types, e.g. ``"Undefined"``; ``"Number"`` counts as
  Double) means "unknown / placeholder": it is compatible with every parameter and operator and
  unifies with any type. A formula whose result type stays unknown (e.g. just that column) is reported as Double.

Evaluation (:func:`evaluate`, :meth:`Formula.compile`):

* Values are ``float | int | str | bool | None``. Arithmetic results are floats; Integer columns pass through as ints.
* Null rules: an arithmetic operator, a comparison (``< <= > >=``), string ``+`` and every function that is not a
  conditional yield null when an operand is null (JavaScript would coerce null to 0; report data should not).
  ``==``/``!=`` compare null like a value (``null == null`` is true, ``x == null`` is true only for null x).
  ``&&``, ``||``, ``!`` and the ``if`` condition use JavaScript truthiness (null, 0, NaN and "" are false) and always
  produce a Boolean.
* Numbers follow JavaScript: ``/`` by zero gives +-Infinity (NaN for 0/0), ``%`` takes the sign of the dividend,
  ``**``/``pow`` follow ``Math.pow``, ``round`` rounds half up toward +Infinity, ``clz32``/``imul`` work on 32-bit
  integers, ``fround`` rounds to float32, ``log`` is the natural logarithm, domain errors give NaN. Intermediate
  values may be Infinity/NaN (``1/0 > 5`` is true), but a non-finite final result becomes null because OData values
  are JSON; ``-0`` becomes ``0``.
* Mixed-type operands (only possible with unknown column types) are coerced like JavaScript: strings to numbers with
  ``Number()`` rules (an unparseable or blank string becomes null), numbers to strings with JavaScript formatting.
* String functions use JavaScript semantics on code points: ``charat`` out of range gives ``""``; ``substring``
  clamps to the string and swaps reversed bounds; ``indexof`` clamps its start; ``padstart``/``padend`` repeat the
  pad string (default one space) up to the target length (targets above 65535 characters give null); the ``trim``
  family strips JavaScript whitespace.
* Conditionals are lazy and share one rule: ``ifX(a, b)`` returns ``b`` when condition X holds for ``a`` and
  otherwise returns ``a`` unchanged. So ``ifnull(a, b)`` = ``a ?? b``; ``ifnotnull(a, b)`` = ``b`` if ``a`` is not
  null, else null; ``ifempty(a, b)`` = ``b`` if ``a == ""``; ``ifnotempty(a, b)`` = ``b`` if ``a`` is a non-empty
  string (both give null for a null ``a``); ``ifnullorempty``/``ifnotnullorempty`` treat null and ``""`` alike;
  ``ifnullorwhitespace``/``ifnotnullorwhitespace`` also count whitespace-only strings.
* ``isin(x, v1, ...)`` is true when ``x == vi`` for some i (same equality as ``==``).
* ``tonumber``: booleans to 1/0, strings with JavaScript ``Number()`` rules (``"0x1F"``, ``" 12 "``, ``"1e3"``,
  ``"Infinity"``), blank or unparseable strings to null. ``tostring``: JavaScript ``String()`` (``3`` -> ``"3"``,
  ``0.1 + 0.2`` -> ``"0.30000000000000004"``, ``true`` -> ``"true"``). ``toboolean``: booleans as is, numbers are
  true unless 0 or NaN, strings ``"true"``/``"false"`` (case-insensitive, trimmed), otherwise numeric strings by
  value; any other string is null.
* ``random()`` returns the caller-supplied ``random_value`` (Insights draws one value per output table).
* ``getpersistenceunit(col)``/``getpresentationunits(col)`` require a column reference, type as String and evaluate
  to null: the sandbox has no unit system.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeAlias

__all__ = [
    "DataType",
    "Formula",
    "FormulaError",
    "check",
    "evaluate",
    "evaluation_order",
    "infer_type",
    "parse",
    "to_sql",
]

DataType = Literal["Double", "Integer", "String", "Boolean"]

Row: TypeAlias = Mapping[str, object]
_Fn: TypeAlias = Callable[[Row], object]

# Internal type lattice: the four public types, "Null" for the null literal, None for "unknown / any".
_T: TypeAlias = str | None
_NULL = "Null"
_NUMERIC = frozenset({"Double", "Integer"})
_PUBLIC_TYPES = frozenset({"Double", "Integer", "String", "Boolean"})

_PAD_LIMIT = 65535
#: Limits checked before any recursive step (parser, type inference, compiler and evaluation all recurse over the
#: tree): a formula over one is refused with a FormulaError, never a RecursionError.
MAX_FORMULA_LENGTH = 10_000
_MAX_NESTING = 100  # parser nesting: parentheses, calls, unary and right-associative operators
MAX_DEPTH = 100  # depth of the parsed tree (a flat chain of 601 terms is 600 deep)


class FormulaError(ValueError):
    """An invalid formula. ``str(error)`` says what is wrong and how to fix it.

    ``position`` is the 0-based character offset in the formula when known; ``property_name`` names the custom
    calculation when the error comes from :func:`check` or :func:`evaluation_order`.
    """

    def __init__(self, message: str, *, position: int | None = None, property_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.property_name = property_name

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------------------------

_NUM, _STR, _NAME, _OP, _LPAREN, _RPAREN, _COMMA, _EOF = "number", "string", "name", "op", "(", ")", ",", "end"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int
    value: object = None


_OPERATORS = ("**", "<=", ">=", "==", "!=", "&&", "||", "*", "/", "%", "+", "-", "<", ">", "!")
_OPERATOR_HINTS = {
    "===": "use '==' for equality",
    "!==": "use '!=' for inequality",
    "=": "use '==' to compare values (a formula cannot assign)",
    "^": "use '**' for exponentiation",
    "&": "use '&&' for logical and",
    "|": "use '||' for logical or",
    "<>": "use '!=' for inequality",
    "??": "use ifnull(a, b)",
    "?": "use if(condition, a, b)",
    ":": "use if(condition, a, b)",
    ";": "a formula is a single expression",
    "[": "columns are referenced by bare name",
    "]": "columns are referenced by bare name",
    "{": "braces are not part of the formula language",
    "}": "braces are not part of the formula language",
    "`": "strings use double or single quotes",
    "~": "bitwise operators are not supported",
}

_NUMBER_RE = re.compile(
    r"0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<bin>[01]+)|0[oO](?P<oct>[0-7]+)"
    r"|(?P<dec>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
)
_NAME_RE = re.compile(r"[^\W\d]\w*")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and src[i + 1].isdigit()):
            m = _NUMBER_RE.match(src, i)
            assert m is not None
            try:
                if m.group("hex") is not None:
                    value = float(int(m.group("hex"), 16))
                elif m.group("bin") is not None:
                    value = float(int(m.group("bin"), 2))
                elif m.group("oct") is not None:
                    value = float(int(m.group("oct"), 8))
                else:
                    value = float(m.group("dec"))
            except OverflowError:
                raise FormulaError(
                    f"Number '{_prefix(m.group(0))}' at position {i} is too large for a double", position=i
                ) from None
            end = m.end()
            radix = m.group("dec") is None
            if (end < n and src[end] in "0123456789.") or (
                end < n and (src[end].isalnum() or src[end] == "_") and (radix or m.group(0) == "0")
            ):
                raise FormulaError(f"Malformed number '{_prefix(src[i : end + 1])}' at position {i}", position=i)
            tokens.append(_Token(_NUM, m.group(0), i, value))
            i = end
            continue
        if ch in "\"'":
            text, end = _read_string(src, i)
            tokens.append(_Token(_STR, src[i:end], i, text))
            i = end
            continue
        m = _NAME_RE.match(src, i)
        if m is not None:
            tokens.append(_Token(_NAME, m.group(0), i))
            i = m.end()
            continue
        if ch in "(),":
            tokens.append(_Token(ch, ch, i))
            i += 1
            continue
        for bad in ("===", "!==", "<>", "??"):
            if src.startswith(bad, i):
                raise FormulaError(f"Unsupported operator '{bad}' at position {i}; {_OPERATOR_HINTS[bad]}", position=i)
        op = next((o for o in _OPERATORS if src.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token(_OP, op, i))
            i += len(op)
            continue
        hint = _OPERATOR_HINTS.get(ch)
        suffix = f"; {hint}" if hint else ""
        raise FormulaError(f"Unexpected character '{ch}' at position {i}{suffix}", position=i)
    tokens.append(_Token(_EOF, "", n))
    return tokens


def _prefix(text: str, size: int = 20) -> str:
    """At most `size` characters of a bad value, for error messages (a 1 MB literal is not echoed back)."""
    return text if len(text) <= size else text[:size] + "..."


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _well_formed(text: str, start: int) -> str:
    """Join UTF-16 surrogate pairs written as two escapes; refuse a lone surrogate.

    A lone surrogate cannot be encoded as UTF-8, so a value holding one could never be returned or exported.
    """
    if not _has_surrogate(text):
        return text
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if _has_surrogate(joined):
        raise FormulaError(
            f"The string starting at position {start} contains a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape "
            "without its pair); write the character itself or a complete pair",
            position=start,
        )
    return joined


def _read_string(src: str, start: int) -> tuple[str, int]:
    quote = src[start]
    out: list[str] = []
    i, n = start + 1, len(src)
    while i < n:
        ch = src[i]
        if ch == quote:
            return _well_formed("".join(out), start), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = src[i + 1]
            if esc in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[esc])
                i += 2
            elif esc == "x":
                hexdigits = src[i + 2 : i + 4]
                if len(hexdigits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in hexdigits):
                    raise FormulaError(f"Invalid escape '\\x' at position {i}; expected \\xHH", position=i)
                out.append(chr(int(hexdigits, 16)))
                i += 4
            elif esc == "u":
                if src.startswith("{", i + 2):
                    close = src.find("}", i + 3)
                    digits = src[i + 3 : close] if close != -1 else ""
                    if (
                        not digits
                        or not all(c in "0123456789abcdefABCDEF" for c in digits)
                        or int(digits, 16) > 0x10FFFF
                    ):
                        raise FormulaError(f"Invalid escape '\\u{{...}}' at position {i}", position=i)
                    out.append(chr(int(digits, 16)))
                    i = close + 1
                else:
                    digits = src[i + 2 : i + 6]
                    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                        raise FormulaError(f"Invalid escape '\\u' at position {i}; expected \\uHHHH", position=i)
                    out.append(chr(int(digits, 16)))
                    i += 6
            else:
                out.append(esc)
                i += 2
            continue
        out.append(ch)
        i += 1
    raise FormulaError(f"Unterminated string starting at position {start}; close it with {quote}", position=start)


# --------------------------------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lit:
    value: float | str | bool | None
    pos: int
    text: str


@dataclass(frozen=True, slots=True)
class _Col:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str  # lower-case canonical name
    written: str
    args: tuple[_Node, ...]
    pos: int


_Node: TypeAlias = _Lit | _Col | _Unary | _Binary | _Call

_CONSTANTS: dict[str, float] = {
    "e": math.e,
    "ln2": math.log(2),
    "ln10": math.log(10),
    "log2e": 1 / math.log(2),
    "log10e": 1 / math.log(10),
    "pi": math.pi,
    "sqrt1_2": math.sqrt(0.5),
    "sqrt2": math.sqrt(2),
}
_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


# --------------------------------------------------------------------------------------------------------------------
# Function table
# --------------------------------------------------------------------------------------------------------------------


# Parameter kinds: "num" number, "str" string, "bool" boolean condition, "any" any non-null value,
# "match" any value that must share one type with the other "match"/"match?" arguments ("match?" may be null),
# "str?" string or null, "column" a bare column reference.
@dataclass(frozen=True, slots=True)
class _Spec:
    min_args: int
    max_args: int | None  # None = variadic
    params: tuple[str, ...]  # the last one repeats for variadic functions
    result: str  # a public type, or "match" (the unified type of the "match" arguments)
    family: str

    def param(self, index: int) -> str:
        return self.params[min(index, len(self.params) - 1)]


def _numeric(n: int = 1, *, variadic: bool = False) -> _Spec:
    return _Spec(n, None if variadic else n, ("num",) * n, "Double", "numeric")


_FUNCTIONS: dict[str, _Spec] = {
    **{
        name: _numeric()
        for name in (
            *("abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cbrt", "ceil", "clz32", "cos", "cosh"),
            *("exp", "expm1", "floor", "fround", "log", "log1p", "log10", "log2", "round", "sign", "sin", "sinh"),
            *("sqrt", "tan", "tanh", "trunc"),
        )
    },
    "atan2": _numeric(2),
    "imul": _numeric(2),
    "pow": _numeric(2),
    "hypot": _numeric(2, variadic=True),
    "max": _numeric(2, variadic=True),
    "min": _numeric(2, variadic=True),
    "random": _Spec(0, 0, (), "Double", "numeric"),
    "tonumber": _Spec(1, 1, ("any",), "Double", "numeric"),
    "charat": _Spec(2, 2, ("str", "num"), "String", "string"),
    "concat": _Spec(2, None, ("str", "str"), "String", "string"),
    "padend": _Spec(2, 3, ("str", "num", "str"), "String", "string"),
    "padstart": _Spec(2, 3, ("str", "num", "str"), "String", "string"),
    "substring": _Spec(2, 3, ("str", "num", "num"), "String", "string"),
    "indexof": _Spec(2, 3, ("str", "str", "num"), "Double", "string"),
    "tolowercase": _Spec(1, 1, ("str",), "String", "string"),
    "touppercase": _Spec(1, 1, ("str",), "String", "string"),
    "trim": _Spec(1, 1, ("str",), "String", "string"),
    "trimend": _Spec(1, 1, ("str",), "String", "string"),
    "trimstart": _Spec(1, 1, ("str",), "String", "string"),
    "tostring": _Spec(1, 1, ("any",), "String", "string"),
    "if": _Spec(3, 3, ("bool", "match?", "match?"), "match", "conditional"),
    "ifnull": _Spec(2, 2, ("match?", "match"), "match", "conditional"),
    "ifnotnull": _Spec(2, 2, ("match?", "match"), "match", "conditional"),
    "ifempty": _Spec(2, 2, ("str", "str"), "String", "conditional"),
    "ifnotempty": _Spec(2, 2, ("str", "str"), "String", "conditional"),
    **{
        name: _Spec(2, 2, ("str?", "str"), "String", "conditional")
        for name in (
            "ifnullorempty",
            "ifnotnullorempty",
            "ifnullorwhitespace",
            "ifnotnullorwhitespace",
        )
    },
    "isin": _Spec(2, None, ("match", "match"), "Boolean", "boolean"),
    "toboolean": _Spec(1, 1, ("any",), "Boolean", "boolean"),
    "getpersistenceunit": _Spec(1, 1, ("column",), "String", "unit"),
    "getpresentationunits": _Spec(1, 1, ("column",), "String", "unit"),
}


def _arity_text(spec: _Spec) -> str:
    if spec.max_args is None:
        return f"at least {spec.min_args} argument{'s' if spec.min_args != 1 else ''}"
    if spec.min_args == spec.max_args == 0:
        return "no arguments"
    if spec.min_args == spec.max_args:
        return f"exactly {spec.min_args} argument{'s' if spec.min_args != 1 else ''}"
    return f"{spec.min_args} or {spec.max_args} arguments"


# --------------------------------------------------------------------------------------------------------------------
# Parser (Pratt)
# --------------------------------------------------------------------------------------------------------------------

_BINARY_BP: dict[str, tuple[int, int]] = {
    "||": (2, 3),
    "&&": (4, 5),
    "==": (6, 7),
    "!=": (6, 7),
    "<": (8, 9),
    "<=": (8, 9),
    ">": (8, 9),
    ">=": (8, 9),
    "+": (10, 11),
    "-": (10, 11),
    "*": (12, 13),
    "/": (12, 13),
    "%": (12, 13),
    "**": (14, 14),  # right-associative
}
_UNARY_BP = 16  # unary operators bind tighter than "**" (widget precedence)
_VALUE_HINT = "expected a value (number, string, column, function call or '(')"


def _describe(tok: _Token) -> str:
    if tok.kind == _EOF:
        return f"end of formula at position {tok.pos}"
    return f"'{_prefix(tok.text)}' at position {tok.pos}"


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _tokenize(src)
        self.i = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> _Node:
        if self.peek().kind == _EOF:
            raise FormulaError("Formula is empty; write an expression such as 'Length * Width'", position=0)
        node = self.expr(0)
        tok = self.peek()
        if tok.kind != _EOF:
            raise self.unexpected(tok, "expected an operator or the end of the formula")
        return node

    def unexpected(self, tok: _Token, expected: str) -> FormulaError:
        if tok.kind == _RPAREN:
            return FormulaError(f"Unexpected ')' at position {tok.pos}; it has no matching '('", position=tok.pos)
        if tok.kind == _COMMA:
            return FormulaError(
                f"Unexpected ',' at position {tok.pos}; commas only separate function arguments", position=tok.pos
            )
        if expected.startswith("expected an operator") and tok.kind in (_NUM, _STR, _NAME, _LPAREN):
            prev = self.tokens[self.i - 1]
            return FormulaError(
                f"Missing operator between '{_prefix(prev.text)}' and '{_prefix(tok.text)}' at position {tok.pos}",
                position=tok.pos,
            )
        return FormulaError(f"Unexpected {_describe(tok)}; {expected}", position=tok.pos)

    def expr(self, min_bp: int) -> _Node:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise FormulaError(
                f"Formula is nested too deeply (more than {_MAX_NESTING} levels)", position=self.peek().pos
            )
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind == _OP and tok.text in _BINARY_BP:
                op = tok.text
                lbp, rbp = _BINARY_BP[op]
                if lbp < min_bp:
                    break
                self.take()
            elif self.implicit_multiplication(tok):
                op = "*"
                lbp, rbp = _BINARY_BP[op]
                if lbp < min_bp:
                    break
            else:
                break
            right = self.expr(rbp)
            left = _Binary(op, left, right, tok.pos)
        self.depth -= 1
        return left

    def implicit_multiplication(self, tok: _Token) -> bool:
        prev = self.tokens[self.i - 1]
        if tok.kind == _NAME and prev.kind == _NUM:
            return self.peek(1).kind != _LPAREN
        return tok.kind == _LPAREN and prev.kind in (_NUM, _RPAREN)

    def prefix(self) -> _Node:
        tok = self.take()
        if tok.kind == _OP and tok.text in ("-", "+", "!"):
            operand = self.expr(_UNARY_BP)
            return _Unary(tok.text, operand, tok.pos)
        if tok.kind == _NUM:
            assert isinstance(tok.value, float)
            return _Lit(tok.value, tok.pos, tok.text)
        if tok.kind == _STR:
            assert isinstance(tok.value, str)
            return _Lit(tok.value, tok.pos, tok.text)
        if tok.kind == _LPAREN:
            inner = self.expr(0)
            close = self.peek()
            if close.kind != _RPAREN:
                if close.kind == _EOF:
                    raise FormulaError(f"Missing ')' to close the '(' at position {tok.pos}", position=tok.pos)
                raise self.unexpected(close, f"expected ')' to close the '(' at position {tok.pos}")
            self.take()
            return inner
        if tok.kind == _NAME:
            if self.peek().kind == _LPAREN:
                return self.call(tok)
            lower = tok.text.lower()
            if lower in _KEYWORDS:
                return _Lit(_KEYWORDS[lower], tok.pos, tok.text)
            if lower in _CONSTANTS:
                return _Lit(_CONSTANTS[lower], tok.pos, tok.text)
            return _Col(tok.text, tok.pos)
        raise FormulaError(f"Unexpected {_describe(tok)}; {_VALUE_HINT}", position=tok.pos)

    def call(self, name_tok: _Token) -> _Node:
        lower = name_tok.text.lower()
        spec = _FUNCTIONS.get(lower)
        if spec is None:
            raise _unknown_function(name_tok.text, name_tok.pos)
        open_tok = self.take()
        args: list[_Node] = []
        if self.peek().kind == _RPAREN:
            self.take()
        else:
            while True:
                args.append(self.expr(0))
                tok = self.peek()
                if tok.kind == _COMMA:
                    self.take()
                    continue
                if tok.kind == _RPAREN:
                    self.take()
                    break
                if tok.kind == _EOF:
                    raise FormulaError(
                        f"Missing ')' to close the call of '{name_tok.text}' opened at position {open_tok.pos}",
                        position=open_tok.pos,
                    )
                raise self.unexpected(tok, f"expected ',' or ')' in the call of '{name_tok.text}'")
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise FormulaError(
                f"Function '{lower}' at position {name_tok.pos} takes {_arity_text(spec)}, got {count}",
                position=name_tok.pos,
            )
        for index, arg in enumerate(args):
            if spec.param(index) == "column" and not isinstance(arg, _Col):
                raise FormulaError(
                    f"Function '{lower}' at position {name_tok.pos} expects a column name as its argument, "
                    f"e.g. {lower}(Length)",
                    position=name_tok.pos,
                )
        return _Call(lower, name_tok.text, tuple(args), name_tok.pos)


def _unknown_function(name: str, pos: int) -> FormulaError:
    close = difflib.get_close_matches(name.lower(), list(_FUNCTIONS), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "supported functions: " + ", ".join(sorted(_FUNCTIONS))
    return FormulaError(f"Unknown function '{_prefix(name)}' at position {pos}; {hint}", position=pos)


# --------------------------------------------------------------------------------------------------------------------
# Public parse / Formula
# --------------------------------------------------------------------------------------------------------------------


def _collect_columns(node: _Node, out: set[str]) -> None:
    if isinstance(node, _Col):
        out.add(node.name)
    elif isinstance(node, _Unary):
        _collect_columns(node.operand, out)
    elif isinstance(node, _Binary):
        _collect_columns(node.left, out)
        _collect_columns(node.right, out)
    elif isinstance(node, _Call):
        for arg in node.args:
            _collect_columns(arg, out)


@dataclass(eq=False)
class Formula:
    """A parsed formula. ``columns`` holds the referenced column names as written (compare them case-insensitively)."""

    source: str
    root: _Node = field(repr=False)
    columns: frozenset[str] = frozenset()
    _compiled: dict[float, _Fn] = field(default_factory=dict, init=False, repr=False)

    def compile(self, *, random_value: float = 0.5) -> Callable[[Row], object]:
        """Return a fast row -> value function (closures built once; cached per ``random_value``)."""
        fn = self._compiled.get(random_value)
        if fn is None:
            inner = _compile(self.root, random_value)

            def run(row: Row) -> object:
                value = inner(row)
                if type(value) is float:
                    if value != value or value in (math.inf, -math.inf):
                        return None
                    if value == 0.0:
                        return 0.0
                return value

            fn = self._compiled[random_value] = run
        return fn

    def evaluate(self, row: Row, *, random_value: float = 0.5) -> object:
        """Evaluate against one row; see :func:`evaluate`."""
        return self.compile(random_value=random_value)(row)


def _check_source(formula: str) -> None:
    """Cheap checks before tokenizing: the length limit and no lone surrogate in the text itself."""
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            f"Formula is {len(formula)} characters long; at most {MAX_FORMULA_LENGTH} are allowed", position=0
        )
    try:
        formula.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormulaError(
            f"Formula contains a lone UTF-16 surrogate at position {exc.start}; it cannot be stored as text",
            position=exc.start,
        ) from None


def _check_depth(root: _Node) -> None:
    """Refuse trees deeper than MAX_DEPTH, measured with an explicit stack (the later passes recurse)."""
    stack: list[tuple[_Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(
                f"Formula is nested too deeply (more than {MAX_DEPTH} levels of operators and calls, e.g. a chain "
                f"of more than {MAX_DEPTH} terms at position {node.pos}); split it into several custom calculations",
                position=node.pos,
            )
        if isinstance(node, _Unary):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, _Binary):
            stack.extend(((node.left, depth + 1), (node.right, depth + 1)))
        elif isinstance(node, _Call):
            stack.extend((arg, depth + 1) for arg in node.args)


def parse(formula: str) -> Formula:
    """Parse ``formula`` (syntax, function names and arity only). Raises :class:`FormulaError`.

    Parsed formulas are cached by source: every change to a group re-checks all its formulas, and only the new one
    should cost parsing time on the request path.
    """
    if not isinstance(formula, str):
        raise FormulaError("Formula must be a string")
    return _parse(formula)


@functools.lru_cache(maxsize=64)
def _parse(formula: str) -> Formula:
    _check_source(formula)
    try:
        root = _Parser(formula).parse()
    except RecursionError:  # a backstop: the nesting limit stops the parser well before Python's limit
        raise FormulaError("Formula is nested too deeply") from None
    _check_depth(root)
    cols: set[str] = set()
    _collect_columns(root, cols)
    return Formula(formula, root, frozenset(cols))


# --------------------------------------------------------------------------------------------------------------------
# Type inference
# --------------------------------------------------------------------------------------------------------------------


def _what(node: _Node) -> str:
    if isinstance(node, _Col):
        return f"column '{_prefix(node.name)}'"
    if isinstance(node, _Lit):
        return f"{_prefix(node.text)} at position {node.pos}"
    if isinstance(node, _Call):
        return f"{node.name}(...) at position {node.pos}"
    return f"the expression at position {node.pos}"


class _Typer:
    def __init__(self, column_types: Mapping[str, str | None]) -> None:
        self.types: dict[str, _T] = {}
        self.names: list[str] = []
        for name, declared in column_types.items():
            # Tolerate the wider API enum: "Number" is a deprecated alias of Double; anything else is unknown.
            t: object = declared
            self.types[name.casefold()] = "Double" if t == "Number" else declared if t in _PUBLIC_TYPES else None
            self.names.append(name)

    def type_of(self, node: _Node) -> _T:
        if isinstance(node, _Lit):
            v = node.value
            if v is None:
                return _NULL
            if isinstance(v, bool):
                return "Boolean"
            return "String" if isinstance(v, str) else "Double"
        if isinstance(node, _Col):
            key = node.name.casefold()
            if key not in self.types:
                raise self.unknown_column(node)
            return self.types[key]
        if isinstance(node, _Unary):
            return self.unary(node)
        if isinstance(node, _Binary):
            return self.binary(node)
        return self.call(node)

    def unknown_column(self, node: _Col) -> FormulaError:
        msg = f"Column '{_prefix(node.name)}' (position {node.pos}) is not a property of this group"
        folded = {n.casefold(): n for n in self.names}
        close = difflib.get_close_matches(node.name.casefold(), list(folded), n=1, cutoff=0.6)
        if close:
            msg += f"; did you mean '{folded[close[0]]}'?"
        if self.names:
            shown = sorted(self.names, key=str.casefold)
            listed = ", ".join(shown[:50]) + (f", ... ({len(shown) - 50} more)" if len(shown) > 50 else "")
            msg += (" Known" if close else "; known") + f" columns: {listed}"
        else:
            msg += "; the group has no other columns"
        return FormulaError(msg, position=node.pos)

    def unary(self, node: _Unary) -> _T:
        t = self.type_of(node.operand)
        if t == _NULL:
            raise FormulaError(
                f"Operator '{node.op}' at position {node.pos} cannot take null; "
                "null may only be compared with == or !=",
                position=node.pos,
            )
        if node.op == "!":
            return "Boolean"
        if node.op == "-":
            if t == "String":
                raise FormulaError(
                    f"Operator '-' cannot take a String operand ({_what(node.operand)}); convert it with tonumber(...)",
                    position=node.pos,
                )
            return "Double"
        return t

    def binary(self, node: _Binary) -> _T:
        op = node.op
        lt = self.type_of(node.left)
        rt = self.type_of(node.right)
        if op in ("==", "!="):
            return "Boolean"
        for t, side in ((lt, node.left), (rt, node.right)):
            if t == _NULL:
                raise FormulaError(
                    f"Operator '{op}' at position {node.pos} cannot take null ({_what(side)}); "
                    "null may only be compared with == or !=, or handled with ifnull(...)",
                    position=node.pos,
                )
        if op in ("<", "<=", ">", ">=", "&&", "||"):
            return "Boolean"
        if op == "+":
            if lt == "String" or rt == "String":
                return "String"
            if lt is None or rt is None:
                return None
            return "Double"
        for t, side in ((lt, node.left), (rt, node.right)):
            if t == "String":
                raise FormulaError(
                    f"Operator '{op}' cannot take a String operand ({_what(side)}); convert it with tonumber(...)",
                    position=node.pos,
                )
        return "Double"

    def call(self, node: _Call) -> _T:
        spec = _FUNCTIONS[node.name]
        matched: _T = _NULL
        matched_any = False
        for index, arg in enumerate(node.args):
            kind = spec.param(index)
            if kind == "column":
                assert isinstance(arg, _Col)
                self.type_of(arg)
                continue
            t = self.type_of(arg)
            ordinal = index + 1
            if t == _NULL and kind not in ("match?", "str?"):
                raise FormulaError(
                    f"Function '{node.name}' at position {node.pos}: argument {ordinal} cannot be null",
                    position=node.pos,
                )
            if t is None or t == _NULL:
                if kind.startswith("match") and t is None:
                    matched_any = True
                continue
            if kind == "num" and t not in _NUMERIC:
                raise FormulaError(
                    f"Function '{node.name}' at position {node.pos} expects a number for argument {ordinal}, "
                    f"got {t} ({_what(arg)})" + ("; convert it with tonumber(...)" if t == "String" else ""),
                    position=node.pos,
                )
            if kind in ("str", "str?") and t != "String":
                raise FormulaError(
                    f"Function '{node.name}' at position {node.pos} expects a String for argument {ordinal}, "
                    f"got {t} ({_what(arg)}); convert it with tostring(...)",
                    position=node.pos,
                )
            if kind == "bool" and t != "Boolean":
                raise FormulaError(
                    f"Function '{node.name}' at position {node.pos} expects a Boolean condition as argument "
                    f"{ordinal}, got {t} ({_what(arg)}); use a comparison such as x > 0",
                    position=node.pos,
                )
            if kind.startswith("match"):
                if matched == _NULL:
                    matched = t
                elif matched != t:
                    if matched in _NUMERIC and t in _NUMERIC:
                        matched = "Double"
                    else:
                        raise FormulaError(
                            f"Function '{node.name}' at position {node.pos} needs arguments of one type, got "
                            f"{matched} and {t} ({_what(arg)}); convert with tostring(...) or tonumber(...)",
                            position=node.pos,
                        )
        if spec.result != "match":
            return spec.result
        if matched == _NULL and matched_any:
            return None
        return matched


def _public(t: _T) -> DataType:
    if t == "Integer":
        return "Integer"
    if t == "String":
        return "String"
    if t == "Boolean":
        return "Boolean"
    return "Double"


def infer_type(formula: Formula, column_types: Mapping[str, str | None]) -> DataType:
    """Type-check ``formula`` against the group's columns (name -> type; ``None`` = unknown) and return its type.

    Raises :class:`FormulaError` for unknown columns, operand/argument type errors and always-null formulas.
    """
    t = _Typer(column_types).type_of(formula.root)
    if t == _NULL:
        raise FormulaError("Formula always evaluates to null; it must produce a value", position=0)
    return _public(t)


# --------------------------------------------------------------------------------------------------------------------
# Group-level checks
# --------------------------------------------------------------------------------------------------------------------


def _parse_all(formulas: Mapping[str, str]) -> dict[str, Formula]:
    parsed: dict[str, Formula] = {}
    seen: dict[str, str] = {}
    for name, src in formulas.items():
        key = name.casefold()
        if key in seen:
            raise FormulaError(
                f"Custom calculations '{seen[key]}' and '{name}' have the same name (names are case-insensitive)",
                property_name=name,
            )
        seen[key] = name
        try:
            parsed[name] = parse(src)
        except FormulaError as exc:
            raise FormulaError(
                f"Custom calculation '{name}': {exc.message}", position=exc.position, property_name=name
            ) from None
    return parsed


def _order(parsed: Mapping[str, Formula]) -> list[str]:
    by_key = {name.casefold(): name for name in parsed}
    deps: dict[str, list[str]] = {}
    for name, formula in parsed.items():
        refs = sorted({c.casefold() for c in formula.columns} & by_key.keys())
        if name.casefold() in refs:
            raise FormulaError(
                f"Formula refers to itself ('{name}'); a custom calculation cannot use its own value",
                property_name=name,
            )
        deps[name] = [by_key[r] for r in refs]
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = in progress, 2 = done
    for start in parsed:
        if state.get(start) == 2:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(deps[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise FormulaError(
                    f"Cyclic reference: {' -> '.join(cycle)}; "
                    "custom calculations cannot depend on each other in a loop",
                    property_name=cycle[0],
                )
            if state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))
                path.append(nxt)
    return order


def evaluation_order(formulas: Mapping[str, str]) -> list[str]:
    """Topological order of a group's custom calculations (dependencies first, otherwise input order).

    Raises :class:`FormulaError` for syntax errors, self references and cycles.
    """
    return _order(_parse_all(formulas))


def check(formulas: Mapping[str, str], column_types: Mapping[str, str | None]) -> dict[str, DataType]:
    """Validate a group's custom calculations together and return their types in evaluation order.

    ``column_types`` holds the group's other columns (group and calculated properties); custom calculations may
    reference each other, and the inferred type of a referenced calculation feeds the referencing one.
    Raises :class:`FormulaError` (with ``property_name`` set) naming the offending calculation.
    """
    parsed = _parse_all(formulas)
    order = _order(parsed)
    env: dict[str, str | None] = dict(column_types)
    folded_env = {k.casefold(): k for k in env}
    result: dict[str, DataType] = {}
    for name in order:
        existing = folded_env.get(name.casefold())
        if existing is not None and existing != name:
            del env[existing]
        env.setdefault(name, None)
        folded_env[name.casefold()] = name
    for name in order:
        try:
            t = infer_type(parsed[name], env)
        except FormulaError as exc:
            raise FormulaError(
                f"Custom calculation '{name}': {exc.message}", position=exc.position, property_name=name
            ) from None
        env[name] = t
        result[name] = t
    return result


# --------------------------------------------------------------------------------------------------------------------
# JavaScript value semantics
# --------------------------------------------------------------------------------------------------------------------

_JS_WS = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_DEC_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_JS_RADIX_RE = re.compile(r"0(?:[xX][0-9a-fA-F]+|[bB][01]+|[oO][0-7]+)")
_INF = math.inf
_NAN = math.nan


def _str_to_number(s: str) -> float | None:
    t = s.strip(_JS_WS)
    if not t:
        return None
    if _JS_DEC_RE.fullmatch(t):
        return float(t)
    if _JS_RADIX_RE.fullmatch(t):
        try:
            return float(int(t[2:], {"x": 16, "b": 2, "o": 8}[t[1].lower()]))
        except OverflowError:
            return _INF  # as JavaScript's Number("0x" + many digits)
    if t in ("Infinity", "+Infinity"):
        return _INF
    if t == "-Infinity":
        return -_INF
    return None


def _to_number(v: object) -> float | None:
    if type(v) is float:
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        return _str_to_number(v)
    return None


def _number_to_string(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (_INF, -_INF):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    sign = "-" if x < 0 else ""
    tup = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, tup.digits))
    assert isinstance(tup.exponent, int)
    k = len(digits)
    n = tup.exponent + k  # decimal point position
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _to_string(v: object) -> str | None:
    if type(v) is str:
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _number_to_string(v)
    return str(v)


def _truthy(v: object) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v == v and v != 0
    if isinstance(v, str):
        return v != ""
    return True


def _to_boolean(v: object) -> bool | None:
    if v is None:
        return None
    if isinstance(v, str):
        t = v.strip(_JS_WS).lower()
        if t == "true":
            return True
        if t == "false":
            return False
        x = _str_to_number(t)
        return None if x is None else (x == x and x != 0)
    return _truthy(v)


def _loose_equal(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if type(a) is str and type(b) is str:
        return a == b
    x, y = _to_number(a), _to_number(b)
    if x is None or y is None:
        return False
    return x == y


def _js_div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or a != a:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)
    return a / b


def _js_mod(a: float, b: float) -> float:
    if b == 0 or a != a or b != b or a in (_INF, -_INF):
        return _NAN
    if b in (_INF, -_INF):
        return a
    return math.fmod(a, b)


def _is_odd_integer(b: float) -> bool:
    return math.isfinite(b) and b.is_integer() and int(b) % 2 == 1


def _js_pow(a: float, b: float) -> float:
    if b != b:
        return _NAN
    if b == 0:
        return 1.0
    if a != a:
        return _NAN
    if abs(a) == 1 and b in (_INF, -_INF):
        return _NAN
    try:
        return math.pow(a, b)
    except OverflowError:
        return -_INF if a < 0 and _is_odd_integer(b) else _INF
    except ValueError:
        if a == 0:  # 0 ** negative
            return -_INF if math.copysign(1.0, a) < 0 and _is_odd_integer(b) else _INF
        return _NAN  # negative base, fractional exponent


def _js_round(x: float) -> float:
    if not math.isfinite(x):
        return x
    r = math.floor(x)
    return float(r + 1) if x - r >= 0.5 else float(r)


def _to_uint32(x: float) -> int:
    if not math.isfinite(x):
        return 0
    return int(x) % 0x1_0000_0000


def _to_int32(x: float) -> int:
    u = _to_uint32(x)
    return u - 0x1_0000_0000 if u >= 0x8000_0000 else u


def _js_imul(a: float, b: float) -> float:
    r = (_to_int32(a) * _to_int32(b)) & 0xFFFF_FFFF
    return float(r - 0x1_0000_0000 if r >= 0x8000_0000 else r)


def _js_clz32(x: float) -> float:
    return float(32 - _to_uint32(x).bit_length())


def _js_fround(x: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return math.copysign(_INF, x)


def _js_sign(x: float) -> float:
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x  # 0, -0 or NaN


def _integral(f: Callable[[float], int]) -> Callable[[float], float]:
    def g(x: float) -> float:
        return x if not math.isfinite(x) else float(f(x))

    return g


def _log_like(f: Callable[[float], float], pole: float = 0.0) -> Callable[[float], float]:
    def g(x: float) -> float:
        if x == pole:
            return -_INF
        if x < pole or x != x:
            return _NAN
        return f(x)

    return g


def _js_atanh(x: float) -> float:
    if x == 1:
        return _INF
    if x == -1:
        return -_INF
    try:
        return math.atanh(x)
    except ValueError:
        return _NAN


def _safe(f: Callable[[float], float], *, odd: bool = False) -> Callable[[float], float]:
    def g(x: float) -> float:
        try:
            return f(x)
        except ValueError:
            return _NAN
        except OverflowError:
            return math.copysign(_INF, x) if odd else _INF

    return g


_MATH1: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "acos": _safe(math.acos),
    "acosh": _safe(math.acosh),
    "asin": _safe(math.asin),
    "asinh": _safe(math.asinh),
    "atan": math.atan,
    "atanh": _js_atanh,
    "cbrt": math.cbrt,
    "ceil": _integral(math.ceil),
    "clz32": _js_clz32,
    "cos": _safe(math.cos),
    "cosh": _safe(math.cosh),
    "exp": _safe(math.exp),
    "expm1": _safe(math.expm1),
    "floor": _integral(math.floor),
    "fround": _js_fround,
    "log": _log_like(math.log),
    "log1p": _log_like(math.log1p, -1.0),
    "log10": _log_like(math.log10),
    "log2": _log_like(math.log2),
    "round": _js_round,
    "sign": _js_sign,
    "sin": _safe(math.sin),
    "sinh": _safe(math.sinh, odd=True),
    "sqrt": _safe(math.sqrt),
    "tan": _safe(math.tan),
    "tanh": math.tanh,
    "trunc": _integral(math.trunc),
}
_MATH2: dict[str, Callable[[float, float], float]] = {"atan2": math.atan2, "imul": _js_imul, "pow": _js_pow}


def _js_max(xs: Sequence[float]) -> float:
    return _NAN if any(x != x for x in xs) else max(xs)


def _js_min(xs: Sequence[float]) -> float:
    return _NAN if any(x != x for x in xs) else min(xs)


_MATHN: dict[str, Callable[[Sequence[float]], float]] = {
    "hypot": lambda xs: math.hypot(*xs),
    "max": _js_max,
    "min": _js_min,
}


def _to_index(x: float) -> float:
    """JavaScript ToIntegerOrInfinity."""
    if x != x:
        return 0.0
    if x in (_INF, -_INF):
        return x
    return float(math.trunc(x))


def _clamp(x: float, lo: int, hi: int) -> int:
    return int(min(max(x, lo), hi))


def _js_substring(s: str, a: float, b: float | None) -> str:
    n = len(s)
    start = _clamp(_to_index(a), 0, n)
    end = n if b is None else _clamp(_to_index(b), 0, n)
    if start > end:
        start, end = end, start
    return s[start:end]


def _js_charat(s: str, i: float) -> str:
    k = _to_index(i)
    return s[int(k)] if 0 <= k < len(s) else ""


def _js_indexof(s: str, sub: str, pos: float) -> float:
    start = _clamp(_to_index(pos), 0, len(s))
    return float(s.find(sub, start))


def _js_pad(s: str, length: float, pad: str, at_start: bool) -> str | None:
    target = _to_index(length)
    if target <= len(s) or pad == "":
        return s
    if target > _PAD_LIMIT:
        return None
    need = int(target) - len(s)
    fill = (pad * (need // len(pad) + 1))[:need]
    return fill + s if at_start else s + fill


def _cmp(op: str) -> Callable[[object, object], bool]:
    table: dict[str, Callable[[object, object], bool]] = {
        "<": lambda a, b: a < b,  # type: ignore[operator]
        "<=": lambda a, b: a <= b,  # type: ignore[operator]
        ">": lambda a, b: a > b,  # type: ignore[operator]
        ">=": lambda a, b: a >= b,  # type: ignore[operator]
    }
    return table[op]


# --------------------------------------------------------------------------------------------------------------------
# Compiler: AST -> nested closures (built once per formula)
# --------------------------------------------------------------------------------------------------------------------


def _compile(node: _Node, rnd: float) -> _Fn:
    if isinstance(node, _Lit):
        value = node.value
        return lambda row: value
    if isinstance(node, _Col):
        return _compile_column(node.name)
    if isinstance(node, _Unary):
        return _compile_unary(node.op, _compile(node.operand, rnd))
    if isinstance(node, _Binary):
        return _compile_binary(node.op, _compile(node.left, rnd), _compile(node.right, rnd))
    return _compile_call(node, [_compile(a, rnd) for a in node.args], rnd)


def _compile_column(name: str) -> _Fn:
    folded = name.casefold()
    cache = [name]

    def col(row: Row) -> object:
        try:
            return row[cache[0]]
        except KeyError:
            pass
        for key in row:
            if key.casefold() == folded:
                cache[0] = key
                return row[key]
        return None

    return col


def _compile_unary(op: str, f: _Fn) -> _Fn:
    if op == "!":
        return lambda row: not _truthy(f(row))
    if op == "+":
        return f

    def neg(row: Row) -> object:
        v = f(row)
        x = v if type(v) is float else _to_number(v)
        return None if x is None else -x

    return neg


def _arith(f: _Fn, g: _Fn, op: Callable[[float, float], float]) -> _Fn:
    def run(row: Row) -> object:
        a = f(row)
        if a is None:
            return None
        b = g(row)
        if b is None:
            return None
        x = a if type(a) is float else _to_number(a)
        y = b if type(b) is float else _to_number(b)
        if x is None or y is None:
            return None
        return op(x, y)

    return run


def _compile_binary(op: str, f: _Fn, g: _Fn) -> _Fn:
    if op == "*":

        def mul(row: Row) -> object:
            a = f(row)
            if a is None:
                return None
            b = g(row)
            if b is None:
                return None
            if type(a) is float and type(b) is float:
                return a * b
            x, y = _to_number(a), _to_number(b)
            return None if x is None or y is None else x * y

        return mul
    if op == "-":
        return _arith(f, g, lambda x, y: x - y)
    if op == "/":
        return _arith(f, g, _js_div)
    if op == "%":
        return _arith(f, g, _js_mod)
    if op == "**":
        return _arith(f, g, _js_pow)
    if op == "+":

        def add(row: Row) -> object:
            a = f(row)
            if a is None:
                return None
            b = g(row)
            if b is None:
                return None
            if type(a) is float and type(b) is float:
                return a + b
            if type(a) is str or type(b) is str:
                sa, sb = _to_string(a), _to_string(b)
                return None if sa is None or sb is None else sa + sb
            x, y = _to_number(a), _to_number(b)
            return None if x is None or y is None else x + y

        return add
    if op == "==":
        return lambda row: _loose_equal(f(row), g(row))
    if op == "!=":
        return lambda row: not _loose_equal(f(row), g(row))
    if op == "&&":
        return lambda row: _truthy(f(row)) and _truthy(g(row))
    if op == "||":
        return lambda row: _truthy(f(row)) or _truthy(g(row))
    compare = _cmp(op)

    def cmp(row: Row) -> object:
        a = f(row)
        if a is None:
            return None
        b = g(row)
        if b is None:
            return None
        if type(a) is str and type(b) is str:
            return compare(a, b)
        x, y = _to_number(a), _to_number(b)
        if x is None or y is None:
            return False  # JavaScript: comparisons with NaN are false
        return compare(x, y)

    return cmp


def _num_args(fs: Sequence[_Fn], row: Row) -> list[float] | None:
    out: list[float] = []
    for f in fs:
        v = f(row)
        x = v if type(v) is float else _to_number(v)
        if x is None:
            return None
        out.append(x)
    return out


def _compile_call(node: _Call, fs: list[_Fn], rnd: float) -> _Fn:
    name = node.name
    if name in _MATH1:
        m1 = _MATH1[name]
        (f,) = fs

        def math1(row: Row) -> object:
            v = f(row)
            x = v if type(v) is float else _to_number(v)
            return None if x is None else m1(x)

        return math1
    if name in _MATH2:
        m2 = _MATH2[name]
        return _arith(fs[0], fs[1], m2)
    if name in _MATHN:
        mn = _MATHN[name]

        def mathn(row: Row) -> object:
            xs = _num_args(fs, row)
            return None if xs is None else mn(xs)

        return mathn
    if name == "random":
        return lambda row: rnd
    if name == "tonumber":
        (f,) = fs
        return lambda row: _to_number(f(row))
    if name == "tostring":
        (f,) = fs
        return lambda row: _to_string(f(row))
    if name == "toboolean":
        (f,) = fs
        return lambda row: _to_boolean(f(row))
    if name in ("tolowercase", "touppercase", "trim", "trimend", "trimstart"):
        s1: Callable[[str], str] = {
            "tolowercase": str.lower,
            "touppercase": str.upper,
            "trim": lambda s: s.strip(_JS_WS),
            "trimend": lambda s: s.rstrip(_JS_WS),
            "trimstart": lambda s: s.lstrip(_JS_WS),
        }[name]
        (f,) = fs

        def str1(row: Row) -> object:
            s = _to_string(f(row))
            return None if s is None else s1(s)

        return str1
    if name == "concat":

        def concat(row: Row) -> object:
            parts: list[str] = []
            for f in fs:
                s = _to_string(f(row))
                if s is None:
                    return None
                parts.append(s)
            return "".join(parts)

        return concat
    if name in ("charat", "substring", "indexof", "padstart", "padend"):
        return _compile_string_call(name, fs)
    if name == "isin":
        first, rest = fs[0], fs[1:]

        def isin(row: Row) -> object:
            x = first(row)
            return any(_loose_equal(x, g(row)) for g in rest)

        return isin
    if name in ("getpersistenceunit", "getpresentationunits"):
        return lambda row: None
    return _compile_conditional(name, fs)


def _compile_string_call(name: str, fs: list[_Fn]) -> _Fn:
    if name == "charat":
        fs0, fs1 = fs

        def charat(row: Row) -> object:
            s = _to_string(fs0(row))
            i = _to_number(fs1(row))
            return None if s is None or i is None else _js_charat(s, i)

        return charat
    if name == "substring":
        s_f, a_f = fs[0], fs[1]
        b_f = fs[2] if len(fs) > 2 else None

        def substring(row: Row) -> object:
            s = _to_string(s_f(row))
            a = _to_number(a_f(row))
            if s is None or a is None:
                return None
            if b_f is None:
                return _js_substring(s, a, None)
            b = _to_number(b_f(row))
            return None if b is None else _js_substring(s, a, b)

        return substring
    if name == "indexof":
        s_f, sub_f = fs[0], fs[1]
        pos_f = fs[2] if len(fs) > 2 else None

        def indexof(row: Row) -> object:
            s = _to_string(s_f(row))
            sub = _to_string(sub_f(row))
            if s is None or sub is None:
                return None
            pos = 0.0 if pos_f is None else _to_number(pos_f(row))
            return None if pos is None else _js_indexof(s, sub, pos)

        return indexof
    at_start = name == "padstart"
    s_f, n_f = fs[0], fs[1]
    p_f = fs[2] if len(fs) > 2 else None

    def pad(row: Row) -> object:
        s = _to_string(s_f(row))
        n = _to_number(n_f(row))
        p = " " if p_f is None else _to_string(p_f(row))
        if s is None or n is None or p is None:
            return None
        return _js_pad(s, n, p, at_start)

    return pad


def _is_blank(v: object) -> bool:
    return isinstance(v, str) and v.strip(_JS_WS) == ""


_CONDITIONS: dict[str, Callable[[object], bool]] = {
    "ifnull": lambda a: a is None,
    "ifnotnull": lambda a: a is not None,
    "ifempty": lambda a: a == "",
    "ifnotempty": lambda a: a is not None and a != "",
    "ifnullorempty": lambda a: a is None or a == "",
    "ifnotnullorempty": lambda a: a is not None and a != "",
    "ifnullorwhitespace": lambda a: a is None or _is_blank(a),
    "ifnotnullorwhitespace": lambda a: a is not None and not _is_blank(a),
}


def _compile_conditional(name: str, fs: list[_Fn]) -> _Fn:
    if name == "if":
        c, a, b = fs
        return lambda row: a(row) if _truthy(c(row)) else b(row)
    cond = _CONDITIONS[name]
    first, second = fs

    def conditional(row: Row) -> object:
        v = first(row)
        return second(row) if cond(v) else v

    return conditional


def evaluate(formula: Formula, row: Mapping[str, object], *, random_value: float = 0.5) -> object:
    """Evaluate ``formula`` against one row (column lookup is case-insensitive; missing columns are null).

    Returns ``float | int | str | bool | None``; non-finite numbers come back as ``None``. For many rows, call
    :meth:`Formula.compile` once and apply the returned function to each row.
    """
    return formula.compile(random_value=random_value)(row)


# --------------------------------------------------------------------------------------------------------------------
# SQL compiler: the subset of formulas SQLite evaluates exactly as the closures above do (set-based extraction)
# --------------------------------------------------------------------------------------------------------------------

# Kinds of compiled SQL expressions: "raw" a column's own value (float | int | null, never NaN), "lit" a bound finite
# Double, "num" a computed REAL or NULL (where Python would hold NaN, SQLite holds NULL: both end as null), "bool" a
# comparison (1 | 0 | NULL).
_SqlExpr: TypeAlias = tuple[str, str]
_SQL_ARITHMETIC = frozenset({"+", "-", "*"})
_SQL_COMPARISONS = frozenset({"<", "<=", ">", ">="})


def to_sql(
    formula: Formula, column: Callable[[str], str | None], bind: Callable[[object], str]
) -> tuple[str, bool] | None:
    """SQL computing ``formula`` with exactly the values :meth:`Formula.compile` returns, or None when it cannot.

    ``column(name)`` gives the SQL expression of a referenced column whose values are ``float | int | None`` (None:
    that column is not available as such); ``bind(value)`` binds a literal and returns its placeholder (literals are
    bound, never printed, so SQLite never re-parses a decimal). Covered: numeric literals and constants, numeric
    columns, unary ``+``/``-``, ``+ - *``, ``/`` by a non-zero literal, ``< <= > >=`` between columns and literals,
    and ``if`` over those. The answer is ``(sql, boolean)``: ``boolean`` says the SQL yields 1/0/NULL for a Boolean
    result. Everything else (strings, functions, ``%``, ``**``, ``==``, truthiness) stays with the closures.
    """
    compiled = _to_sql(formula.root, column, bind)
    if compiled is None:
        return None
    sql, kind = compiled
    if kind == "bool":
        return sql, True
    # Formula.compile's final step: non-finite floats become null and -0.0 becomes 0.0; ints pass unchanged.
    return (
        f"(CASE WHEN typeof({sql}) = 'real' THEN (CASE WHEN abs({sql}) >= 9e999 THEN NULL WHEN {sql} = 0 THEN 0.0 "
        f"ELSE {sql} END) ELSE {sql} END)",
        False,
    )


def _sql_number(expr: _SqlExpr) -> str | None:
    """The expression as a REAL (what ``_to_number`` does to a number), or None for a Boolean."""
    sql, kind = expr
    if kind == "bool":
        return None
    return f"CAST({sql} AS REAL)" if kind == "raw" else sql


def _to_sql(node: _Node, column: Callable[[str], str | None], bind: Callable[[object], str]) -> _SqlExpr | None:
    if isinstance(node, _Lit):
        value = node.value
        if type(value) is float and math.isfinite(value):
            return bind(value), "lit"
        return None
    if isinstance(node, _Col):
        sql = column(node.name)
        return None if sql is None else (sql, "raw")
    if isinstance(node, _Unary):
        operand = _to_sql(node.operand, column, bind)
        if operand is None or operand[1] == "bool" or node.op == "!":
            return None
        if node.op == "+":
            return operand
        number = _sql_number(operand)
        return None if number is None else (f"(-{number})", "num")
    if isinstance(node, _Binary):
        return _binary_sql(node, column, bind)
    if isinstance(node, _Call) and node.name == "if":
        parts = [_to_sql(arg, column, bind) for arg in node.args]
        if any(p is None for p in parts):
            return None
        (cond, cond_kind), then, other = (p for p in parts if p is not None)
        a, b = _sql_number(then), _sql_number(other)
        if cond_kind != "bool" or a is None or b is None:
            return None
        # The branches keep their own values (an Integer column stays an int), as the closure returns them.
        return f"(CASE WHEN {cond} THEN {then[0]} ELSE {other[0]} END)", "num"
    return None


def _binary_sql(node: _Binary, column: Callable[[str], str | None], bind: Callable[[object], str]) -> _SqlExpr | None:
    left = _to_sql(node.left, column, bind)
    right = _to_sql(node.right, column, bind)
    if left is None or right is None:
        return None
    if node.op in _SQL_COMPARISONS:
        # Only NaN-free operands: Python compares NaN as false where SQLite would hold NULL.
        if left[1] not in ("raw", "lit") or right[1] not in ("raw", "lit"):
            return None
        return f"({_sql_number(left)} {node.op} {_sql_number(right)})", "bool"
    a, b = _sql_number(left), _sql_number(right)
    if a is None or b is None:
        return None
    if node.op in _SQL_ARITHMETIC:
        return f"({a} {node.op} {b})", "num"
    if node.op == "/" and isinstance(node.right, _Lit) and node.right.value != 0:
        return f"({a} / {b})", "num"
    return None
