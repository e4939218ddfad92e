"""The sandbox's iModel Query API: run an ECSQL SELECT on a sample iModel (200 inline, 201 to poll), page results.

The query goes through the one ECSQL engine (``ecsql.translate_select``) on its own connection, where
``ecsql_meta.install`` has put the ECDbMeta temp tables and the ``ec_class*`` functions. Results are kept as a record
for 24 h. Choices where the reference is silent (docs/architecture.md, "iModel Query"): more than
``SYNC_ROW_LIMIT`` rows answer 201 and read as Running for ``PENDING_SECONDS``; rows are positional arrays with ids as
hex strings and navigation values as ``{Id, RelECClassId}``; column metadata is ``meta: [{name, accessString,
type}]``; ``links.next`` leads to the next page; errors are 422 ``InvalidECSqlQuery`` naming the token and position.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import Response

from ..engine.ecsql import QueryTranslationError, translate_select
from ..engine.ecsql_meta import META_CLASSES, NAV_RELATIONSHIPS, install
from ..errors import SandboxError
from ..imodels.schema import id64
from ..store import Store
from ..wire import Call, json_response

__all__ = ["HANDLERS", "QueryResult", "run_select"]

SYNC_ROW_LIMIT: Final = 1000  # more rows than this: 201, poll Get query
PENDING_SECONDS: Final = 0.5  # a 201 query reads as Running this long
RETENTION_SECONDS: Final = 24 * 3600
DEFAULT_LIMIT: Final = 1000
QUERY_SECONDS: Final = 30.0
MAX_ROWS: Final = 200_000  # rows one query may keep (the service's own quota is unconfirmed)
_KIND: Final = "imodel_query"


@dataclass(frozen=True)
class QueryResult:
    """Column names, how each is written (``id``, ``nav:<property>``, ``value``) and the rows as the API sends them."""

    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    rows: list[list[Any]]


def _writer(kind: str) -> Callable[[Any], Any]:
    if kind == "id":
        return lambda v: id64(v) if isinstance(v, int) and v >= 0 else v
    if kind.startswith("nav:"):
        rel = id64(NAV_RELATIONSHIPS.get(kind[4:], 0x70))
        return lambda v: {"Id": id64(v), "RelECClassId": rel} if isinstance(v, int) and v >= 0 else None
    return lambda v: v


def with_position(message: str, query: str) -> str:
    """The message with the position (line, column) of the quoted token it names, when it has none (so it survives
    the 1000-character cut of long messages)."""
    if " at line " in message:
        return message
    for quoted in re.findall(r"'([^']{1,200})'", message):
        for candidate in (quoted, quoted.replace(".", ":"), quoted.split(".")[-1]):
            found = re.search(rf"(?<!\w){re.escape(candidate)}(?!\w)", query, re.IGNORECASE)
            if found is not None:
                line = query.count("\n", 0, found.start()) + 1
                column = found.start() - (query.rfind("\n", 0, found.start()) + 1) + 1
                return message.replace(f"'{quoted}'", f"'{quoted}' (at line {line}, column {column})", 1)
    return message


def run_select(store: Store, imodel_id: str, query: str, args: dict[str, Any] | None = None) -> QueryResult:
    """Translate and run one ECSQL SELECT on ``imodel_id``; raises ``QueryTranslationError`` with a position."""
    conn = store.connect()
    conn.row_factory = None
    try:
        install(conn, imodel_id)
        translated = translate_select(query, imodel_id, conn, args=args, meta_classes=META_CLASSES)
        deadline = time.monotonic() + QUERY_SECONDS
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            raw = conn.execute(translated.sql, translated.params).fetchmany(MAX_ROWS + 1)
        except sqlite3.OperationalError as error:
            if "interrupted" in str(error):
                raise QueryTranslationError(f"The query ran longer than {QUERY_SECONDS:.0f} s; narrow it") from None
            raise QueryTranslationError(f"The query could not be evaluated: {error}") from None
        if len(raw) > MAX_ROWS:
            raise QueryTranslationError(
                f"The query returns more than {MAX_ROWS} rows, more than the sandbox keeps: add LIMIT/OFFSET or a "
                "narrower WHERE, or aggregate with GROUP BY"
            )
        writers = [_writer(kind) for kind in translated.kinds]
        rows = [[write(value) for write, value in zip(writers, row, strict=True)] for row in raw]
        return QueryResult(translated.columns, translated.kinds, rows)
    except QueryTranslationError as error:
        raise QueryTranslationError(with_position(str(error), query)) from None
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------- handlers


def _scope(call: Call) -> str:
    """The ``imodel/changeset`` the path names, after checking the iTwin, iModel and changeset exist."""
    imodel = call.store.imodel(call.path["iModelId"])
    if imodel is None or imodel.get("iTwinId") != call.path["iTwinId"]:
        raise SandboxError(404, "iModelNotFound", "Requested iModel is not available.", "iModelId")
    changeset = call.path["changesetId"]
    known = {str(c.get("id")) for c in imodel.get("changesets", [])} | {
        str(c.get("index")) for c in imodel.get("changesets", [])
    }
    if changeset not in known:
        raise SandboxError(404, "ChangesetNotFound", "Requested changeset is not available.", "changesetId")
    return f"{imodel['id']}/{changeset}"


def _self_url(call: Call, query_id: str) -> str:
    p = call.path
    return (
        f"{call.base_url}/imodel-query/itwins/{p['iTwinId']}/imodels/{p['iModelId']}"
        f"/changesets/{p['changesetId']}/queries/{query_id}"
    )


def _page(call: Call, data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    rows: Sequence[Any] = data["rows"]
    limit = int(options.get("limit") or DEFAULT_LIMIT)
    skip = int(options.get("skip") or 0)
    url = _self_url(call, data["id"])
    more = skip + limit < len(rows)
    body: dict[str, Any] = {"id": data["id"], "state": "Completed", "rows": rows[skip : skip + limit]}
    if options.get("includeMetadata"):
        body["meta"] = [
            {"name": name, "accessString": name, "type": "id" if kind != "value" else "value"}
            for name, kind in zip(data["columns"], data["kinds"], strict=True)
        ]
    body["links"] = {"self": url, "next": f"{url}?limit={limit}&skip={skip + limit}" if more else None}
    return body


def run_query(call: Call) -> Response:
    scope = _scope(call)
    query = str(call.body.get("query", ""))
    args = call.body.get("args") or {}
    try:
        result = run_select(call.store, call.path["iModelId"], query, args)
    except QueryTranslationError as error:
        raise SandboxError(422, "InvalidECSqlQuery", str(error), "query") from None
    now = time.time()
    synchronous = len(result.rows) <= SYNC_ROW_LIMIT
    query_id = str(uuid.uuid4())
    data: dict[str, Any] = {
        "id": query_id,
        "columns": list(result.columns),
        "kinds": list(result.kinds),
        "rows": result.rows,
        "completedAt": now,
        "readyAt": now if synchronous else now + PENDING_SECONDS,
    }
    with call.store.transaction():
        call.store.conn.execute(
            "DELETE FROM records WHERE kind = ? AND json_extract(data, '$.completedAt') < ?",
            (_KIND, now - RETENTION_SECONDS),
        )
        call.store.insert(_KIND, scope, data)
    if synchronous:
        return json_response(_page(call, data, call.body), 200)
    return json_response({"id": query_id, "state": "Pending", "links": {"self": _self_url(call, query_id)}}, 201)


def get_query(call: Call) -> Response:
    scope = _scope(call)
    record = call.store.get(_KIND, call.path["queryId"], parent=scope)
    data = record.data if record is not None else None
    if data is None or float(data.get("completedAt", 0)) < time.time() - RETENTION_SECONDS:
        raise SandboxError(
            404,
            "QueryNotFound",
            "Requested query is not available (results are kept 24 hours after completion).",
            "queryId",
        )
    if time.time() < float(data.get("readyAt", 0)):
        return json_response({"id": data["id"], "state": "Running", "links": {"self": _self_url(call, data["id"])}})
    return json_response(_page(call, data, call.query))


HANDLERS: dict[str, Callable[[Call], Response]] = {
    "run-query": run_query,
    "get-query": get_query,
}
