"""The custom-calculation formula language (engine/formulas.py): parsing, typing, group checks and evaluation."""

from __future__ import annotations

import math
import struct
import time
from typing import Any

import pytest

from itwin_insights_mcp.sandbox.engine.formulas import (
    DataType,
    Formula,
    FormulaError,
    check,
    evaluate,
    evaluation_order,
    infer_type,
    parse,
)

COLUMNS: dict[str, DataType | None] = {
    "Length": "Double",
    "Width": "Double",
    "Count": "Integer",
    "Material": "String",
    "Label": "String",
    "IsExternal": "Boolean",
    "min": "Double",
    "max": "Double",
    "Mystery": None,
}
ROW: dict[str, Any] = {
    "Length": 2.5,
    "Width": 4.0,
    "Count": 3,
    "Material": "Steel",
    "Label": "  beam  ",
    "IsExternal": True,
    "min": 3.0,
    "max": 4.0,
    "Mystery": None,
    "Empty": "",
    "Nothing": None,
}


def ev(formula: str, row: dict[str, Any] | None = None, **kwargs: Any) -> object:
    return evaluate(parse(formula), ROW if row is None else row, **kwargs)


def typ(formula: str, columns: dict[str, DataType | None] | None = None) -> DataType:
    return infer_type(parse(formula), COLUMNS if columns is None else columns)


def err(formula: str, columns: dict[str, DataType | None] | None = None) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        infer_type(parse(formula), COLUMNS if columns is None else columns)
    return info.value


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------------------------------------------------------
# Precedence, associativity, literals
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("10 - 4 - 3", 3.0),
        ("100 / 10 / 5", 2.0),
        ("2 * 3 % 4", 2.0),
        ("7 % 4 * 2", 6.0),
        ("2 ** 3 ** 2", 512.0),
        ("(2 ** 3) ** 2", 64.0),
        ("2 ** 3 * 2", 16.0),
        ("2 * 3 ** 2", 18.0),
        ("-2 ** 2", 4.0),  # unary binds tighter than ** (widget precedence)
        ("-(2 ** 2)", -4.0),
        ("2 ** -1", 0.5),
        ("2 ** -2 ** 2", 16.0),  # 2 ** ((-2) ** 2)
        ("- - 3", 3.0),
        ("+4", 4.0),
        ("1 + 2 < 4", True),
        ("1 < 2 == 2 < 3", True),
        ("1 == 1 && 2 == 3", False),
        ("1 == 2 || 2 == 2 && 3 == 3", True),
        ("!(1 == 1) || 1 == 1", True),
        ("!1 == 0", True),  # (!1) == 0
        ("true && !false", True),
        ("3 > 2 > 1", False),  # (3 > 2) > 1 -> true > 1 -> 1 > 1
    ],
)
def test_precedence_and_associativity(formula: str, expected: object) -> None:
    assert ev(formula) == expected


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("42", 42.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("1e+2", 100.0),
        ("0b101", 5.0),
        ("0B11", 3.0),
        ("0o17", 15.0),
        ("0O7", 7.0),
        ("0x1F", 31.0),
        ("0XfF", 255.0),
        ("TRUE", True),
        ("false", False),
        ('"double"', "double"),
        ("'single'", "single"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'a\tb\nc\\d'", "a\tb\nc\\d"),
        (r"'\x41\u0042\u{1F600}'", "AB\U0001f600"),
        (r"'\q'", "q"),
        ("'it''s'", None),  # two adjacent strings -> syntax error, checked below
    ],
)
def test_literals(formula: str, expected: object) -> None:
    if expected is None:
        with pytest.raises(FormulaError):
            parse(formula)
        return
    result = ev(formula)
    assert result == expected
    assert type(result) is type(expected)


def test_implicit_multiplication() -> None:
    assert ev("2PI") == approx(2 * math.pi)
    assert ev("3 Length") == 7.5
    assert ev("2(3 + 4)") == 14.0
    assert ev("(1 + 2)(3)") == 9.0
    assert ev("-2(3)") == -6.0
    assert ev("2Length ** 2") == 12.5  # implicit * has the precedence of *
    assert parse("2Length").columns == {"Length"}


# ------------------------------------------------------------------------------------------------------------------
# Constants, columns, case-insensitivity
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("E", math.e),
        ("LN2", math.log(2)),
        ("LN10", math.log(10)),
        ("LOG2E", math.log2(math.e)),
        ("LOG10E", math.log10(math.e)),
        ("PI", math.pi),
        ("SQRT1_2", math.sqrt(0.5)),
        ("SQRT2", math.sqrt(2)),
    ],
)
def test_constants(name: str, value: float) -> None:
    for spelling in (name, name.lower(), name.capitalize()):
        formula = parse(spelling)
        assert formula.columns == frozenset()
        assert evaluate(formula, {}) == approx(value)
        assert infer_type(formula, {}) == "Double"


