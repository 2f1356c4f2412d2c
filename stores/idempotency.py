"""Idempotency keys: a retried creating request answered as the first one was, never run twice.

A client sends ``Idempotency-Key`` (as Stripe's API takes it) on a request that creates something;
if it never sees the answer (a timeout, a dropped connection, a restarted API), it sends the same
request with the same key again. The first request *claims* the key (``claim-000.json``,
create-if-absent, holding the request's fingerprint) before it runs and records its successful
answer (``answer.json``, create-if-absent) before replying. A later request with the key then gets:

- the recorded answer, when it is the same request (same fingerprint);
- a refusal, when it is another request: a key names one request;
- "in progress", while the claim is younger than :data:`LEASE` and unanswered;
- a fresh claim (attempt n+1) once an unanswered claim is older than :data:`LEASE`: the request
  that held it died with its process. Requests are bounded well below the lease once their body is
  in, so a live request never loses its claim.

A request that fails releases its claim (nothing was created; the client may retry with the same
key). Keys expire :data:`EXPIRY` after their first claim, when housekeeping removes them.
The one window left: a process killed between creating its object and recording its answer; the
retry then runs again, as it would without a key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from stores.documents import document_bytes, read_document
from stores.lake import Lake
from stores.layout import (
    IDEMPOTENCY,
    idempotency_answer_key,
    idempotency_claim_key,
    idempotency_prefix,
    parse_idempotency_key,
)

EXPIRY = dt.timedelta(hours=24)
"""How long a key names its request (Stripe's keys last 24 hours too)."""
LEASE = dt.timedelta(minutes=2)
"""How long an unanswered claim belongs to the request that made it."""
_ROUNDS = 3
"""Reads of a key's records per request: another round follows only a race lost to a concurrent
claim (the next round sees it) or the removal of an expired key."""


class Claim(BaseModel):
    fingerprint: str
    """SHA-256 of the method, path, query and body: what "the same request" means."""
    claimed_at: dt.datetime


class Answer(BaseModel):
    status_code: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class Claimed:
    """The key is this request's (attempt ``attempt``): run it, then :meth:`IdempotencyStore.answer`."""

    attempt: int


@dataclass(frozen=True)
class Replay:
    answer: Answer


@dataclass(frozen=True)
class Reused:
    """The key names another request."""


@dataclass(frozen=True)
class InProgress:
    retry_after: int
    """Seconds until the claim may be taken over."""


Outcome = Claimed | Replay | Reused | InProgress


class IdempotencyStore:
    """Claims and answers of idempotency keys in the lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def claim(self, user_id: str, digest: str, fingerprint: str, now: dt.datetime) -> Outcome:
        """What to do with a request carrying the key whose SHA-256 is ``digest``."""
        for _ in range(_ROUNDS):
            records = self._records(user_id, digest)
            if records is None:  # a claim was released while being read
                continue
            claims, answered = records
            first = claims[min(claims)] if claims else None
            if first is not None and now - first.claimed_at >= EXPIRY:
                self._forget(user_id, digest)
                continue
            if answered:
                if first is not None and first.fingerprint != fingerprint:
                    return Reused()
                answer = read_document(self.lake, idempotency_answer_key(user_id, digest), Answer)
                return Replay(answer)
            attempt = max(claims) + 1 if claims else 0
            if claims:
                latest = claims[max(claims)]
                if latest.fingerprint != fingerprint:
                    return Reused()
                held = latest.claimed_at + LEASE - now
                if held > dt.timedelta(0):
                    return InProgress(retry_after=max(1, int(held.total_seconds())))
            mine = Claim(fingerprint=fingerprint, claimed_at=now)
            if self.lake.put_new(idempotency_claim_key(user_id, digest, attempt), document_bytes(mine)):
                return Claimed(attempt)
        raise RuntimeError(f"idempotency key {digest} of {user_id}: no decision after {_ROUNDS} rounds")

    def answer(self, user_id: str, digest: str, answer: Answer) -> None:
        """Record the claimed request's answer (the first one recorded stays)."""
        self.lake.put_new(idempotency_answer_key(user_id, digest), document_bytes(answer))

    def release(self, user_id: str, digest: str, claimed: Claimed) -> None:
        """Give a failed request's claim up, so the same key may be sent again at once."""
        self.lake.delete(idempotency_claim_key(user_id, digest, claimed.attempt))

    def prune(self, now: dt.datetime) -> int:
        """Remove the keys first claimed over :data:`EXPIRY` ago (by their objects' modification
        times: no document is read); how many."""
        oldest: dict[tuple[str, str], float] = {}
        for key, modified in self.lake.list_objects(IDEMPOTENCY):
            if (parsed := parse_idempotency_key(key)) is not None:
                pair = (parsed.user_id, parsed.digest)
                oldest[pair] = min(modified, oldest.get(pair, modified))
        expired = [pair for pair, modified in oldest.items() if modified <= (now - EXPIRY).timestamp()]
        for user_id, digest in expired:
            self._forget(user_id, digest)
        return len(expired)

    def _records(self, user_id: str, digest: str) -> tuple[dict[int, Claim], bool] | None:
        """The key's claims by attempt, and whether it was answered; None if a claim vanished
        between the listing and its reading."""
        claims: dict[int, Claim] = {}
        answered = False
        for key in self.lake.list_keys(idempotency_prefix(user_id, digest)):
            parsed = parse_idempotency_key(key)
            if parsed is None:
                continue
            if parsed.attempt is None:
                answered = True
                continue
            try:
                claims[parsed.attempt] = read_document(self.lake, key, Claim)
            except Exception:
                if self.lake.exists(key):
                    raise
                return None
        return claims, answered

    def _forget(self, user_id: str, digest: str) -> None:
        for key in list(self.lake.list_keys(idempotency_prefix(user_id, digest))):
            self.lake.delete(key)
