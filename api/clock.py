"""The API's one clock: ``app.state.clock``, a callable giving an aware UTC datetime.

``create_app`` sets it to :func:`utc_now`; tests replace it to move time. Every route and dependency
that needs the time takes :data:`Now`, read once per request, so one request sees one instant.
(Monotonic timers that measure durations are not clocks in this sense.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def request_time(request: Request) -> dt.datetime:
    """FastAPI dependency: the app's clock, read once for the request."""
    clock: Clock = request.app.state.clock
    return clock()


Now = Annotated[dt.datetime, Depends(request_time)]