def test_constants_win_over_columns_of_the_same_name() -> None:
    formula = parse("pi * 2")
    assert formula.columns == frozenset()
    assert evaluate(formula, {"pi": 100.0}) == approx(2 * math.pi)


def test_function_names_without_parenthesis_are_columns() -> None:
    formula = parse("min * max")
    assert formula.columns == {"min", "max"}
    assert evaluate(formula, ROW) == 12.0
    assert typ("min * max") == "Double"
    assert ev("max(min, max) + min") == 7.0
    assert parse("if + round").columns == {"if", "round"}


def test_case_insensitive_names() -> None:
    assert ev("SQRT(16) + Abs(-1) + ROUND(2.4)") == 7.0
    assert ev("LENGTH * width") == 10.0
    assert typ("LENGTH * width") == "Double"
    assert ev("toUpperCase(material)") == "STEEL"
    assert ev("IfNull(NOTHING, 'x')") == "x"
    assert ev("Pi") == approx(math.pi)
    assert ev("True || FALSE") is True
    assert ev("NULL == Nothing") is True


def test_columns_are_reported_as_written() -> None:
    formula = parse("Length * width + if(IsExternal, Count, 0) + getpersistenceunit(Area)")
    assert isinstance(formula, Formula)
    assert formula.columns == {"Length", "width", "IsExternal", "Count", "Area"}
    assert formula.source.startswith("Length")


def test_missing_column_in_row_is_null_and_lookup_adapts_to_key_case() -> None:
    formula = parse("length * 2")
    run = formula.compile()
    assert run({"Length": 1.0}) == 2.0
    assert run({"LENGTH": 3.0}) == 6.0  # cached key misses, falls back to a case-insensitive scan
    assert run({"Width": 3.0}) is None


# ------------------------------------------------------------------------------------------------------------------
# Arithmetic semantics (JavaScript)
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),  # sign of the dividend
        ("7 % -3", 1.0),
        ("5.5 % 2", 1.5),
        ("1 / 0", None),  # Infinity -> null in output
        ("-1 / 0", None),
        ("0 / 0", None),
        ("5 % 0", None),
        ("1 / 0 > 1e308", True),  # intermediate Infinity still compares
        ("-1 / 0 < 0", True),
        ("0 / 0 == 0 / 0", False),  # NaN != NaN
        ("(-1) ** 0.5", None),  # NaN
        ("0 ** -1", None),  # Infinity
        ("10 ** 400", None),
        ("1e308 * 10", None),
        ("-0 * 1", 0.0),
        ("true + true", 2.0),
        ("IsExternal * 3", 3.0),
        ("Count * 2", 6.0),
        ("Count + 1", 4.0),
    ],
)
def test_arithmetic(formula: str, expected: object) -> None:
    result = ev(formula)
    assert result == expected
    if expected is not None:
        assert type(result) is type(expected)


def test_negative_zero_is_normalized() -> None:
    result = ev("-0 * 1")
    assert isinstance(result, float)
    assert result == 0.0
    assert math.copysign(1.0, result) == 1.0


def test_string_concatenation() -> None:
    assert ev("'a' + 'b'") == "ab"
    assert ev("Material + ' ' + Length") == "Steel 2.5"
    assert ev("'n=' + 3") == "n=3"
    assert ev("'x' + true") == "xtrue"
    assert ev("1 + 2 + 'a'") == "3a"  # left-to-right
    assert ev("'a' + 1 + 2") == "a12"
    assert ev("'v' + 0.1 * 3") == "v0.30000000000000004"
    assert ev("'big' + 1e21") == "big1e+21"
    assert ev("'small' + 0.0000001") == "small1e-7"


def test_comparisons() -> None:
    assert ev("Length < Width") is True
    assert ev("Length >= 2.5") is True
    assert ev("Length > 2.5") is False
    assert ev("Width <= 3.99") is False
    assert ev("'apple' < 'banana'") is True
    assert ev("'B' < 'a'") is True  # code-unit order
    assert ev("Material == 'Steel'") is True
    assert ev("Material != 'steel'") is True  # string equality is case-sensitive
    assert ev("Count == 3") is True
    assert ev("IsExternal == 1") is True  # loose equality like JavaScript
    assert ev("'3' == 3", {}) is True


