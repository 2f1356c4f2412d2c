"""The runner of long backtests and tuning runs: a bounded pool of worker threads in each API process.

A job is the API's inbox object (``stores/jobs.py``); the process that accepts it runs it at once in
its pool (``workers`` threads, one by default, so that a busy process still serves requests) and
every other process can answer for it from the lake. While an attempt runs, a heartbeat thread
rewrites its progress every ``heartbeat`` seconds. A job whose last sign of life is older than
``stale_after`` lost its worker (a killed process, a lost host): whoever reads it next queues it in
its own pool, which claims the next attempt when a thread is free and runs the job again from the
start; after ``max_attempts`` claimed attempts the next reader fails the job instead. So a job is
never stuck: it ends, or its next reader resumes or fails it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from domain.errors import UserError
from stores.jobs import Claim, Failure, JobKind, JobRequest, JobStore, JobView, Progress, Result
from stores.lake import Lake

log = logging.getLogger(__name__)

JobProgress = Callable[[int, int], None]
"""``progress(done, total)``: units (game days, folds) done so far."""
Handler = Callable[[Lake, str, Mapping[str, Any], JobProgress], dict[str, Any]]
"""``handler(lake, job_id, params, progress)`` runs a job and returns its report."""
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class JobLimits:
    workers: int = 1
    """Jobs run at once by one API process."""
    open_per_user: int = 2
    """Jobs a user may have queued or running; more is refused until one ends."""
    heartbeat_seconds: float = 10.0
    stale_after: dt.timedelta = dt.timedelta(seconds=60)
    """Six missed heartbeats: the worker is gone."""
    max_attempts: int = 3


class JobRunner:
    """Accept, run, and answer for jobs; ``handlers`` maps each job kind to what runs it."""

    def __init__(
        self, lake: Lake, handlers: Mapping[JobKind, Handler], clock: Clock, limits: JobLimits | None = None
    ) -> None:
        self.store = JobStore(lake)
        self.lake = lake
        self.handlers = handlers
        self.clock = clock
        self.limits = limits or JobLimits()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="oddsforge-job")
        self._queued: set[tuple[str, str]] = set()
        """Jobs waiting in or run by this process's pool (a reader does not queue them twice)."""
        self._lock = threading.Lock()

    def submit(self, user_id: str, job_id: str, kind: JobKind, params: dict[str, Any]) -> None:
        """Store the request, then run it in this process's pool."""
        if not self.store.submit(
            user_id, job_id, JobRequest(kind=kind, created_at=self.clock(), params=params)
        ):
            raise ValueError(f"job {job_id} exists already")
        self._queue(user_id, job_id)

    def status(self, user_id: str, job_id: str) -> JobView | None:
        """The job as its objects say; a job whose worker is gone is resumed here (or failed)."""
        view = self.store.read(user_id, job_id)
        if view is None or view.finished or not self._stale(view):
            return view
        if view.attempts >= self.limits.max_attempts:
            message = f"the job's worker stopped {view.attempts} times; submit it again"
            self.store.fail(user_id, job_id, Failure(failed_at=self.clock(), message=message))
            return self.store.read(user_id, job_id)
        self._queue(user_id, job_id)
        return view

    def close(self) -> None:
        """Stop taking work; a running attempt is left to end (or, with the process, to be resumed)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stale(self, view: JobView) -> bool:
        return self.clock() - view.heartbeat > self.limits.stale_after

    def _queue(self, user_id: str, job_id: str) -> None:
        with self._lock:
            if (user_id, job_id) in self._queued:
                return
            self._queued.add((user_id, job_id))
        self._pool.submit(self._work, user_id, job_id)

    def _work(self, user_id: str, job_id: str) -> None:
        """When a worker thread is free: claim the job's next attempt, unless it ended or another
        worker is on it (a claim is made only here, so a job waiting in a busy pool never looks like
        one whose worker died), and run it."""
        try:
            view = self.store.read(user_id, job_id)
            if view is None or view.finished or (view.claim is not None and not self._stale(view)):
                return
            if view.attempts >= self.limits.max_attempts:
                return  # the next reader fails it
            attempt = view.attempts
            if self.store.claim(user_id, job_id, attempt, Claim(claimed_at=self.clock(), worker=self.worker)):
                if attempt:
                    log.warning("job %s of %s: worker gone, attempt %d resumes it", job_id, user_id, attempt)
                self._attempt(view, attempt)
        finally:
            with self._lock:
                self._queued.discard((user_id, job_id))

    def _attempt(self, view: JobView, attempt: int) -> None:
        user_id, job_id = view.user_id, view.job_id
        state = {"done": 0, "total": 0}
        stop = threading.Event()

        def beat() -> None:
            progress = Progress(done=state["done"], total=state["total"], updated_at=self.clock())
            self.store.beat(user_id, job_id, attempt, progress)

        def heartbeat() -> None:
            while not stop.wait(self.limits.heartbeat_seconds):
                beat()

        def progress(done: int, total: int) -> None:
            state.update(done=done, total=total)

        beat()
        beating = threading.Thread(target=heartbeat, name=f"{job_id}-heartbeat", daemon=True)
        beating.start()
        try:
            report = self.handlers[view.request.kind](self.lake, job_id, view.request.params, progress)
        except Exception as exc:  # the job ends failed; the API stays up
            message = str(exc) if isinstance(exc, (UserError, ValueError)) else "internal error"
            if message == "internal error":
                log.exception("job %s of %s failed", job_id, user_id)
            self.store.fail(user_id, job_id, Failure(failed_at=self.clock(), message=message))
            return
        finally:
            stop.set()
            beating.join()
        beat()  # the last progress (all done), so the finished job shows it
        self.store.finish(user_id, job_id, Result(finished_at=self.clock(), report=report))
