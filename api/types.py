"""Request value types shared by routes, strict where pydantic's defaults are lax.

pydantic reads a date from a Unix timestamp (``0`` is 1970-01-01) and from any year 1 to 9999; the
routes do date arithmetic on what they receive, and a client sending ``0`` almost surely meant
something else. So request dates are ``YYYY-MM-DD`` strings with years 1900 to 2100, and the
OpenAPI document says exactly that (``format: date`` and the pattern).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2100, 12, 31)
DATE_PATTERN = r"^(19\d\d|20\d\d|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
"""``YYYY-MM-DD`` from 1900 to 2100; pydantic then refuses days a month does not have."""
_DATE = re.compile(DATE_PATTERN)


def _iso_date_text(value: Any) -> Any:
    if isinstance(value, str) and _DATE.match(value):
        return value
    raise PydanticCustomError(
        "iso_date",
        "Input should be a date as YYYY-MM-DD from {first} to {last}",
        {"first": FIRST_DATE.isoformat(), "last": LAST_DATE.isoformat()},
    )


IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date_text),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
"""A request date: a ``YYYY-MM-DD`` string from 1900-01-01 to 2100-12-31 (422 naming the field
otherwise)."""