# ------------------------------------------------------------------------------------------------------------------
# Null rules
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "formula",
    [
        "Nothing + 1",
        "1 - Nothing",
        "Nothing * 2",
        "Nothing / 2",
        "Nothing % 2",
        "Nothing ** 2",
        "-Nothing",
        "Nothing < 1",
        "Nothing >= 1",
        "'a' + Nothing",
        "sqrt(Nothing)",
        "max(1, Nothing)",
        "pow(Nothing, 2)",
        "touppercase(Nothing)",
        "concat('a', Nothing)",
        "substring('abc', Nothing)",
        "padstart('a', 3, Nothing)",
        "tostring(Nothing)",
        "tonumber(Nothing)",
        "toboolean(Nothing)",
        "charat(Nothing, 0)",
        "indexof('abc', Nothing)",
    ],
)
def test_null_operands_yield_null(formula: str) -> None:
    assert ev(formula) is None


def test_null_equality_and_logic() -> None:
    assert ev("Nothing == null") is True
    assert ev("Nothing != null") is False
    assert ev("Length == null") is False
    assert ev("null == null") is True
    assert ev("Nothing == Mystery") is True
    assert ev("Nothing == 0") is False
    assert ev("Nothing && true") is False  # null is falsy
    assert ev("Nothing || true") is True
    assert ev("!Nothing") is True
    assert ev("isin(Nothing, 1, Mystery)") is True


def test_null_literal_typing() -> None:
    assert typ("Length == null") == "Boolean"
    assert typ("null != Material") == "Boolean"
    assert typ("if(Length > 1, Length, null)") == "Double"
    assert typ("ifnull(null, 'x')") == "String"
    for formula in ("null + 1", "1 * null", "-null", "!null", "null < 1", "null && true", "abs(null)", "isin(null, 1)"):
        assert "null" in str(err(formula)), formula
    assert "always evaluates to null" in str(err("null"))
    assert "always evaluates to null" in str(err("if(true, null, null)"))


# ------------------------------------------------------------------------------------------------------------------
# Numeric functions
# ------------------------------------------------------------------------------------------------------------------


def _fround(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("abs(-3.5)", 3.5),
        ("acos(0.5)", math.acos(0.5)),
        ("acosh(2)", math.acosh(2)),
        ("asin(0.5)", math.asin(0.5)),
        ("asinh(1)", math.asinh(1)),
        ("atan(1)", math.pi / 4),
        ("atanh(0.5)", math.atanh(0.5)),
        ("atan2(1, 1)", math.pi / 4),
        ("atan2(1, -1)", 3 * math.pi / 4),
        ("cbrt(27)", 3.0),
        ("cbrt(-8)", -2.0),
        ("ceil(1.2)", 2.0),
        ("ceil(-1.2)", -1.0),
        ("clz32(1)", 31.0),
        ("clz32(0)", 32.0),
        ("clz32(-1)", 0.0),
        ("clz32(0x80000000)", 0.0),
        ("clz32(1000)", 22.0),
        ("cos(0)", 1.0),
        ("cos(PI)", -1.0),
        ("cosh(1)", math.cosh(1)),
        ("exp(1)", math.e),
        ("expm1(1e-10)", math.expm1(1e-10)),
        ("floor(1.8)", 1.0),
        ("floor(-1.2)", -2.0),
        ("fround(5.5)", 5.5),
        ("fround(5.05)", _fround(5.05)),
        ("fround(2 ** 130)", None),  # float32 overflow -> Infinity -> null
        ("hypot(3, 4)", 5.0),
        ("hypot(3, 4, 12)", 13.0),
        ("imul(3, 4)", 12.0),
        ("imul(0xffffffff, 5)", -5.0),
        ("imul(0x7fffffff, 2)", -2.0),
        ("log(E)", 1.0),
        ("log(1)", 0.0),
        ("log1p(E - 1)", 1.0),
        ("log10(1000)", 3.0),
        ("log2(8)", 3.0),
        ("max(1, 5, 3)", 5.0),
        ("max(-1, -5)", -1.0),
        ("min(1, 5, -3)", -3.0),
        ("pow(2, 10)", 1024.0),
        ("pow(4, 0.5)", 2.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -2.0),
        ("round(2.4)", 2.0),
        ("round(-2.6)", -3.0),
        ("round(0.49999999999999994)", 0.0),
        ("sign(-3)", -1.0),
        ("sign(3)", 1.0),
        ("sign(0)", 0.0),
        ("sin(PI / 2)", 1.0),
        ("sinh(1)", math.sinh(1)),
        ("sqrt(16)", 4.0),
        ("tan(PI / 4)", math.tan(math.pi / 4)),
        ("tanh(1)", math.tanh(1)),
        ("trunc(4.7)", 4.0),
        ("trunc(-4.7)", -4.0),
    ],
)
def test_numeric_functions(formula: str, expected: float | None) -> None:
    result = ev(formula)
    if expected is None:
        assert result is None
    else:
        assert result == approx(expected)
        assert type(result) is float
    assert typ(formula) == "Double"


