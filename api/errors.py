"""One JSON error shape for every failure, so clients parse errors in one place.

``{"error": {"code": "not_found", "message": "...", "details": [{"field": "query.date", ...}]}}``
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `query.limit`.")
    message: str
    type: str = Field(description="Machine-readable reason, e.g. `less_than_equal`.")


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`, `validation_error`.")
    message: str = Field(description="Human-readable explanation.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: ErrorInfo


class ApiError(HTTPException):
    """An HTTP error with an explicit error code (otherwise the code follows the status)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.details = details or []


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def _code_for(status_code: int) -> str:
    return _CODES.get(status_code, "internal_error" if status_code >= 500 else "error")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # Routing errors (unknown path, wrong method) arrive here too, with Starlette's plain detail.
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 400 and not isinstance(exc, ApiError):
        # The routes raise ApiError; a bare 400 is the framework failing to read the body (JSON
        # that is not UTF-8, a broken multipart form): the 422 every route documents for a bad body.
        detail = ErrorDetail(field="body", message=f"unreadable body: {message}", type="body_invalid")
        return _invalid([detail])
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request, (headers or {}).get("Allow", ""))}
    return error_response(
        exc.status_code,
        getattr(exc, "code", None) or _code_for(exc.status_code),
        message,
        getattr(exc, "details", None),
        headers,
    )


_HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}


def _allowed_methods(request: Request, fallback: str) -> str:
    """The methods the OpenAPI document lists for the path the router picked (its 405 names only
    those of the first route of that path; ``fallback`` for routes outside the document)."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    documented = request.app.openapi()["paths"].get(path, {}) if path else {}
    return ", ".join(method.upper() for method in documented if method.upper() in _HTTP_METHODS) or fallback


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _detail(err: dict[str, Any]) -> ErrorDetail:
    loc = tuple(err.get("loc", ()))
    if err["type"] == "json_invalid":  # FastAPI puts the character offset where the field name goes
        why = err.get("ctx", {}).get("error", "malformed")
        return ErrorDetail(
            field="body", message=f"not valid JSON: {why} at character {loc[-1]}", type="json_invalid"
        )
    return ErrorDetail(field=_field_path(loc), message=err["msg"], type=err["type"])


def _invalid(details: list[ErrorDetail]) -> JSONResponse:
    fields = ", ".join(d.field for d in details)
    return error_response(422, "validation_error", f"invalid request: {fields}", details)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return _invalid([_detail(err) for err in exc.errors()])


class UnhandledErrorMiddleware:
    """Answer an unhandled exception with a bare 500 in the error shape and log the traceback here.

    Starlette's own fallback re-raises after responding, which makes uvicorn drop the keep-alive
    connection under the client; catching here ends the request normally. Internals never reach
    the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:  # too late for an error response: let the server abort the connection
                raise
            await error_response(500, "internal_error", "internal server error")(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Route HTTP errors, validation errors and unhandled exceptions to the one error shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_middleware(UnhandledErrorMiddleware)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or expired bearer token."},
    422: {
        "model": ErrorBody,
        "description": "Invalid request parameters or an unreadable body (malformed JSON or form); "
        "`details` names each field (`body` for the body as a whole).",
    },
    500: {"model": ErrorBody, "description": "Unexpected server error."},
    503: {"model": ErrorBody, "description": "No data published yet (`code` is `no_snapshot`)."},
}
"""OpenAPI entries shared by every data route."""
