"""The ``Idempotency-Key`` header of the routes that create objects (``stores/idempotency.py``).

A route takes :data:`Idempotent`; without the header it is a no-op. With it, the route first
returns ``idem.replay`` when there is one (the first request's answer, with ``Idempotent-Replayed:
true``), and passes its result through ``idem.answer(...)``, which records it::

    def create_thing(..., idem: Idempotent) -> Thing:
        if idem.replay is not None:
            return idem.replay
        ...
        return idem.answer(thing)

The same key with another request (method, path, query and body, as parsed: JSON compared as data,
form fields and files by content) is 422 naming the header; a retry while the first request still
runs is 409 ``idempotency_key_in_use`` with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import CurrentUser
from api.clock import Now
from api.errors import ApiError, ErrorDetail
from stores.idempotency import Answer, Claimed, IdempotencyStore, InProgress, Replay, Reused

HEADER = "Idempotency-Key"
FIELD = f"header.{HEADER}"
_CHUNK = 1 << 20

Result = TypeVar("Result")


@dataclass
class Idempotency:
    """One request's key: what to replay, or how to record the answer."""

    replay: JSONResponse | None = None
    recorder: Callable[[Any], None] | None = None
    recorded: bool = False

    def answer(self, result: Result) -> Result:
        """Record ``result`` (the route's return value, with the status code and ``Location`` the
        route set) as the answer to replay; returns it unchanged."""
        if self.recorder is not None:
            self.recorder(result)
            self.recorded = True
        return result


async def _fingerprint(request: Request) -> str:
    """SHA-256 of what makes two requests the same: method, path, query and body as parsed."""
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()  # parsed already for the route: this is FastAPI's cached form
        for name, value in sorted(form.multi_items(), key=lambda item: item[0]):
            digest.update(f"\n{name}=".encode())
            if isinstance(value, UploadFile):
                digest.update(f"file:{value.filename}:".encode())
                while chunk := await value.read(_CHUNK):
                    digest.update(chunk)
                await value.seek(0)
            else:
                digest.update(value.encode())
        return digest.hexdigest()
    body = await request.body()
    try:
        digest.update(json.dumps(json.loads(body), sort_keys=True).encode())
    except ValueError:
        digest.update(body)
    return digest.hexdigest()


async def idempotency(
    request: Request,
    response: Response,
    user: CurrentUser,
    now: Now,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            description="Any unique string (a UUID): a retry with the same key and the same request "
            "gets the first answer instead of creating a second object, for 24 hours. The same key "
            "with another request is 422; a retry while the first is still running is 409.",
        ),
    ] = None,
) -> AsyncIterator[Idempotency]:
    """FastAPI dependency: the request's :class:`Idempotency`; a failed request gives its key up."""
    if key is None:
        yield Idempotency()
        return
    store = IdempotencyStore(request.app.state.lake)
    digest = hashlib.sha256(key.encode()).hexdigest()
    outcome = await run_in_threadpool(store.claim, user, digest, await _fingerprint(request), now)
    if isinstance(outcome, Replay):
        answer = outcome.answer
        headers = answer.headers | {"Idempotent-Replayed": "true"}
        yield Idempotency(replay=JSONResponse(answer.body, status_code=answer.status_code, headers=headers))
        return
    if isinstance(outcome, Reused):
        detail = ErrorDetail(
            field=FIELD,
            message="this key was sent with another request in the last 24 hours; use a new key",
            type="idempotency_key_reused",
        )
        raise ApiError(422, "idempotency_key_reused", f"invalid request: {FIELD}", [detail])
    if isinstance(outcome, InProgress):
        raise ApiError(
            409,
            "idempotency_key_in_use",
            f"a request with this {HEADER} is still running; retry shortly",
            headers={"Retry-After": str(outcome.retry_after)},
        )
    claimed: Claimed = outcome
    default_status = getattr(request.scope.get("route"), "status_code", None) or 200

    def record(result: Any) -> None:
        headers = {"Location": response.headers["location"]} if "location" in response.headers else {}
        answer = Answer(
            status_code=response.status_code or default_status, body=jsonable_encoder(result), headers=headers
        )
        store.answer(user, digest, answer)

    idem = Idempotency(recorder=record)
    try:
        yield idem
    finally:
        if not idem.recorded:
            await run_in_threadpool(store.release, user, digest, claimed)


Idempotent = Annotated[Idempotency, Depends(idempotency)]