@pytest.mark.parametrize(
    "formula",
    [
        "sqrt(-1)",
        "acos(2)",
        "asin(-2)",
        "acosh(0.5)",
        "atanh(2)",
        "log(-1)",
        "log(0)",  # -Infinity
        "log10(0)",
        "log2(-1)",
        "log1p(-1)",
        "log1p(-2)",
        "atanh(1)",
        "exp(1000)",
        "cosh(1000)",
        "sinh(-1000)",
        "pow(-8, 1 / 3)",
        "pow(1, 1 / 0)",  # JavaScript: 1 ** Infinity is NaN
        "max(1, 0 / 0)",
        "min(0 / 0, 1)",
        "sin(1 / 0)",
    ],
)
def test_numeric_domain_errors_give_null(formula: str) -> None:
    assert ev(formula) is None


def test_non_finite_intermediates_follow_javascript() -> None:
    assert ev("log(0) < 0") is True
    assert ev("exp(1000) > 0") is True
    assert ev("sinh(-1000) < 0") is True
    assert ev("atan(1 / 0)") == approx(math.pi / 2)
    assert ev("hypot(1 / 0, 0 / 0) > 0") is True  # Infinity wins over NaN
    assert ev("pow(0 / 0, 0)") == 1.0
    assert ev("floor(1 / 0) > 0") is True
    assert ev("tostring(1 / 0)") == "Infinity"
    assert ev("tostring(-1 / 0)") == "-Infinity"
    assert ev("tostring(0 / 0)") == "NaN"


def test_random_is_constant_per_call_and_supplied_by_caller() -> None:
    formula = parse("random() * 10")
    assert evaluate(formula, {}) == 5.0
    assert evaluate(formula, {}, random_value=0.25) == 2.5
    run = formula.compile(random_value=0.1)
    assert run({}) == run({"x": 1}) == 1.0
    assert typ("random()") == "Double"


def test_tonumber() -> None:
    assert ev("tonumber('12.5')") == 12.5
    assert ev("tonumber(' 42 ')") == 42.0
    assert ev("tonumber('0x1F')") == 31.0
    assert ev("tonumber('0b11')") == 3.0
    assert ev("tonumber('1e3')") == 1000.0
    assert ev("tonumber('-.5')") == -0.5
    assert ev("tonumber(true)") == 1.0
    assert ev("tonumber(false)") == 0.0
    assert ev("tonumber(Count)") == 3.0
    assert ev("tonumber('abc')") is None
    assert ev("tonumber('')") is None
    assert ev("tonumber('12px')") is None
    assert ev("tonumber('Infinity')") is None  # valid, but non-finite results become null
    assert ev("tonumber('Infinity') > 1") is True
    assert typ("tonumber(Material)") == "Double"
    assert typ("tonumber(IsExternal)") == "Double"


# ------------------------------------------------------------------------------------------------------------------
# String functions
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("charat('abc', 1)", "b"),
        ("charat('abc', 1.9)", "b"),
        ("charat('abc', 3)", ""),
        ("charat('abc', -1)", ""),
        ("concat('a', 'b')", "ab"),
        ("concat(Material, '-', Label, '!')", "Steel-  beam  !"),
        ("padend('abc', 6)", "abc   "),
        ("padend('abc', 10, '123')", "abc1231231"),
        ("padend('abc', 2, 'x')", "abc"),
        ("padend('abc', 6, '')", "abc"),
        ("padstart('5', 3, '0')", "005"),
        ("padstart('abc', 8, 'de')", "dededabc"),
        ("padstart('abc', 4)", " abc"),
        ("substring('Mozilla', 1, 3)", "oz"),
        ("substring('Mozilla', 3, 1)", "oz"),  # swapped bounds
        ("substring('Mozilla', 2)", "zilla"),
        ("substring('Mozilla', -5, 2)", "Mo"),  # negative clamps to 0
        ("substring('Mozilla', 4, 100)", "lla"),
        ("substring('Mozilla', 0 / 0, 2)", "Mo"),  # NaN -> 0
        ("substring('Mozilla', 7)", ""),
        ("tolowercase('ABC Def')", "abc def"),
        ("touppercase('straße')", "STRASSE"),
        ("trim(Label)", "beam"),
        ("trimend(Label)", "  beam"),
        ("trimstart(Label)", "beam  "),
        ("trim('\u00a0\tx\ufeff\n')", "x"),
        ("tostring(3)", "3"),
        ("tostring(2.5)", "2.5"),
        ("tostring(Count)", "3"),
        ("tostring(1 / 3)", "0.3333333333333333"),
        ("tostring(123456789012)", "123456789012"),
        ("tostring(1e21)", "1e+21"),
        ("tostring(1.5e-7)", "1.5e-7"),
        ("tostring(0.000001)", "0.000001"),
        ("tostring(-0)", "0"),
        ("tostring(true)", "true"),
        ("tostring(Material)", "Steel"),
    ],
)
def test_string_functions(formula: str, expected: str) -> None:
    assert ev(formula) == expected
    assert typ(formula) == "String"


