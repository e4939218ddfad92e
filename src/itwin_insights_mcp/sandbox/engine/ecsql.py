"""Translate the ECSQL subset of Insights group queries into SQLite over the sandbox ``im_*`` tables.

``translate(query, imodel_id, conn)`` parses a group query with sqlglot (SQLite dialect, after a
token-level pre-pass for the ECSQL-only syntax ``ECClassId IS (...)``, ``FROM ONLY`` and
``Schema:Class``), resolves classes and properties against ``im_classes`` /
``im_class_properties`` and returns a parameterised SQLite ``SELECT`` (``TranslatedQuery``).

Result columns of ``TranslatedQuery.sql``, in order:

1. ``ECInstanceId`` -- the element id (INTEGER). For aspect queries it is the expression the
   query aliases as ``ECInstanceId`` (``A.Element.Id ECInstanceId``).
2. ``ECClassId`` -- the class id (INTEGER) of *that element*, even in aspect queries: a selected
   column named ``ECClassId`` (``A.ECClassId``) yields the element's class, not the aspect's,
   because property mapping checks classes against the element. Alias it otherwise
   (``A.ECClassId AspectClass``).
3. one column per other selected expression, named as ``TranslatedQuery.columns`` names it.

``columns`` lists the selected columns in query order, including ``ECInstanceId`` /
``ECClassId`` only where the query selected them (``sql_columns`` gives the SQL result names).
``SELECT *`` selects ``ECInstanceId, ECClassId, CodeValue, UserLabel, Category, Model, Parent``
(navigation values are the target ids). Row order is unspecified unless the query has ORDER BY.

Supported subset:

* ``SELECT [DISTINCT] *`` / ``alias.*`` (element classes) or a list of expressions with
  ``AS alias`` or bare aliases;
* ``FROM schema.Class [alias]`` (polymorphic: the class and all its subclasses) or
  ``FROM ONLY schema.Class``; schema name or alias, ``.`` or ``:``; names case-insensitive;
* ``[INNER|LEFT] JOIN schema.Class alias ON ...`` (e.g. an element with its aspects);
* ``WHERE`` / ``ON`` with ``= <> != < <= > >=``, ``[NOT] LIKE [ESCAPE]``, ``[NOT] IN (values)``,
  ``[NOT] BETWEEN``, ``IS [NOT] NULL``, ``AND OR NOT``, parentheses, ``+ - * / %``, ``||``,
  ``CASE``, ``CAST`` and the functions LOWER UPPER ABS ROUND COALESCE IFNULL NULLIF LENGTH TRIM
  SUBSTR INSTR REPLACE;
* ``ECClassId IS ([ONLY] schema.Class, ...)`` and ``ECClassId IS NOT (...)``;
* ``ECInstanceId``, ``ECClassId``, ``CodeValue``, ``UserLabel``, navigation properties
  (``Category``, ``Model``, ``Parent``, an aspect's ``Element``) as ids or ``.Id``, navigation
  member access (``Category.CodeValue``, ``Parent.UserLabel``: the target element is joined),
  domain properties declared on the class or its bases (``Material``, ``Thickness``), and
  ``JsonProperties[.member...]``;
* Id64 literals: ``0x20000000001``, ``'0x20000000001'`` (when compared with an id), integers;
* ``ORDER BY``, ``LIMIT n [OFFSET m]``;
* v1 bare class names (``bis.Element``, ``BisCore:PhysicalElement``, ``bldg.Wall``): all
  elements of the class and its subclasses; a bare aspect class selects the elements that
  have such an aspect.

As in ECSQL, a polymorphic class only exposes the properties it declares or inherits (query
``bldg.BuildingElement`` for ``Material``, ``bis.GeometricElement3d`` for ``Category``), and an
aspect's ``Element`` is declared on ``bis.ElementUniqueAspect`` / ``bis.ElementMultiAspect``.

Rejected with ``QueryTranslationError`` (a message that says what to change): anything that is
not one SELECT (UNION, WITH, several statements), GROUP BY, HAVING, WINDOW / OVER, subqueries,
aggregate and other functions, comma/CROSS/RIGHT/FULL joins and ``JOIN ... USING``, unknown
schemas, classes and properties, unqualified class names, ambiguous unqualified properties in
joins, a select list without ``ECInstanceId`` (or ``*``), aspect queries that do not select
``<alias>.Element.Id ECInstanceId``, duplicate result column names, versioned class names
(``schema.01.00.00:item``) and text that is not ECSQL.

Every literal of the query is bound as a numbered parameter (``?N``); the iModel id is ``?1``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import SqlglotError
from sqlglot.generators.sqlite import SQLiteGenerator
from sqlglot.tokenizer_core import Token, TokenType

from ..imodels.schema import ELEMENT_COLUMN_PROPERTIES, parse_id64

__all__ = ["QueryTranslationError", "TranslatedQuery", "translate"]


class QueryTranslationError(ValueError):
    """The group query is not valid ECSQL of the supported subset; the message says how to fix it."""


@dataclass(frozen=True)
class TranslatedQuery:
    """A SQLite SELECT: ``ECInstanceId``, ``ECClassId`` (element's), then the other selected columns."""

    sql: str
    params: tuple[object, ...]
    columns: tuple[str, ...]

    @property
    def sql_columns(self) -> tuple[str, ...]:
        """The names of the SQL result columns, in order (the cursor's description)."""
        rest = tuple(c for c in self.columns if c not in (_ID, _CLASS))
        return (_ID, _CLASS, *rest)


# ------------------------------------------------------------------ constants

_ID: Final = "ECInstanceId"
_CLASS: Final = "ECClassId"
_CLASS_IS: Final = "__ecsql_class_is__"
_ONLY: Final = "__ecsql_only__"
_STAR_COLUMNS: Final = (
    (_ID, "id"),
    (_CLASS, "class_id"),
    ("CodeValue", "code_value"),
    ("UserLabel", "user_label"),
    ("Category", "category_id"),
    ("Model", "model_id"),
    ("Parent", "parent_id"),
)
#: Navigation property -> the class of its target element (a model is its partition element).
_NAV_TARGETS: Final = {
    "Category": "BisCore.Category",
    "Model": "BisCore.InformationPartitionElement",
    "Parent": "BisCore.Element",
    "Element": "BisCore.Element",
}
_ALLOWED_FUNCTIONS: Final = "LOWER, UPPER, ABS, ROUND, COALESCE, IFNULL, NULLIF, LENGTH, TRIM, SUBSTR, INSTR, REPLACE"
_FUNCTIONS: Final[tuple[type[exp.Expr], ...]] = (
    exp.Lower,
    exp.Upper,
    exp.Abs,
    exp.Round,
    exp.Coalesce,
    exp.Nullif,
    exp.Length,
    exp.Trim,
    exp.Substring,
    exp.StrPosition,
    exp.Replace,
)
_OPERATORS: Final[tuple[type[exp.Expr], ...]] = (
    exp.EQ,
    exp.NEQ,
    exp.LT,
    exp.LTE,
    exp.GT,
    exp.GTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.DPipe,
    exp.Like,
    exp.Escape,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Case,
    exp.If,
    exp.Cast,
    *_FUNCTIONS,
)
_COMPARISONS: Final[tuple[type[exp.Expr], ...]] = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
_CLAUSE_NAMES: Final = {
    "with_": "WITH (common table expressions)",
    "group": "GROUP BY",
    "having": "HAVING",
    "qualify": "QUALIFY",
    "windows": "WINDOW",
    "laterals": "LATERAL",
    "into": "SELECT INTO",
    "connect": "CONNECT BY",
    "sample": "TABLESAMPLE",
    "locks": "FOR UPDATE",
    "pivots": "PIVOT",
}
_MAX_INT64: Final = (1 << 63) - 1
#: Limits that keep a hostile query from exhausting the (recursive) parser and translator; each is checked without
#: recursion before the query is parsed or translated, and a query over one fails with a message saying so.
MAX_QUERY_LENGTH: Final = 65_536
MAX_PAREN_DEPTH: Final = 32
MAX_EXPRESSION_DEPTH: Final = 120
_EXAMPLE: Final = " (a group query looks like: SELECT * FROM bis.Element WHERE ...)"


class _ECSQLite(SQLite):
    """SQLite output with numbered ``?N`` parameters (so one value can be reused and order is explicit)."""

    class Generator(SQLiteGenerator):
        def placeholder_sql(self, expression: exp.Placeholder) -> str:
            return f"?{expression.name}"


# ------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class _Class:
    class_id: int
    schema: str
    alias: str
    name: str
    base_id: int | None
    kind: Literal["element", "aspect"]

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class _Meta:
    """The ECSchema classes and declared properties of one iModel."""

    classes: dict[int, _Class]
    declared: dict[int, dict[str, tuple[str, str]]]  # class id -> lower name -> (name, type)
    children: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sqlite3.Connection, imodel_id: str) -> _Meta:
        classes: dict[int, _Class] = {}
        rows = conn.execute(
            "SELECT class_id, schema_name, schema_alias, class_name, base_class_id, kind "
            "FROM im_classes WHERE imodel_id = ?",
            (imodel_id,),
        )
        for class_id, schema, alias, name, base_id, kind in rows:
            classes[int(class_id)] = _Class(
                int(class_id),
                str(schema),
                str(alias),
                str(name),
                None if base_id is None else int(base_id),
                "aspect" if kind == "aspect" else "element",
            )
        if not classes:
            raise QueryTranslationError(f"iModel '{imodel_id}' has no ECSchema class data to query")
        declared: dict[int, dict[str, tuple[str, str]]] = {cid: {} for cid in classes}
        rows = conn.execute(
            "SELECT class_id, property_name, property_type FROM im_class_properties WHERE imodel_id = ?",
            (imodel_id,),
        )
        for class_id, name, ptype in rows:
            declared.setdefault(int(class_id), {})[str(name).lower()] = (str(name), str(ptype))
        meta = cls(classes, declared)
        for c in classes.values():
            if c.base_id is not None:
                meta.children.setdefault(c.base_id, []).append(c.class_id)
        return meta

    def schemas(self) -> list[tuple[str, str]]:
        return sorted({(c.schema, c.alias) for c in self.classes.values()})

    def find(self, schema: str, name: str) -> _Class:
        """The class ``schema.name`` (schema name or alias, any case) or a helpful error."""
        s, n = schema.lower(), name.lower()
        in_schema = [c for c in self.classes.values() if s in (c.schema.lower(), c.alias.lower())]
        if not in_schema:
            known = ", ".join(f"{sn} ({sa})" for sn, sa in self.schemas())
            raise QueryTranslationError(f"Unknown schema '{schema}' in '{schema}.{name}'; schemas (alias): {known}")
        for c in in_schema:
            if c.name.lower() == n:
                return c
        names = ", ".join(sorted(c.name for c in in_schema))
        raise QueryTranslationError(
            f"Unknown class '{schema}.{name}'; classes in schema {in_schema[0].schema}: {names}"
        )

    def by_full_name(self, full_name: str) -> _Class | None:
        schema, _, name = full_name.partition(".")
        for c in self.classes.values():
            if c.schema == schema and c.name == name:
                return c
        return None

    def descendants(self, class_id: int) -> list[int]:
        """The class and all its subclasses, sorted."""
        result: list[int] = []
        stack = [class_id]
        while stack:
            cid = stack.pop()
            if cid in result:
                continue
            result.append(cid)
            stack.extend(self.children.get(cid, ()))
        return sorted(result)

    def all_of_kind(self, kind: str) -> list[int]:
        return sorted(c.class_id for c in self.classes.values() if c.kind == kind)

    def chain(self, class_id: int) -> list[_Class]:
        chain: list[_Class] = []
        current: int | None = class_id
        while current is not None and current in self.classes and len(chain) < 64:
            chain.append(self.classes[current])
            current = self.classes[current].base_id
        return chain

    def properties(self, class_id: int) -> dict[str, tuple[str, str]]:
        """Declared and inherited properties: lower name -> (name, type)."""
        result: dict[str, tuple[str, str]] = {}
        for c in reversed(self.chain(class_id)):
            result.update(self.declared.get(c.class_id, {}))
        return result

    def declaring(self, lower_name: str) -> list[str]:
        return sorted(self.classes[cid].full_name for cid, props in self.declared.items() if lower_name in props)


