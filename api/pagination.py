"""Keyset pagination with opaque cursors.

A cursor encodes the sort key of the last item served, so the next page starts strictly after it.
Unlike offsets, this stays correct when a new serving snapshot is swapped in between two pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from api.errors import ApiError, ErrorDetail

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")

Key = tuple[str, ...]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to fetch the next page; null on the last page."
    )
    limit: int = Field(description="The page size used.")


def encode_cursor(key: Key) -> str:
    """An opaque, URL-safe token for a sort key."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def invalid_cursor() -> ApiError:
    """The 422 for a cursor that did not come from a previous page."""
    detail = ErrorDetail(field="query.cursor", message="not a cursor from a previous page", type="cursor")
    return ApiError(422, "validation_error", "invalid request: query.cursor", [detail])


def decode_cursor(cursor: str, arity: int) -> Key:
    """The sort key inside ``cursor``; raises :func:`invalid_cursor` if it is not one of ours."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise invalid_cursor() from None
    if not (isinstance(key, list) and len(key) == arity and all(isinstance(k, str) for k in key)):
        raise invalid_cursor()
    return tuple(key)


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page; absent or empty: the first page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor or None)  # `?cursor=` is what a client sends for "none"


Pagination = Annotated[PageParams, Depends(page_params)]


def page_of(items: list[T], limit: int, key: Callable[[T], Key]) -> Page[T]:
    """A page from up to ``limit + 1`` fetched items: the extra one only signals that more exist."""
    more = len(items) > limit
    next_cursor = encode_cursor(key(items[limit - 1])) if more else None
    return Page(items=items[:limit], next_cursor=next_cursor, limit=limit)
