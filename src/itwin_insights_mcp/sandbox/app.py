"""The sandbox Starlette app: every catalog operation as a route, validated from the same schemas as the tools.

Request pipeline (in this order, each step may answer with the API's error body):
authenticate -> coerce and validate path/query -> parse, trim unknown fields, validate the JSON body -> handler.
Handlers are the API adapters' (`api/`), composed here per catalog family; the domain rules under them run their
writes in one transaction, so a failed request changes nothing.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api.catalog import Catalog, Operation, load_catalog
from ..api.validation import problems
from .api import context, grouping_mapping, odata, reporting_v1, reporting_v2
from .domain.apikeys import api_key_user
from .engine.jobs import SandboxLimits
from .errors import SandboxError
from .runtime import Sandbox
from .store import now_iso
from .wire import INVALID_REQUEST_CODES, Call, error_response

__all__ = ["HANDLERS", "Sandbox", "create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[Call], Response | Awaitable[Response]]
# Each catalog family and the adapters that serve it (operation id -> handler).
FAMILIES: dict[str, tuple[Mapping[str, Handler], ...]] = {
    "reporting-v1": (reporting_v1.HANDLERS, odata.HANDLERS),
    "reporting-v2": (reporting_v2.HANDLERS, odata.HANDLERS),
    "grouping-mapping-v1": (grouping_mapping.HANDLERS,),
    "itwins-v1": (context.ITWINS_HANDLERS,),
    "imodels-v2": (context.IMODELS_HANDLERS,),
}
HANDLERS: dict[tuple[str, str], Handler] = {
    (family, op_id): handler
    for family, adapters in FAMILIES.items()
    for adapter in adapters
    for op_id, handler in adapter.items()
}
DEFAULT_USER_EMAIL = "sandbox.user@example.com"
_UNAUTHORIZED = (
    "Unauthorized",
    "Access denied due to invalid access_token. Make sure to provide a valid token for this API endpoint.",
)


def _user_from_token(token: str) -> str:
    """The `email` claim of a JWT-shaped token (unverified: the sandbox trusts its caller), else a fixed user."""
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            email = claims.get("email") or claims.get("preferred_username")
            if isinstance(email, str) and email:
                return email
        except (ValueError, TypeError):
            pass
    return DEFAULT_USER_EMAIL


def _authenticate(request: Request, sandbox: Sandbox, op: Operation) -> str:
    """The caller's email: a bearer token anywhere; on OData routes also an API key as Basic credentials."""
    header = request.headers.get("authorization")
    if header is None:
        raise SandboxError(401, "HeaderNotFound", "Header Authorization was not found in the request. Access denied.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and "apiKeyBasic" in op.auth_schemes and token:  # the spec's `security`
        email = api_key_user(sandbox.store, token, request.path_params.get("reportId", ""))
        if email is None:
            raise SandboxError(
                401,
                "Unauthorized",
                "The API key is not valid for this report, or it was revoked or "
                "has expired. Create a new one with create_api_key.",
            )
        return email
    if scheme.lower() != "bearer" or not token or (sandbox.token is not None and token != sandbox.token):
        raise SandboxError(401, *_UNAUTHORIZED)
    return _user_from_token(token)


def _coerce(op: Operation, name: str, raw: str, schema: dict[str, Any], invalid_code: str) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise SandboxError(422, invalid_code, f"'{raw}' is not a valid '{name}' value.", name) from None
    if kind == "boolean":
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise SandboxError(422, invalid_code, f"'{raw}' is not a valid '{name}' value.", name)
    return raw


def _query(call_op: Operation, request: Request, invalid_code: str) -> dict[str, Any]:
    given = {k.lower(): v for k, v in request.query_params.items()}
    values: dict[str, Any] = {}
    for param in call_op.parameters:
        if param.location != "query":
            continue
        raw = given.get(param.name.lower())
        if raw is None or raw == "":
            if param.required:
                raise SandboxError(422, invalid_code, f"Required parameter '{param.name}' is missing.", param.name)
            continue
        value = _coerce(call_op, param.name, raw, param.schema, invalid_code)
        found = problems(param.schema, value)
        if found:
            raise SandboxError(
                422, invalid_code, f"'{raw}' is not a valid '{param.name}' value: {found[0].message}.", param.name
            )
        values[param.name] = value
    return values


async def _body(op: Operation, request: Request, invalid_code: str) -> dict[str, Any]:
    if op.body_schema is None:
        return {}
    raw = await request.body()
    if not raw.strip():
        if op.body_required:
            raise SandboxError(422, invalid_code, "A JSON request body is required.", "body")
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise SandboxError(422, invalid_code, "The request body is not valid JSON.", "body") from None
    if not isinstance(data, dict):
        raise SandboxError(422, invalid_code, "The request body must be a JSON object.", "body")
    known = op.body_schema.get("properties", {})
    body = {k: v for k, v in data.items() if k in known}  # unknown fields are ignored, as the service does [I]
    found = problems(op.body_schema, body)
    if found:
        first = found[0]
        details = [
            {"code": "InvalidValue" if p.field else "MissingRequiredProperty", "message": str(p), "target": p.field}
            for p in found
        ]
        raise SandboxError(422, invalid_code, f"Invalid request body: {first}.", first.field or "body", details)
    return body


async def _serve(op: Operation, handler: Handler, sandbox: Sandbox, request: Request) -> Response:
    invalid_code = INVALID_REQUEST_CODES.get(op.family.name, "InvalidInsightsRequest")
    try:
        user = _authenticate(request, sandbox, op)
        if sandbox.record:
            body = (await request.body())[:500].decode(errors="replace")
            sandbox.store.record_request(now_iso(), request.method, request.url.path, user, body)
        call = Call(
            request=request,
            op=op,
            path={k: str(v) for k, v in request.path_params.items()},
            query=_query(op, request, invalid_code),
            body=await _body(op, request, invalid_code),
            store=sandbox.store,
            sandbox=sandbox,
            user_email=user,
        )
        result = handler(call)
        return await result if inspect.isawaitable(result) else result
    except SandboxError as exc:
        return error_response(exc, invalid_code)
    except Exception:
        log.exception("Sandbox failure in %s %s", op.method, op.full_path)
        return error_response(SandboxError(500, "InternalServerError", "The sandbox failed to handle the request."))


def _version(request: Request) -> str | None:
    """The API version a request asks for: `?api-version=` first (how Power BI calls), then the Accept header."""
    asked = request.query_params.get("api-version", "").strip().lower()
    if asked in ("v1", "v2"):
        return asked
    accept = request.headers.get("accept", "")
    for version in ("v2", "v1"):
        if f"itwin-platform.{version}+json" in accept:
            return version
    return None


def _endpoint(ops: list[tuple[Operation, Handler]], sandbox: Sandbox) -> Callable[[Request], Awaitable[Response]]:
    """One route for one (path, method); when several API versions share it, the request's version picks, and a
    request that names none gets the oldest (as the service answers an unversioned call)."""
    by_version = {op.family.accept.split("itwin-platform.")[-1].split("+")[0]: (op, h) for op, h in ops}
    default = by_version[min(by_version)]

    async def endpoint(request: Request) -> Response:
        op, handler = by_version.get(_version(request) or "", default) if len(ops) > 1 else ops[0]
        return await _serve(op, handler, sandbox, request)

    return endpoint


def _routes(catalog: Catalog, sandbox: Sandbox) -> list[Route]:
    grouped: dict[tuple[str, str], list[tuple[Operation, Handler]]] = {}
    for op in catalog:
        handler = HANDLERS.get(op.key)
        if handler is None:
            raise RuntimeError(f"The sandbox has no handler for {op.family.name} {op.operation_id} ({op.tool})")
        grouped.setdefault((op.full_path.rstrip("/") or "/", op.method), []).append((op, handler))
    routes: list[Route] = []
    # Literal segments before templated ones, as OpenAPI matching requires: `.../extractions` is not a mappingId.
    ordered = sorted(grouped.items(), key=lambda item: [(s.startswith("{"), s) for s in item[0][0].split("/")])
    for (path, method), ops in ordered:
        endpoint = _endpoint(ops, sandbox)
        names = "+".join(op.tool for op, _ in ops)
        for variant in (path, path + "/"):
            routes.append(Route(variant, endpoint, methods=[method], name=f"{names}:{variant}"))
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(SandboxError(405, "MethodNotAllowed", "The HTTP method is not allowed on this resource."))
    return error_response(SandboxError(exc.status_code, "ResourceNotFound", "The requested resource does not exist."))


def create_app(
    db_path: str = ":memory:",
    *,
    token: str | None = None,
    odata_page_size: int = 1000,
    record: bool = False,
    catalog: Catalog | None = None,
    limits: SandboxLimits | None = None,
) -> Starlette:
    """The sandbox as an ASGI app; its lifespan seeds the sample data and recovers interrupted jobs."""
    catalog = catalog or load_catalog()
    sandbox = Sandbox(
        db_path,
        token=token,
        odata_page_size=odata_page_size,
        record=record,
        limits=limits,
        base_paths={op.family.name: op.family.base_path for op in catalog},
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sandbox.start()
        try:
            yield
        finally:
            sandbox.close()

    app = Starlette(
        routes=_routes(catalog, sandbox),
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.sandbox = sandbox
    return app