# ---------------------------------------------------------------- pre-pass


def _is_name(token: Token) -> bool:
    return token.token_type in (TokenType.VAR, TokenType.IDENTIFIER) or (
        token.text.isidentifier() and token.token_type not in (TokenType.STRING, TokenType.NUMBER)
    )


def _tokenize(text: str) -> list[Token]:
    try:
        return list(SQLite().tokenize(text))
    except SqlglotError as error:
        raise QueryTranslationError(_syntax_error(error)) from None


def _slice(text: str, token: Token) -> str:
    return text[token.start : token.end + 1]


def _class_list(tokens: Sequence[Token], start: int) -> tuple[list[tuple[bool, Token, Token]], int] | None:
    """Parse ``( [ONLY] name sep name, ... )`` from ``tokens[start]`` (the ``(``); returns items and end index."""
    items: list[tuple[bool, Token, Token]] = []
    i = start + 1
    while True:
        only = False
        if i < len(tokens) and tokens[i].text.upper() == "ONLY" and i + 1 < len(tokens) and _is_name(tokens[i + 1]):
            only = True
            i += 1
        if i + 2 >= len(tokens):
            return None
        schema, sep, name = tokens[i], tokens[i + 1], tokens[i + 2]
        if not (_is_name(schema) and sep.token_type in (TokenType.DOT, TokenType.COLON) and _is_name(name)):
            return None
        items.append((only, schema, name))
        i += 3
        if i < len(tokens) and tokens[i].token_type == TokenType.COMMA:
            i += 1
            continue
        if i < len(tokens) and tokens[i].token_type == TokenType.R_PAREN:
            return items, i
        return None


