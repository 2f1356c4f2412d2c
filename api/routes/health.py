"""Liveness and data freshness, without authentication (for load balancers and operators)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.clock import Now
from api.serving import Store

router = APIRouter(tags=["health"])


class SnapshotStatus(BaseModel):
    name: str = Field(description="File name of the serving snapshot in use.")
    published_at: dt.datetime
    age_seconds: float = Field(description="Seconds since the snapshot was published.")


class Health(BaseModel):
    status: Literal["ok", "no_snapshot"] = Field(
        description="`no_snapshot` until the pipeline publishes data (`oddsforge demo` or the ingest job)."
    )
    version: str
    snapshot: SnapshotStatus | None


@router.get("/health", summary="Service health and snapshot age")
def health(request: Request, store: Store, now: Now) -> Health:
    """Always 200 while the process serves requests; `status` says whether data is available."""
    info = store.info()
    snapshot = None
    if info is not None:
        age = (now - info.published_at).total_seconds()
        snapshot = SnapshotStatus(name=info.name, published_at=info.published_at, age_seconds=round(age, 3))
    return Health(status="ok" if snapshot else "no_snapshot", version=request.app.version, snapshot=snapshot)