def test_padding_above_the_limit_is_null() -> None:
    assert ev("padend('a', 100000)") is None


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("indexof('abcabc', 'c')", 2.0),
        ("indexof('abcabc', 'c', 3)", 5.0),
        ("indexof('abcabc', 'x')", -1.0),
        ("indexof('abc', '')", 0.0),
        ("indexof('abc', '', 10)", 3.0),  # start clamps to the length
        ("indexof('abc', 'a', -5)", 0.0),
        ("indexof(Material, 'ee')", 2.0),
    ],
)
def test_indexof(formula: str, expected: float) -> None:
    assert ev(formula) == expected
    assert typ(formula) == "Double"


# ------------------------------------------------------------------------------------------------------------------
# Conditional and boolean functions
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("if(Length > 2, 'long', 'short')", "long"),
        ("if(Length > 3, 'long', 'short')", "short"),
        ("if(Nothing > 3, 1, 2)", 2.0),  # null condition is falsy
        ("if(true, 1, 1 / 0)", 1.0),  # branches are lazy
        ("if(IsExternal, Count, 0)", 3),
        ("ifnull(Nothing, 'fallback')", "fallback"),
        ("ifnull(Material, 'fallback')", "Steel"),
        ("ifnull(Empty, 'fallback')", ""),
        ("ifnotnull(Material, 'has material')", "has material"),
        ("ifnotnull(Nothing, 'has material')", None),
        ("ifempty(Empty, 'was empty')", "was empty"),
        ("ifempty(Material, 'was empty')", "Steel"),
        ("ifempty(Nothing, 'was empty')", None),
        ("ifnotempty(Material, 'not empty')", "not empty"),
        ("ifnotempty(Empty, 'not empty')", ""),
        ("ifnotempty(Nothing, 'not empty')", None),
        ("ifnullorempty(Nothing, 'x')", "x"),
        ("ifnullorempty(Empty, 'x')", "x"),
        ("ifnullorempty(Label, 'x')", "  beam  "),
        ("ifnotnullorempty(Label, 'x')", "x"),
        ("ifnotnullorempty(Empty, 'x')", ""),
        ("ifnotnullorempty(Nothing, 'x')", None),
        ("ifnullorwhitespace('  \t', 'x')", "x"),
        ("ifnullorwhitespace(Nothing, 'x')", "x"),
        ("ifnullorwhitespace(Label, 'x')", "  beam  "),
        ("ifnotnullorwhitespace(Label, 'x')", "x"),
        ("ifnotnullorwhitespace('   ', 'x')", "   "),
        ("ifnotnullorwhitespace(Nothing, 'x')", None),
    ],
)
def test_conditionals(formula: str, expected: object) -> None:
    result = ev(formula)
    assert result == expected
    if expected is not None:
        assert type(result) is type(expected)


def test_conditional_types() -> None:
    assert typ("if(Length > 2, 'long', 'short')") == "String"
    assert typ("if(IsExternal, Count, Count)") == "Integer"
    assert typ("if(IsExternal, Count, 1)") == "Double"  # Integer and Double mix to Double
    assert typ("if(IsExternal, true, false)") == "Boolean"
    assert typ("ifnull(Count, 0)") == "Double"
    assert typ("ifnull(Count, Count)") == "Integer"
    assert typ("ifnotnull(Material, 'x')") == "String"
    assert typ("ifnull(Mystery, 'x')") == "String"
    assert typ("if(Mystery, 1, 2)") == "Double"  # unknown condition is accepted
    for name in ("ifempty", "ifnotempty", "ifnullorempty", "ifnotnullorempty", "ifnullorwhitespace"):
        assert typ(f"{name}(Material, 'x')") == "String"
    assert "one type" in str(err("if(IsExternal, 1, 'a')"))
    assert "one type" in str(err("ifnull(Material, 0)"))
    assert "Boolean condition" in str(err("if(Length, 1, 2)"))
    assert "expects a String" in str(err("ifempty(Length, 'x')"))
    assert "cannot be null" in str(err("ifempty(null, 'x')"))
    assert typ("ifnullorempty(null, 'x')") == "String"


