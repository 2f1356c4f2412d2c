"""Long backtests and tuning runs as jobs in the lake (``inbox/jobs/{user_id}/{job_id}/``).

The API writes a job's ``request.json`` (create-if-absent) and answers at once; a worker claims
attempt n (``attempt-{n}.json``, create-if-absent, so two workers never run one attempt), rewrites
``progress-{n}.json`` as a heartbeat while it runs, and ends the job with ``result.json`` or
``failed.json`` (create-if-absent: the first ending stays). Everything a reader needs is in these
objects, so any API worker answers for any job, and a job whose worker died shows a heartbeat that
stopped (:meth:`JobView.heartbeat`), which the next reader acts on (``services/jobs.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from stores.documents import document_bytes, read_document
from stores.lake import Lake
from stores.layout import job_key, job_prefix, parse_job_key, user_jobs_prefix

JobKind = Literal["backtest", "tune"]
JobState = Literal["queued", "running", "done", "failed"]


class JobRequest(BaseModel):
    kind: JobKind
    created_at: dt.datetime
    params: dict[str, Any]
    """What the kind's handler needs (a validated config payload, the span, ...), as JSON."""


class Claim(BaseModel):
    claimed_at: dt.datetime
    worker: str
    """``host:pid`` of the claiming process (for operators)."""


class Progress(BaseModel):
    done: int
    total: int
    updated_at: dt.datetime


class Result(BaseModel):
    finished_at: dt.datetime
    report: dict[str, Any]


class Failure(BaseModel):
    failed_at: dt.datetime
    message: str


@dataclass(frozen=True)
class JobView:
    """What a job's objects say now."""

    user_id: str
    job_id: str
    request: JobRequest
    attempts: int
    """Attempts claimed so far (the next claim is attempt number ``attempts``)."""
    claim: Claim | None
    """The latest attempt's claim."""
    progress: Progress | None
    """The latest attempt's progress."""
    result: Result | None
    failure: Failure | None

    @property
    def state(self) -> JobState:
        if self.result is not None:
            return "done"
        if self.failure is not None:
            return "failed"
        return "queued" if self.claim is None else "running"

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def heartbeat(self) -> dt.datetime:
        """The last sign of life: the request, the latest claim or its latest progress."""
        times = [self.request.created_at]
        times += [t.claimed_at for t in (self.claim,) if t is not None]
        times += [t.updated_at for t in (self.progress,) if t is not None]
        return max(times)


class JobStore:
    """A user's jobs in the lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def submit(self, user_id: str, job_id: str, request: JobRequest) -> bool:
        """Write the request (False if the job id exists already)."""
        return self.lake.put_new(job_key(user_id, job_id, "request"), document_bytes(request))

    def read(self, user_id: str, job_id: str) -> JobView | None:
        """The job's view from one listing of its folder; None if ``user_id`` has no such job."""
        parts = [k for key in self.lake.list_keys(job_prefix(user_id, job_id)) if (k := parse_job_key(key))]
        if not any(p.part == "request" for p in parts):
            return None
        attempts = [p.attempt for p in parts if p.part == "attempt" and p.attempt is not None]
        latest = max(attempts, default=None)
        names = {(p.part, p.attempt) for p in parts}

        def doc(kind: type[Any], part: Any, attempt: int | None = None) -> Any:
            return read_document(self.lake, job_key(user_id, job_id, part, attempt), kind)

        return JobView(
            user_id=user_id,
            job_id=job_id,
            request=doc(JobRequest, "request"),
            attempts=len(attempts),
            claim=None if latest is None else doc(Claim, "attempt", latest),
            progress=doc(Progress, "progress", latest) if ("progress", latest) in names else None,
            result=doc(Result, "result") if ("result", None) in names else None,
            failure=doc(Failure, "failed") if ("failed", None) in names else None,
        )

    def claim(self, user_id: str, job_id: str, attempt: int, claim: Claim) -> bool:
        """Take attempt ``attempt`` (False if another worker took it first)."""
        return self.lake.put_new(job_key(user_id, job_id, "attempt", attempt), document_bytes(claim))

    def beat(self, user_id: str, job_id: str, attempt: int, progress: Progress) -> None:
        self.lake.put_bytes(job_key(user_id, job_id, "progress", attempt), document_bytes(progress))

    def finish(self, user_id: str, job_id: str, result: Result) -> bool:
        return self.lake.put_new(job_key(user_id, job_id, "result"), document_bytes(result))

    def fail(self, user_id: str, job_id: str, failure: Failure) -> bool:
        return self.lake.put_new(job_key(user_id, job_id, "failed"), document_bytes(failure))

    def open_jobs(self, user_id: str) -> list[str]:
        """The user's jobs that have not ended (one listing)."""
        jobs: dict[str, bool] = {}
        for key in self.lake.list_keys(user_jobs_prefix(user_id)):
            if (parsed := parse_job_key(key)) is not None:
                ended = parsed.part in ("result", "failed")
                jobs[parsed.job_id] = jobs.get(parsed.job_id, False) or ended
        return sorted(job for job, ended in jobs.items() if not ended)