def _rewrite_class_tests(text: str) -> str:
    """``X IS [NOT] ([ONLY] s.C, ...)`` -> ``X = / <> __ecsql_class_is__([__ecsql_only__(]s.C[)], ...)``."""
    tokens = _tokenize(text)
    out: list[str] = []
    last = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.token_type == TokenType.IS:
            negate = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.NOT
            paren = i + 2 if negate else i + 1
            if paren < len(tokens) and tokens[paren].token_type == TokenType.L_PAREN:
                parsed = _class_list(tokens, paren)
                if parsed is not None:
                    items, end = parsed
                    args = []
                    for only, schema, name in items:
                        ref = f"{_slice(text, schema)}.{_slice(text, name)}"
                        args.append(f"{_ONLY}({ref})" if only else ref)
                    out.append(text[last : token.start])
                    out.append(f"{'<>' if negate else '='} {_CLASS_IS}({', '.join(args)})")
                    last = tokens[end].end + 1
                    i = end + 1
                    continue
        i += 1
    out.append(text[last:])
    return "".join(out)


def _prepare(text: str) -> tuple[str, set[int]]:
    """Rewrite class tests, turn ``Schema:Class`` into ``Schema.Class`` and blank ``FROM/JOIN ONLY``.

    Returns the text for sqlglot and the start offsets of the class references marked ONLY
    (``ONLY`` is replaced by spaces so offsets do not move).
    """
    text = _rewrite_class_tests(text)
    tokens = _tokenize(text)
    chars = list(text)
    only_starts: set[int] = set()
    for i, token in enumerate(tokens):
        if (
            token.token_type == TokenType.COLON
            and 0 < i < len(tokens) - 1
            and _is_name(tokens[i - 1])
            and _is_name(tokens[i + 1])
            and tokens[i - 1].end + 1 == token.start
            and token.end + 1 == tokens[i + 1].start
        ):
            chars[token.start] = "."
        if (
            token.text.upper() == "ONLY"
            and token.token_type == TokenType.VAR
            and i > 0
            and tokens[i - 1].token_type in (TokenType.FROM, TokenType.JOIN)
            and i + 1 < len(tokens)
            and _is_name(tokens[i + 1])
        ):
            chars[token.start : token.end + 1] = " " * (token.end + 1 - token.start)
            only_starts.add(tokens[i + 1].start)
    return "".join(chars), only_starts


def _bare_class(text: str) -> tuple[str, str] | None:
    """``(schema, class)`` if the query is a v1 bare class name (``bis.Element``, ``Building:Beam``)."""
    tokens = _tokenize(text)
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    if (
        len(tokens) == 3
        and _is_name(tokens[0])
        and tokens[1].token_type in (TokenType.DOT, TokenType.COLON)
        and _is_name(tokens[2])
        and tokens[0].token_type != TokenType.SELECT
    ):
        return tokens[0].text, tokens[2].text
    return None


# ------------------------------------------------------------------- sources


@dataclass
class _Source:
    """A class in FROM/JOIN (or a joined navigation target): its SQL alias and class."""

    sql_alias: str
    cls: _Class
    user_alias: str | None = None
    only: bool = False

    @property
    def is_aspect(self) -> bool:
        return self.cls.kind == "aspect"

    def col(self, name: str) -> exp.Column:
        return exp.column(name, table=self.sql_alias)