def test_isin_and_toboolean() -> None:
    assert ev("isin(Material, 'Wood', 'Steel')") is True
    assert ev("isin(Material, 'Wood', 'steel')") is False
    assert ev("isin(Count, 1, 2, 3)") is True
    assert ev("isin(Length, 1, 2)") is False
    assert typ("isin(Material, 'Wood', 'Steel')") == "Boolean"
    assert typ("isin(Count, 1.5, Length)") == "Boolean"
    assert "one type" in str(err("isin(Material, 1)"))
    assert ev("toboolean('true')") is True
    assert ev("toboolean(' FALSE ')") is False
    assert ev("toboolean('1')") is True
    assert ev("toboolean('0')") is False
    assert ev("toboolean('yes')") is None
    assert ev("toboolean(0)") is False
    assert ev("toboolean(2.5)") is True
    assert ev("toboolean(0 / 0)") is False
    assert ev("toboolean(IsExternal)") is True
    assert typ("toboolean(Material)") == "Boolean"


def test_unit_functions() -> None:
    assert ev("getpersistenceunit(Length)") is None
    assert ev("getpresentationunits(length)") is None
    assert typ("getpersistenceunit(Length)") == "String"
    assert typ("GetPresentationUnits(Width)") == "String"
    with pytest.raises(FormulaError, match="expects a column name"):
        parse("getpersistenceunit(2 * Length)")
    assert "Lenght" in str(err("getpersistenceunit(Lenght)"))


# ------------------------------------------------------------------------------------------------------------------
# Type inference
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Length", "Double"),
        ("Count", "Integer"),
        ("+Count", "Integer"),
        ("-Count", "Double"),
        ("Count + Count", "Double"),  # arithmetic is always Double
        ("Count * 2", "Double"),
        ("1", "Double"),
        ("Material", "String"),
        ("IsExternal", "Boolean"),
        ("Material + Length", "String"),
        ("Length + Material", "String"),
        ("'a' + 'b'", "String"),
        ("IsExternal + 1", "Double"),
        ("Length < Width", "Boolean"),
        ("Material == 'x'", "Boolean"),
        ("Material < 'x'", "Boolean"),
        ("!Length", "Boolean"),
        ("Length && Material", "Boolean"),
        ("Length || 0", "Boolean"),
        ("tostring(Length)", "String"),
        ("tonumber(Material)", "Double"),
        ("Mystery", "Double"),  # unknown type resolves to Double
        ("Mystery + Material", "String"),
        ("Mystery * Material", None),  # String operand is still rejected
        ("Mystery * 2", "Double"),
        ("sqrt(Mystery)", "Double"),
        ("trim(Mystery)", "String"),
    ],
)
def test_infer_type(formula: str, expected: DataType | None) -> None:
    if expected is None:
        err(formula)
    else:
        assert typ(formula) == expected


@pytest.mark.parametrize("op", ["*", "/", "%", "**", "-"])
def test_string_operands_are_rejected(op: str) -> None:
    error = err(f"Length {op} Material")
    assert str(error).startswith(f"Operator '{op}' cannot take a String operand (column 'Material')")
    assert "tonumber" in str(error)
    assert error.position == 7
    assert "cannot take a String operand ('x' at position" in str(err(f"'x' {op} 2"))


def test_unary_minus_rejects_strings() -> None:
    assert "Operator '-' cannot take a String operand (column 'Material')" in str(err("-Material"))


def test_function_argument_types() -> None:
    assert "expects a number for argument 1, got String" in str(err("sqrt(Material)"))
    assert "expects a number for argument 1, got Boolean" in str(err("abs(IsExternal)"))
    assert "expects a number for argument 2" in str(err("charat('abc', '1')"))
    assert "expects a String for argument 1, got Double" in str(err("trim(Length)"))
    assert "tostring" in str(err("concat(Material, Length)"))
    assert typ("sqrt(Count)") == "Double"


def test_wider_type_enum_is_tolerated() -> None:
    columns: Any = {"Old": "Number", "Odd": "Undefined"}
    assert infer_type(parse("sqrt(Old)"), columns) == "Double"
    assert infer_type(parse("Old"), columns) == "Double"
    assert infer_type(parse("trim(Odd)"), columns) == "String"


