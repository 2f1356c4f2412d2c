"""Every request bounded before the app reads it: the token first, a body limit per route, a read
rate limit per user.

FastAPI reads and parses a route's body before it resolves the route's dependencies, the token
check among them: a 100 MB JSON body to ``POST /models`` was parsed, then answered 422, before the
token was looked at. ``RequestGuard`` is a plain ASGI middleware (``BaseHTTPMiddleware`` would run
each request in a task of its own and buffer streamed bodies) that acts before the app:

* Reads (GET, HEAD), except ``/health``: count against the caller's read limit
  (``api/rate_limit.py``), keyed by the verified user or, without a valid token, by the client
  address; over it, ``429 read_rate_limited`` with ``Retry-After``. The route does not verify the
  token again (``current_user`` keeps it for the request), and reads are not routed here: a second
  routing would cost the hot path more than the limit itself.
* Every other method: the route is found; when it needs a user the bearer token is checked and a
  missing or bad one is a 401 before any byte of the body is read, whatever its size. A declared
  ``Content-Length`` over the route's limit is then a 413 at once, and the body is counted as the
  app reads it, with ``413 payload_too_large`` as soon as it passes the limit: the app never holds
  more than the limit plus one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import HTTPBearer
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import current_user
from api.errors import ApiError, error_response
from api.rate_limit import ReadLimiter

JSON_BODY_BYTES = 65_536
"""A route's body limit unless ``BODY_LIMITS`` names the route. The small JSON bodies (subscriptions,
runs, backtests, dataset edits) stay under 25 KB even with their 2,000-character descriptions
written as JSON escapes."""

CONFIG_BODY_BYTES = 1_048_576
"""The body limit of ``POST /models`` and ``PUT /models/{model_id}``. A config itself is at most
64 KiB as compact UTF-8 JSON (``domain/models/config.py``), but a client may send it indented and
with ``\\u`` escapes, up to about three times larger; bodies up to 1 MiB reach the config check, which
answers 422 naming the field that is too long, and larger ones are refused unread."""

BODY_LIMITS: dict[tuple[str, str], int | None] = {
    ("POST", "/models"): CONFIG_BODY_BYTES,
    ("PUT", "/models/{model_id}"): CONFIG_BODY_BYTES,
    ("POST", "/backtests"): CONFIG_BODY_BYTES,
    # Uploads count their own bodies against the deployment's file limit (100 MB and the form's
    # fields) and answer `file_too_large` (api/routes/datasets.py); None leaves them to it.
    ("POST", "/datasets"): None,
    ("POST", "/datasets/validate"): None,
    ("POST", "/datasets/{dataset_id}/refresh"): None,
}
"""Body limits in bytes by (method, path) where ``JSON_BODY_BYTES`` does not fit. A route that reads
its body itself (``POST /webhooks/stripe``: at most 1 MB, as Stripe's events are a few KB) is not
limited here, nor one that takes no body (nothing reads it)."""

READS = frozenset({"GET", "HEAD"})
UNLIMITED_READS = frozenset({"/health"})
"""Paths whose reads are never limited: load balancers and monitors poll them, and they hold no
user's data."""

_bearer = HTTPBearer(auto_error=False)
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def install_request_guard(app: FastAPI) -> None:
    """Put the guard in front of ``app`` (with the read limit of ``app.state.settings``) and document
    its answers in the OpenAPI document. Install it before the error handlers, so that they enclose it."""
    settings = app.state.settings
    app.state.read_limiter = (
        ReadLimiter(settings.read_limit, settings.read_window_seconds) if settings.read_limit else None
    )
    app.add_middleware(RequestGuard)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_limits(generate(), app.routes, app.state.read_limiter)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass(frozen=True)
class _BodyRoute:
    context: RouteContext
    path: str
    authenticated: bool
    limits: dict[str, int | None]
    """Body limit by method; None where the route reads no body or counts its own."""


class RequestGuard:
    """ASGI middleware: authentication, body limits and the read limit ahead of the app (see the
    module notes). Needs ``app.state.read_limiter`` (``install_request_guard`` sets it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[_BodyRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in READS:
            refusal = await _read_refusal(scope)
        else:
            refusal, receive = await self._body_refusal(scope, receive)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            response = error_response(
                refusal.status_code, refusal.code, str(refusal.detail), headers=dict(refusal.headers or {})
            )
            await response(scope, receive, send)

    async def _body_refusal(self, scope: Scope, receive: Receive) -> tuple[ApiError | None, Receive]:
        """The 401 or 413 that ``scope`` gets before its body is read, or the ``receive`` that counts it."""
        route = self._route(scope)
        if route is None:  # no such route: the router answers 404 or 405 without reading the body
            return None, receive
        request = Request(scope)
        if route.authenticated:
            try:
                await current_user(request, await _bearer(request))
            except ApiError as exc:
                return exc, receive
        method = scope["method"]
        limit = route.limits[method]
        if limit is None:
            return None, receive
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _too_large(method, route.path, limit), receive
        return None, _counted(receive, method, route.path, limit)

    def _route(self, scope: Scope) -> _BodyRoute | None:
        """The route the router will pick for ``scope``, when it is one with a body."""
        if self._routes is None:
            self._routes = list(_body_routes(scope["app"].routes))
        for route in self._routes:
            if route.context.matches(scope)[0] is Match.FULL:
                return route
        return None


async def _read_refusal(scope: Scope) -> ApiError | None:
    """The 429 for a read over its caller's limit (the read is counted otherwise)."""
    limiter: ReadLimiter | None = scope["app"].state.read_limiter
    if limiter is None or scope["path"] in UNLIMITED_READS:
        return None
    request = Request(scope)
    credentials = await _bearer(request)
    try:
        key = "user:" + await current_user(request, credentials)
    except ApiError:  # no valid token: the route answers 401 if it needs one
        key = "addr:" + (request.client.host if request.client else "")
    wait = limiter.wait(key)
    if not wait:
        return None
    seconds = math.ceil(wait)
    return ApiError(
        429,
        "read_rate_limited",
        f"read rate limit of {_describe(limiter)} reached; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _counted(receive: Receive, method: str, path: str, limit: int) -> Receive:
    """``receive`` that raises a 413 once the body passes ``limit`` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(method, path, limit)
        return message

    return counted


def _too_large(method: str, path: str, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body of {method} {path} is limited to {limit:,} bytes")


def _describe(limiter: ReadLimiter) -> str:
    return f"{limiter.requests:,} reads per {limiter.seconds:g} s per user"


def _body_routes(routes: Sequence[BaseRoute]) -> Iterator[_BodyRoute]:
    """The routes that answer a method other than GET and HEAD, in the router's order."""
    for context in iter_route_contexts(routes):
        dependant = getattr(context, "dependant", None)
        if dependant is not None and (context.methods or set()) - READS:
            limits = {method: _body_limit(context, method) for method in context.methods or ()}
            yield _BodyRoute(context, context.path_format or "", current_user in _calls(dependant), limits)


def _body_limit(context: RouteContext, method: str) -> int | None:
    if getattr(context, "body_field", None) is None:
        return None
    return BODY_LIMITS.get((method, context.path_format or ""), JSON_BODY_BYTES)


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _document_limits(
    schema: dict[str, Any], routes: Sequence[BaseRoute], limiter: ReadLimiter | None
) -> None:
    """Add the guard's 429 to every limited read and its 413 to every route with a body it limits,
    where the route does not document them itself."""
    for context in iter_route_contexts(routes):
        operations = schema["paths"].get(context.path_format, {})
        for method in context.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            limit = _body_limit(context, method)
            if method in READS and limiter is not None and context.path_format not in UNLIMITED_READS:
                responses.setdefault("429", _read_limited_doc(limiter))
            elif method not in READS and limit is not None:
                responses.setdefault(
                    "413",
                    {
                        "description": f"`payload_too_large`: a body over {limit:,} bytes.",
                        "content": _ERROR_BODY,
                    },
                )


def _read_limited_doc(limiter: ReadLimiter) -> dict[str, Any]:
    return {
        "description": f"`read_rate_limited`: over the read rate limit ({_describe(limiter)}, in each "
        "worker process).",
        "headers": {
            "Retry-After": {
                "description": "Seconds until the next read is allowed.",
                "schema": {"type": "integer"},
            }
        },
        "content": _ERROR_BODY,
    }