@dataclass
class _Ref:
    """A resolved property reference."""

    sql: exp.Expr
    name: str
    kind: Literal["value", "id", "class", "self_id"]
    source: _Source
    # For ids of elements: the source whose element this is (ECClassId via its class_id), else None.
    element_source: _Source | None = None


# ----------------------------------------------------------------- translator


class _Translator:
    def __init__(self, meta: _Meta) -> None:
        self.meta = meta
        self.params: list[object] = []
        self.sources: list[_Source] = []
        self.nav_joins: dict[tuple[str, str], _Source] = {}
        self.joins: list[exp.Join] = []
        self.output_aliases: dict[str, str] = {}

    # -- parameters

    def param(self, value: object) -> exp.Placeholder:
        self.params.append(value)
        return exp.Placeholder(this=str(len(self.params) + 1))

    @staticmethod
    def imodel() -> exp.Placeholder:
        return exp.Placeholder(this="1")

    # -- scope

    def scope(self, source: _Source) -> exp.Expr:
        """``imodel_id = ?1 [AND class_id IN (...)]`` for a source."""
        cond: exp.Expr = exp.EQ(this=source.col("imodel_id"), expression=self.imodel())
        ids = [source.cls.class_id] if source.only else self.meta.descendants(source.cls.class_id)
        if ids != self.meta.all_of_kind(source.cls.kind):
            cond = exp.and_(cond, _in(source.col("class_id"), ids))
        return cond

    def add_source(self, table: exp.Expr, only_starts: set[int]) -> _Source:
        if not isinstance(table, exp.Table):
            if isinstance(table, exp.Subquery):
                raise QueryTranslationError("ECSQL subset: subqueries are not supported in FROM; use schema.Class")
            raise QueryTranslationError(
                f"ECSQL subset: FROM/JOIN must name a class (schema.Class), not '{table.sql()}'"
            )
        if table.args.get("catalog") is not None:
            raise QueryTranslationError(
                f"Invalid class name '{table.sql()}': use schema.Class (versioned names are not supported)"
            )
        if table.args.get("db") is None:
            raise QueryTranslationError(self.unqualified_hint(table.name))
        db = table.args["db"]
        cls = self.meta.find(db.name, table.name)
        alias = table.alias or None
        only = db.meta.get("start") in only_starts
        source = _Source(f"s{len(self.sources)}", cls, alias, only)
        names = {(s.user_alias or s.cls.name).lower() for s in self.sources}
        if (alias or cls.name).lower() in names:
            raise QueryTranslationError(
                f"Duplicate class alias '{alias or cls.name}' in FROM/JOIN; give each class a distinct alias"
            )
        self.sources.append(source)
        return source

    def unqualified_hint(self, name: str) -> str:
        matches = [c.full_name for c in self.meta.classes.values() if c.name.lower() == name.lower()]
        hint = f" (did you mean {' or '.join(sorted(matches))}?)" if matches else ""
        return f"Class name '{name}' must be qualified with its schema name or alias, e.g. bis.Element{hint}"

    # -- property resolution

    def resolve(self, node: exp.Expr) -> _Ref:
        parts = _parts(node)
        if parts is None:
            raise QueryTranslationError(f"ECSQL subset: unsupported expression '{node.sql()}'")
        names = [p.name for p in parts]
        source: _Source | None = None
        rest = names
        if len(names) >= 2:
            for s in self.sources:
                if (s.user_alias or s.cls.name).lower() == names[0].lower():
                    source, rest = s, names[1:]
                    break
        if source is None:
            if len(self.sources) == 1:
                source = self.sources[0]
            else:
                candidates = [s for s in self.sources if self.has_member(s, rest[0])]
                if len(candidates) != 1:
                    aliases = ", ".join(s.user_alias or s.cls.name for s in self.sources)
                    what = "ambiguous" if candidates else "unknown"
                    raise QueryTranslationError(
                        f"Property '{'.'.join(names)}' is {what} in a query over several classes; "
                        f"qualify it with a class alias ({aliases})"
                    )
                source = candidates[0]
        return self.member(source, rest, names)

    def has_member(self, source: _Source, name: str) -> bool:
        return name.lower() in ("ecinstanceid", "ecclassid") or name.lower() in self.meta.properties(
            source.cls.class_id
        )

    def member(self, source: _Source, rest: list[str], names: list[str]) -> _Ref:
        head = rest[0].lower()
        where = f"{source.cls.full_name}" + (f" (alias {source.user_alias})" if source.user_alias else "")
        if head in ("ecinstanceid", "ecclassid"):
            if len(rest) > 1:
                raise QueryTranslationError(f"'{'.'.join(names)}': {rest[0]} has no members")
            if head == "ecclassid":
                return _Ref(source.col("class_id"), _CLASS, "class", source)
            kind: Literal["id", "self_id"] = "self_id" if source.is_aspect else "id"
            return _Ref(source.col("id"), _ID, kind, source, None if source.is_aspect else source)
        props = self.meta.properties(source.cls.class_id)
        if head not in props:
            raise self.unknown_property(source, rest[0], where)
        name, ptype = props[head]
        tail = rest[1:]
        if ptype == "Navigation":
            column = "element_id" if source.is_aspect and name == "Element" else ELEMENT_COLUMN_PROPERTIES.get(name)
            if column is None:
                raise QueryTranslationError(f"Navigation property '{name}' of {where} is not queryable in the sandbox")
            if not tail:
                return _Ref(source.col(column), name, "id", source)
            if tail[0].lower() == "id" and len(tail) == 1:
                return _Ref(source.col(column), f"{name}.Id", "id", source)
            if tail[0].lower() == "relecclassid":
                raise QueryTranslationError(f"'{'.'.join(names)}': RelECClassId is not supported; use {name}.Id")
            target = self.nav_target(source, name, column)
            ref = self.member(target, tail, names)
            ref.name = f"{name}.{ref.name}"
            return ref
        if ptype == "Json":
            path = "$." + name
            for member in tail:
                if not member.replace("_", "a").isalnum():
                    raise QueryTranslationError(f"Invalid JSON member name '{member}' in '{'.'.join(names)}'")
                path += "." + member
            value: exp.Expr = exp.Anonymous(
                this="json_extract",
                expressions=[source.col("props"), self.param(path) if tail else exp.Literal.string(path)],
            )
            return _Ref(value, ".".join([name, *tail]), "value", source)
        if tail:
            raise QueryTranslationError(f"'{'.'.join(names)}': {name} is a {ptype} property and has no members")
        if name in ELEMENT_COLUMN_PROPERTIES and not source.is_aspect:
            return _Ref(source.col(ELEMENT_COLUMN_PROPERTIES[name]), name, "value", source)
        extract = exp.Anonymous(this="json_extract", expressions=[source.col("props"), exp.Literal.string(f"$.{name}")])
        return _Ref(extract, name, "value", source)

    def unknown_property(self, source: _Source, name: str, where: str) -> QueryTranslationError:
        valid = sorted(n for n, _ in self.meta.properties(source.cls.class_id).values())
        message = f"Unknown property '{name}' on {where}; valid properties: {', '.join([_ID, _CLASS, *valid])}"
        declaring = self.meta.declaring(name.lower())
        if declaring:
            message += f". '{name}' is declared by {', '.join(declaring)}: query that class instead"
        return QueryTranslationError(message)

    def nav_target(self, source: _Source, prop: str, column: str) -> _Source:
        key = (source.sql_alias, prop)
        if key not in self.nav_joins:
            cls = self.meta.by_full_name(_NAV_TARGETS.get(prop, "BisCore.Element")) or self.meta.by_full_name(
                "BisCore.Element"
            )
            if cls is None:
                raise QueryTranslationError(f"Cannot follow navigation property '{prop}': BisCore.Element is missing")
            target = _Source(f"n{len(self.nav_joins)}", cls, None)
            self.nav_joins[key] = target
            on = exp.and_(
                exp.EQ(this=target.col("imodel_id"), expression=self.imodel()),
                exp.EQ(this=target.col("id"), expression=source.col(column)),
            )
            self.joins.append(exp.Join(this=_table("im_elements", target.sql_alias), on=on, side="LEFT"))
        return self.nav_joins[key]

    def id_ref(self, node: exp.Expr) -> bool:
        """Whether ``node`` is a reference to an id (so string literals compared with it are Id64s)."""
        if _parts(node) is None:
            return False
        try:
            return self.resolve(node).kind in ("id", "self_id", "class")
        except QueryTranslationError:
            return False

    # -- expressions

    def expr(self, node: exp.Expr, id_context: bool = False) -> exp.Expr:
        if isinstance(node, exp.Column | exp.Dot):
            if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
                raise QueryTranslationError("ECSQL subset: 'alias.*' is only allowed as a select item")
            return self.resolve(node).sql
        if isinstance(node, exp.Literal):
            return self.literal(node, id_context)
        if isinstance(node, exp.Null | exp.Boolean | exp.DataType):
            return node.copy()
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise QueryTranslationError(
                "ECSQL subset: query parameters (?, :name) are not supported; inline the values"
            )
        if isinstance(node, exp.EQ | exp.NEQ) and _is_class_test(node.expression):
            return self.class_test(node.this, node.expression, negate=isinstance(node, exp.NEQ))
        if isinstance(node, (*_COMPARISONS, exp.In, exp.Between)):
            return self.comparison(node)
        if isinstance(node, exp.Anonymous):
            name = node.name
            if name.lower() in (_CLASS_IS, _ONLY):
                raise QueryTranslationError("ECSQL subset: 'IS (schema.Class, ...)' may only follow ECClassId")
            raise QueryTranslationError(
                f"ECSQL subset: function {name.upper()}() is not supported; allowed functions: {_ALLOWED_FUNCTIONS}"
            )
        if isinstance(node, _OPERATORS):
            return self.rebuild(node)
        raise QueryTranslationError(_unsupported(node))

    def rebuild(self, node: exp.Expr, id_context: bool = False) -> exp.Expr:
        args: dict[str, object] = {}
        for key, value in node.args.items():
            if isinstance(value, exp.Expr):
                args[key] = self.expr(value, id_context)
            elif isinstance(value, list):
                args[key] = [self.expr(v, id_context) if isinstance(v, exp.Expr) else v for v in value]
            else:
                args[key] = value
        return type(node)(**args)

    def comparison(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.In) and any(node.args.get(k) for k in ("query", "unnest", "field")):
            raise QueryTranslationError("ECSQL subset: subqueries are not supported; use IN (value, ...)")
        operands = [v for v in node.args.values() if isinstance(v, exp.Expr)]
        id_context = any(self.id_ref(v) for v in operands)
        return self.rebuild(node, id_context)

    def literal(self, node: exp.Literal, id_context: bool) -> exp.Expr:
        text = node.this
        if node.is_string:
            if id_context:
                try:
                    return self.param(int(text) if text.isdigit() else parse_id64(text))
                except ValueError:
                    raise QueryTranslationError(
                        f"'{text}' is not an Id64: compare ids with hex literals like 0x20000000001 "
                        "(to test an element's class use ECClassId IS (schema.Class))"
                    ) from None
            return self.param(text)
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise QueryTranslationError(f"Invalid number literal '{text}'") from None
        if isinstance(number, int) and not -_MAX_INT64 - 1 <= number <= _MAX_INT64:
            raise QueryTranslationError(f"Integer literal {text} is out of range (64-bit signed)")
        return self.param(number)

    def class_test(self, left: exp.Expr, test: exp.Expr, *, negate: bool) -> exp.Expr:
        ref = self.resolve(left) if _parts(left) is not None else None
        if ref is None or ref.kind != "class":
            raise QueryTranslationError(
                f"ECSQL subset: 'IS (schema.Class, ...)' may only follow ECClassId, not '{left.sql()}'"
            )
        ids: set[int] = set()
        for arg in test.expressions:
            only = isinstance(arg, exp.Anonymous) and arg.name.lower() == _ONLY
            target = arg.expressions[0] if only else arg
            parts = _parts(target)
            if parts is None or len(parts) != 2:
                raise QueryTranslationError(f"ECClassId IS (...) expects schema.Class names, got '{target.sql()}'")
            cls = self.meta.find(parts[0].name, parts[1].name)
            ids.update([cls.class_id] if only else self.meta.descendants(cls.class_id))
        condition = _in(ref.sql, sorted(ids))
        return exp.Not(this=condition) if negate else condition

    # -- the statement

    def select(self, tree: exp.Expr, only_starts: set[int]) -> tuple[exp.Select, tuple[str, ...]]:
        if not isinstance(tree, exp.Select):
            if isinstance(tree, exp.SetOperation):
                raise QueryTranslationError("ECSQL subset: UNION/INTERSECT/EXCEPT are not supported; use one SELECT")
            raise QueryTranslationError("The group query must be one ECSQL SELECT statement (or a bare class name)")
        for key, value in tree.args.items():
            if value and key not in ("expressions", "from_", "joins", "where", "order", "limit", "offset", "distinct"):
                clause = _CLAUSE_NAMES.get(key, key.upper())
                raise QueryTranslationError(f"ECSQL subset: {clause} is not supported in group queries")
        distinct = tree.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            raise QueryTranslationError("ECSQL subset: DISTINCT ON is not supported")
        from_ = tree.args.get("from_")
        if from_ is None:
            raise QueryTranslationError("The query needs a FROM clause naming a class, e.g. FROM bis.Element")
        first = self.add_source(from_.this, only_starts)
        join_conditions: list[tuple[_Source, exp.Expr, str | None]] = []
        for join in tree.args.get("joins") or []:
            side, kind = join.args.get("side"), join.args.get("kind")
            if kind in ("CROSS",) or join.args.get("on") is None:
                if join.args.get("using"):
                    raise QueryTranslationError("ECSQL subset: JOIN ... USING is not supported; use JOIN ... ON")
                raise QueryTranslationError(
                    "ECSQL subset: every JOIN needs an ON condition (comma and CROSS joins are not supported)"
                )
            if side not in (None, "LEFT") or kind not in (None, "INNER", "OUTER"):
                raise QueryTranslationError("ECSQL subset: only JOIN / INNER JOIN / LEFT JOIN are supported")
            source = self.add_source(join.this, only_starts)
            join_conditions.append((source, join.args["on"], side))

        items = self.select_items(tree.expressions)
        id_item = next((item for item in items if item[0] == _ID), None)
        if id_item is None:
            if first.is_aspect:
                raise QueryTranslationError(
                    f"aspect queries must select {first.user_alias or first.cls.name}.Element.Id ECInstanceId "
                    "(the id of the element that owns the aspect)"
                )
            raise QueryTranslationError(
                "The query must select ECInstanceId (or `*`), e.g. SELECT ECInstanceId FROM bis.Element"
            )
        id_ref = id_item[2]
        class_sql = self.element_class(id_ref, first)

        # FROM / JOIN with their scope conditions
        select = exp.Select(
            expressions=[exp.alias_(id_item[1], _ID, quoted=True), exp.alias_(class_sql, _CLASS, quoted=True)]
        )
        select.set("from_", exp.From(this=_table(_table_name(first), first.sql_alias)))
        joins: list[exp.Join] = []
        for source, on, side in join_conditions:
            condition = exp.and_(self.scope(source), exp.Paren(this=self.expr(on)))
            joins.append(exp.Join(this=_table(_table_name(source), source.sql_alias), on=condition, side=side))
        where: exp.Expr = self.scope(first)
        user_where = tree.args.get("where")
        if user_where is not None:
            where = exp.and_(where, exp.Paren(this=self.expr(user_where.this)))
        order = tree.args.get("order")
        ordered: list[exp.Expr] = []
        if order is not None:
            for o in order.expressions:
                if not isinstance(o, exp.Ordered):
                    raise QueryTranslationError(_unsupported(o))
                target = self.order_target(o.this)
                ordered.append(exp.Ordered(this=target, desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first")))
        names: list[str] = []
        for name, sql, _ref in items:
            names.append(name)
            if name not in (_ID, _CLASS):
                select.append("expressions", exp.alias_(sql, name, quoted=True))
        for join in [*joins, *self.joins]:
            select.append("joins", join)
        select.set("where", exp.Where(this=where))
        if ordered:
            select.set("order", exp.Order(expressions=ordered))
        if distinct is not None:
            select.set("distinct", exp.Distinct())
        limit = tree.args.get("limit")
        if limit is not None:
            select.set("limit", exp.Limit(expression=self.count(limit.expression, "LIMIT")))
        offset = tree.args.get("offset")
        if offset is not None:
            select.set("offset", exp.Offset(expression=self.count(offset.expression, "OFFSET")))
        return select, tuple(names)

    def count(self, node: exp.Expr | None, clause: str) -> exp.Expr:
        if not isinstance(node, exp.Literal) or node.is_string or not node.this.isdigit():
            raise QueryTranslationError(f"{clause} takes a non-negative integer literal, e.g. {clause} 10")
        if len(node.this) > 19 or int(node.this) > _MAX_INT64:
            raise QueryTranslationError(f"{clause} {node.this[:24]} is out of range (at most {_MAX_INT64})")
        return self.param(int(node.this))

    def order_target(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in self.output_aliases:
            return exp.column(self.output_aliases[node.name.lower()], quoted=True)
        return self.expr(node)

    def select_items(self, expressions: Iterable[exp.Expr]) -> list[tuple[str, exp.Expr, _Ref | None]]:
        items: list[tuple[str, exp.Expr, _Ref | None]] = []
        for node in expressions:
            if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
                items.extend(self.star(node))
                continue
            alias: str | None = None
            value = node
            if isinstance(node, exp.Alias):
                alias, value = node.alias, node.this
            ref = self.resolve(value) if _parts(value) is not None else None
            sql = ref.sql if ref is not None else self.expr(value)
            name = alias or (ref.name if ref is not None else value.sql(dialect="sqlite"))
            if name.lower() == _ID.lower():
                name = _ID
            elif name.lower() == _CLASS.lower():
                name = _CLASS
            items.append((name, sql, ref))
        seen: set[str] = set()
        for name, _, _ in items:
            if name.lower() in seen:
                raise QueryTranslationError(f"Duplicate result column '{name}'; give one of them an AS alias")
            seen.add(name.lower())
            self.output_aliases[name.lower()] = name
        return items

    def star(self, node: exp.Expr) -> list[tuple[str, exp.Expr, _Ref | None]]:
        if isinstance(node, exp.Column):
            matches = [s for s in self.sources if (s.user_alias or s.cls.name).lower() == node.table.lower()]
            if not matches:
                raise QueryTranslationError(f"Unknown class alias '{node.table}' in '{node.table}.*'")
            source = matches[0]
        elif len(self.sources) == 1:
            source = self.sources[0]
        else:
            raise QueryTranslationError("SELECT * over a JOIN is not supported; list the columns (e.g. e.ECInstanceId)")
        if source.is_aspect:
            raise QueryTranslationError(
                f"aspect queries must select {source.user_alias or source.cls.name}.Element.Id ECInstanceId "
                "and the aspect properties by name (SELECT * is for element classes)"
            )
        items: list[tuple[str, exp.Expr, _Ref | None]] = []
        for name, column in _STAR_COLUMNS:
            kind: Literal["id", "class", "value"] = "id" if name == _ID else "class" if name == _CLASS else "value"
            items.append((name, source.col(column), _Ref(source.col(column), name, kind, source, source)))
        return items

    def element_class(self, id_ref: _Ref | None, first: _Source) -> exp.Expr:
        """The SQL for the ECClassId of the element selected as ECInstanceId."""
        if id_ref is None or id_ref.kind not in ("id", "self_id"):
            raise QueryTranslationError(
                "ECInstanceId must be an element id: select ECInstanceId of an element class, "
                f"or <aspect alias>.Element.Id ECInstanceId for aspects (FROM {first.cls.full_name})"
            )
        if id_ref.kind == "self_id":
            alias = id_ref.source.user_alias or id_ref.source.cls.name
            raise QueryTranslationError(
                f"aspect queries must select {alias}.Element.Id ECInstanceId (an aspect's own ECInstanceId "
                "is not an element id)"
            )
        if id_ref.element_source is not None:
            return id_ref.element_source.col("class_id")
        owner = _Source(f"e{len(self.joins)}", first.cls)
        on = exp.and_(
            exp.EQ(this=owner.col("imodel_id"), expression=self.imodel()),
            exp.EQ(this=owner.col("id"), expression=id_ref.sql.copy()),
        )
        self.joins.append(exp.Join(this=_table("im_elements", owner.sql_alias), on=on))
        return owner.col("class_id")


# -------------------------------------------------------------------- helpers


def _table(name: str, alias: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name), alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _table_name(source: _Source) -> str:
    return "im_aspects" if source.is_aspect else "im_elements"


def _in(column: exp.Expr, ids: Sequence[int]) -> exp.Expr:
    if len(ids) == 1:
        return exp.EQ(this=column, expression=exp.Literal.number(ids[0]))
    return exp.In(this=column, expressions=[exp.Literal.number(i) for i in ids])


def _parts(node: exp.Expr) -> list[exp.Identifier] | None:
    """The identifiers of a (possibly dotted) column reference, or None if it is not one."""
    if isinstance(node, exp.Column):
        if not all(isinstance(p, exp.Identifier) for p in node.parts):
            return None
        return [p for p in node.parts if isinstance(p, exp.Identifier)]
    if isinstance(node, exp.Dot):
        head = _parts(node.this)
        tail = node.expression
        if head is None or not isinstance(tail, exp.Identifier):
            return None
        return [*head, tail]
    return None


def _is_class_test(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == _CLASS_IS


def _unsupported(node: exp.Expr) -> str:
    if isinstance(node, exp.Select | exp.Subquery | exp.Exists):
        return "ECSQL subset: subqueries are not supported in group queries"
    if isinstance(node, exp.Window):
        return "ECSQL subset: window functions (OVER) are not supported in group queries"
    if isinstance(node, exp.AggFunc):
        return (
            f"ECSQL subset: aggregate function {node.sql(dialect='sqlite')} is not supported: a group query selects "
            "one row per element (aggregate in a report or aggregation instead)"
        )
    if isinstance(node, exp.Func):
        return (
            f"ECSQL subset: function {node.sql(dialect='sqlite')} is not supported; "
            f"allowed functions: {_ALLOWED_FUNCTIONS}"
        )
    return f"ECSQL subset: '{node.sql(dialect='sqlite')}' ({type(node).__name__}) is not supported"


def _translate_bare(meta: _Meta, imodel_id: str, schema: str, name: str) -> TranslatedQuery:
    cls = meta.find(schema, name)
    element = _Source("s0", cls)
    select = exp.Select(
        expressions=[
            exp.alias_(element.col("id"), _ID, quoted=True),
            exp.alias_(element.col("class_id"), _CLASS, quoted=True),
        ]
    ).from_(_table("im_elements", "s0"))
    where: exp.Expr = exp.EQ(this=element.col("imodel_id"), expression=_Translator.imodel())
    ids = meta.descendants(cls.class_id)
    if cls.kind == "element":
        if ids != meta.all_of_kind("element"):
            where = exp.and_(where, _in(element.col("class_id"), ids))
    else:
        aspect = _Source("a0", cls)
        condition: exp.Expr = exp.and_(
            exp.EQ(this=aspect.col("imodel_id"), expression=_Translator.imodel()),
            exp.EQ(this=aspect.col("element_id"), expression=element.col("id")),
        )
        if ids != meta.all_of_kind("aspect"):
            condition = exp.and_(condition, _in(aspect.col("class_id"), ids))
        exists = exp.Select(expressions=[exp.Literal.number(1)]).from_(_table("im_aspects", "a0")).where(condition)
        where = exp.and_(where, exp.Exists(this=exists))
    select.set("where", exp.Where(this=where))
    return TranslatedQuery(select.sql(dialect=_ECSQLite), (imodel_id,), ())


def translate(query: str, imodel_id: str, conn: sqlite3.Connection) -> TranslatedQuery:
    """Translate an ECSQL group query (or v1 bare class name) into a SQLite SELECT over ``im_*``.

    Raises ``QueryTranslationError`` for anything outside the supported subset (see the module
    docstring). The returned SQL binds ``imodel_id`` as ``?1`` and every query literal as ``?N``.
    """
    if not query or not query.strip():
        raise QueryTranslationError("The group query is empty; write e.g. SELECT * FROM bis.Element")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryTranslationError(
            f"The group query is {len(query)} characters long; at most {MAX_QUERY_LENGTH} are allowed"
        )
    try:
        return _translate(query, imodel_id, conn)
    except RecursionError:  # a backstop: the limits below are meant to stop such queries first
        raise QueryTranslationError(_TOO_COMPLEX) from None


_TOO_COMPLEX: Final = (
    "The group query is too complex to translate; use fewer nested parentheses and IN (...) instead of long OR chains"
)


def _check_paren_depth(tokens: Sequence[Token]) -> None:
    """Refuse queries nested deeper than ``MAX_PAREN_DEPTH`` parentheses (sqlglot parses them recursively)."""
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise QueryTranslationError(
                    f"The group query nests parentheses more than {MAX_PAREN_DEPTH} levels deep "
                    f"(at line {token.line}, column {token.col}); simplify the condition"
                )
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1


def _balance_connectors(tree: exp.Expr) -> exp.Expr:
    """Rebuild long AND/OR chains as balanced trees (same meaning, logarithmic depth), so 500 ORs translate."""
    roots = [node for node in tree.walk() if isinstance(node, exp.And | exp.Or) and type(node.parent) is not type(node)]
    for root in roots:
        operands = list(root.flatten(unnest=False))
        if len(operands) > 2:
            balanced = _balanced(type(root), operands)
            if root is tree:
                tree = balanced
            else:
                root.replace(balanced)
    return tree


def _balanced(kind: type[exp.Expr], operands: Sequence[exp.Expr]) -> exp.Expr:
    if len(operands) == 1:
        return operands[0]
    middle = len(operands) // 2
    return kind(this=_balanced(kind, operands[:middle]), expression=_balanced(kind, operands[middle:]))


def _check_depth(tree: exp.Expr) -> None:
    """Refuse expression trees deeper than ``MAX_EXPRESSION_DEPTH`` (the translator walks them recursively)."""
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise QueryTranslationError(
                f"The group query's expressions nest more than {MAX_EXPRESSION_DEPTH} levels deep; "
                "split long chains of + or || and simplify the condition"
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _translate(query: str, imodel_id: str, conn: sqlite3.Connection) -> TranslatedQuery:
    bare = _bare_class(query)
    meta = _Meta.load(conn, imodel_id)
    if bare is not None:
        return _translate_bare(meta, imodel_id, *bare)
    text, only_starts = _prepare(query)
    tokens = _tokenize(text)
    _check_paren_depth(tokens)
    if tokens and tokens[0].token_type != TokenType.SELECT:
        if tokens[0].token_type in (TokenType.WITH, TokenType.L_PAREN):
            raise QueryTranslationError(
                "ECSQL subset: WITH and parenthesised queries are not supported; use one SELECT"
            )
        raise QueryTranslationError(
            "The group query must be an ECSQL SELECT (e.g. SELECT * FROM bis.Element WHERE ...) "
            "or a bare class name like bis.Element, BisCore:PhysicalElement or Building.Wall "
            "(versioned names such as schema.01.00.00:Class are not supported)"
        )
    try:
        statements = [s for s in sqlglot.parse(text, read="sqlite") if s is not None]
    except SqlglotError as error:
        raise QueryTranslationError(_syntax_error(error)) from None
    if len(statements) != 1:
        raise QueryTranslationError("The group query must be exactly one SELECT statement")
    statement = _balance_connectors(statements[0])
    _check_depth(statement)
    translator = _Translator(meta)
    select, columns = translator.select(statement, only_starts)
    try:
        sql = select.sql(dialect=_ECSQLite)
    except SqlglotError as error:  # pragma: no cover - generation of our own tree
        raise QueryTranslationError(f"Could not translate the query: {error}") from None
    return TranslatedQuery(sql, (imodel_id, *translator.params), columns)


def _syntax_error(error: SqlglotError) -> str:
    """A short ECSQL syntax error message (sqlglot's first error, without its token dump)."""
    details = getattr(error, "errors", None)
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        description = str(first.get("description") or "invalid syntax")
        description = description.split(" but got <Token", 1)[0]
        if description.startswith("Required keyword"):
            description = "incomplete clause or expression"
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        return f"ECSQL syntax error{where}: {description}{_EXAMPLE}"
    message = str(error).strip()
    return f"ECSQL syntax error: {message.splitlines()[0] if message else 'invalid query'}"