def test_unknown_column() -> None:
    error = err("Lenght * 2", {"Length": "Double", "Width": "Double"})
    assert str(error) == (
        "Column 'Lenght' (position 0) is not a property of this group; did you mean 'Length'? "
        "Known columns: Length, Width"
    )
    assert error.position == 0
    assert str(err("Zzz", {"Length": "Double"})) == (
        "Column 'Zzz' (position 0) is not a property of this group; known columns: Length"
    )
    assert "has no other columns" in str(err("a", {}))


# ------------------------------------------------------------------------------------------------------------------
# Syntax errors
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "message", "position"),
    [
        ("", "Formula is empty", 0),
        ("   ", "Formula is empty", 0),
        ("2 +", "Unexpected end of formula at position 3", 3),
        ("* 2", "Unexpected '*' at position 0", 0),
        ("(1 + 2", "Missing ')' to close the '(' at position 0", 0),
        ("1 + 2)", "Unexpected ')' at position 5; it has no matching '('", 5),
        ("sqrt(4", "Missing ')' to close the call of 'sqrt'", 4),
        ("max(1,)", "Unexpected ')' at position 6", 6),
        ("max(1 2)", "expected ',' or ')' in the call of 'max'", 6),
        ("1 2", "Missing operator between '1' and '2' at position 2", 2),
        ("Length Width", "Missing operator between 'Length' and 'Width'", 7),
        ("a = 1", "use '==' to compare", 2),
        ("a === 1", "Unsupported operator '===' at position 2", 2),
        ("2 ^ 3", "use '**' for exponentiation", 2),
        ("a & b", "use '&&'", 2),
        ("a | b", "use '||'", 2),
        ("a ? 1 : 2", "use if(condition, a, b)", 2),
        ("'abc", "Unterminated string starting at position 0", 0),
        ('"abc', "Unterminated string starting at position 0", 0),
        ("1 + 'abc\\'", "Unterminated string starting at position 4", 4),
        ("'\\x4'", "Invalid escape", 1),
        ("1..2", "Malformed number", 0),
        ("0x1G", "Malformed number", 0),
        ("0b102", "Malformed number", 0),
        ("0x", "Malformed number", 0),
        ("a, b", "Unexpected ',' at position 1", 1),
        ("#", "Unexpected character '#' at position 0", 0),
    ],
)
def test_syntax_errors(formula: str, message: str, position: int) -> None:
    with pytest.raises(FormulaError) as info:
        parse(formula)
    assert message in str(info.value)
    assert info.value.position == position
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("sqr(2)", "Unknown function 'sqr' at position 0; did you mean 'sqrt'?"),
        ("1 + Sqr(2)", "Unknown function 'Sqr' at position 4; did you mean 'sqrt'?"),
        ("tolower('A')", "did you mean 'tolowercase'?"),
        ("zzzzzz(1)", "supported functions: abs, acos"),
        ("Length(2)", "Unknown function 'Length'"),
        ("pi(2)", "Unknown function 'pi'"),
    ],
)
def test_unknown_function(formula: str, message: str) -> None:
    with pytest.raises(FormulaError, match="Unknown function") as info:
        parse(formula)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("pow(2)", "Function 'pow' at position 0 takes exactly 2 arguments, got 1"),
        ("sqrt()", "Function 'sqrt' at position 0 takes exactly 1 argument, got 0"),
        ("sqrt(1, 2)", "takes exactly 1 argument, got 2"),
        ("max(1)", "Function 'max' at position 0 takes at least 2 arguments, got 1"),
        ("min()", "takes at least 2 arguments, got 0"),
        ("hypot(3)", "takes at least 2 arguments"),
        ("concat('a')", "takes at least 2 arguments"),
        ("random(1)", "Function 'random' at position 0 takes no arguments, got 1"),
        ("padend('a')", "takes 2 or 3 arguments, got 1"),
        ("substring('a', 1, 2, 3)", "takes 2 or 3 arguments, got 4"),
        ("if(true, 1)", "takes exactly 3 arguments, got 2"),
        ("ifnull(1)", "takes exactly 2 arguments, got 1"),
        ("isin(1)", "takes at least 2 arguments, got 1"),
        ("tostring()", "takes exactly 1 argument, got 0"),
        ("getpersistenceunit()", "takes exactly 1 argument, got 0"),
    ],
)
def test_wrong_arity(formula: str, message: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse(formula)
    assert message in str(info.value)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(FormulaError, match="nested too deeply"):
        parse("(" * 1000 + "1" + ")" * 1000)
    assert ev("(" * 50 + "1" + ")" * 50) == 1.0


# ------------------------------------------------------------------------------------------------------------------
# Group-level checks
# ------------------------------------------------------------------------------------------------------------------


def test_check_infers_types_in_dependency_order() -> None:
    formulas = {
        "Label2": "tostring(Area) + ' ' + Material",
        "Area": "Length * Width",
        "Big": "Area > 10",
        "Doubled": "area * 2",
    }
    result = check(formulas, {"Length": "Double", "Width": "Double", "Material": "String"})
    assert result == {"Area": "Double", "Label2": "String", "Big": "Boolean", "Doubled": "Double"}
    assert list(result) == ["Area", "Label2", "Big", "Doubled"]


def test_check_feeds_referenced_types_forward() -> None:
    assert check({"B": "A + 1", "A": "'x' + Material"}, {"Material": "String"}) == {"A": "String", "B": "String"}
    assert check({"B": "A + 1", "A": "Count"}, {"Count": "Integer"}) == {"A": "Integer", "B": "Double"}
    with pytest.raises(FormulaError) as info:
        check({"B": "A * 2", "A": "'x' + Material"}, {"Material": "String"})
    assert info.value.property_name == "B"
    assert str(info.value).startswith("Custom calculation 'B': Operator '*' cannot take a String operand (column 'A')")


def test_check_self_reference() -> None:
    with pytest.raises(FormulaError) as info:
        check({"Area": "area * 2"}, {"Length": "Double"})
    assert str(info.value).startswith("Formula refers to itself ('Area')")
    assert info.value.property_name == "Area"


def test_check_cycles() -> None:
    with pytest.raises(FormulaError) as info:
        check({"A": "B + 1", "B": "A + 1"}, {})
    assert str(info.value).startswith("Cyclic reference: A -> B -> A")
    assert info.value.property_name == "A"
    with pytest.raises(FormulaError, match=r"Cyclic reference: B -> C -> D -> B"):
        check({"A": "B", "B": "C * 2", "C": "D + Length", "D": "if(b > 1, 1, 2)"}, {"Length": "Double"})


def test_check_reports_syntax_and_unknown_columns_by_property() -> None:
    with pytest.raises(FormulaError) as info:
        check({"Ok": "Length", "Bad": "Length +"}, {"Length": "Double"})
    assert info.value.property_name == "Bad"
    assert str(info.value).startswith("Custom calculation 'Bad': Unexpected end of formula at position 8")
    assert info.value.position == 8
    with pytest.raises(FormulaError) as info:
        check({"Bad": "Lenght * 2"}, {"Length": "Double"})
    assert "Custom calculation 'Bad': Column 'Lenght'" in str(info.value)


def test_check_rejects_case_insensitive_duplicate_names() -> None:
    with pytest.raises(FormulaError, match="same name"):
        check({"Area": "1", "AREA": "2"}, {})


def test_check_custom_calculation_overrides_stale_column_type() -> None:
    assert check({"Calc": "'x'", "Other": "calc + 1"}, {"CALC": "Double"}) == {"Calc": "String", "Other": "String"}


def test_evaluation_order() -> None:
    assert evaluation_order({"A": "1", "B": "2"}) == ["A", "B"]
    assert evaluation_order({"C": "B + A", "B": "A * 2", "A": "Length"}) == ["A", "B", "C"]
    assert evaluation_order({"Total": "x + y", "x": "1", "y": "X + 1"}) == ["x", "y", "Total"]
    with pytest.raises(FormulaError, match="Cyclic reference"):
        evaluation_order({"A": "B", "B": "A"})
    with pytest.raises(FormulaError, match="refers to itself"):
        evaluation_order({"A": "a + 1"})


def test_evaluating_a_group_in_order() -> None:
    formulas = {"Perimeter": "2 * (Length + Width)", "Ratio": "Perimeter / Area", "Area": "Length * Width"}
    row: dict[str, object] = {"Length": 2.0, "Width": 3.0}
    for name in evaluation_order(formulas):
        row[name] = evaluate(parse(formulas[name]), row)
    assert row == {"Length": 2.0, "Width": 3.0, "Perimeter": 10.0, "Area": 6.0, "Ratio": 10.0 / 6.0}


# ------------------------------------------------------------------------------------------------------------------
# Performance
# ------------------------------------------------------------------------------------------------------------------


def test_compiled_evaluation_is_fast() -> None:
    run = parse("if(Length > 1, Length * Width + sqrt(Width), 0) + 1").compile()
    rows = [{"Length": float(i % 7), "Width": float(i % 5)} for i in range(100_000)]
    start = time.perf_counter()
    total = 0.0
    for row in rows:
        value = run(row)
        assert isinstance(value, float)
        total += value
    elapsed = time.perf_counter() - start
    assert total > 0
    assert elapsed < 2.0  # ~1M rows in well under 20 s even on a slow CI machine
