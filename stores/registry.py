"""The registry's inbox: immutable model version objects and archive markers in the lake.

Keys follow the seed's key design (``USER_MODEL#{user_id}#{model_id}`` / ``CONFIG#v{version}``):
one object per version and an archive marker under ``inbox/models/{user_id}/{model_id}/``
(``stores/layout.py``).

Objects are only ever created (``Lake.put_new``), never overwritten or deleted: two updates that
both want version n+1 race on one create-if-absent and exactly one wins. Model ids encode their
owner (``domain.models.registry``), so a model's objects are one listing away from its id. The API reads
here, so creators read their own writes at once; the ``model_versions`` asset turns the objects
into a table.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from domain.models.config import MemberInfo, ModelConfig
from domain.models.registry import Status, is_public, owner_of, version_bytes, version_record
from domain.models.tiers import ModelCounts
from stores.lake import Lake
from stores.layout import (
    MODELS_INBOX,
    model_archived_key,
    model_prefix,
    model_version_key,
    parse_model_key,
    user_models_prefix,
)

_READ_THREADS = 16
"""Parallel GETs when many objects are read at once (a full rebuild on S3)."""


@dataclass(frozen=True)
class ModelState:
    """A model's versions and archive marker as listed in the inbox."""

    model_id: str
    versions: tuple[int, ...]
    archived: bool

    @property
    def latest(self) -> int:
        return self.versions[-1]

    @property
    def status(self) -> Status:
        return "archived" if self.archived else "active"


@dataclass(frozen=True)
class StoredVersion:
    payload: dict[str, Any]
    """The version object as stored: the seed-shaped config (shared between reads: never mutate)."""
    key: str
    status: Status

    def row(self) -> dict[str, Any]:
        """Its ``model_versions`` row, with the model's current status."""
        return version_record(self.payload, self.key) | {"status": self.status}


def _states(keys: Iterable[str]) -> list[ModelState]:
    """Models (with at least one version) named by ``keys``, sorted by model id."""
    versions: dict[str, list[int]] = {}
    archived: set[str] = set()
    for key in keys:
        parsed = parse_model_key(key)
        if parsed is None:
            continue
        if parsed.version is None:
            archived.add(parsed.model_id)
        else:
            versions.setdefault(parsed.model_id, []).append(parsed.version)
    return [
        ModelState(model_id, tuple(sorted(found)), model_id in archived)
        for model_id, found in sorted(versions.items())
    ]


class RegistryStore:
    """Model versions in the inbox of one lake."""

    def __init__(self, lake: Lake, cached_versions: int = 4096) -> None:
        self.lake = lake
        # Version objects are created once and never change, so a parsed one stays exact.
        self._payload = lru_cache(maxsize=cached_versions)(self._load_payload)
        self._listed: dict[str, tuple[tuple[int, int], ModelState | None]] = {}
        self._max_listed = cached_versions
        self._lock = threading.Lock()

    def _load_payload(self, key: str) -> dict[str, Any]:
        return json.loads(self.lake.get_bytes(key))

    # -- reads ------------------------------------------------------------------------------------
    def state(self, model_id: str) -> ModelState | None:
        """The model's versions and status; None if no such model (or not a model id).

        Listed on every call, so every writer's version or archive marker counts at once, except
        where the lake vouches that the model's folder has not changed since the last listing
        (:meth:`Lake.folder_stamp`, local lakes): then that listing is reused."""
        if owner_of(model_id) is None:
            return None
        prefix = model_prefix(model_id)
        stamp = self.lake.folder_stamp(prefix)  # before listing: a write in between changes it
        if stamp is not None and (seen := self._listed.get(model_id)) is not None and seen[0] == stamp:
            return seen[1]
        found = _states(self.lake.list_keys(prefix))
        state = found[0] if found else None
        if stamp is not None:
            with self._lock:
                self._listed[model_id] = (stamp, state)
                if len(self._listed) > self._max_listed:
                    self._listed.pop(next(iter(self._listed)))
        return state

    def models_of(self, user_id: str) -> list[ModelState]:
        """Every model ``user_id`` owns, sorted by model id."""
        found = _states(self.lake.list_keys(user_models_prefix(user_id)))
        # A user id is a key segment only if it is a valid owner ("a/b" must not list b's models).
        return [state for state in found if owner_of(state.model_id) == user_id]

    def model_counts(self, user_id: str, excluding: str | None = None) -> ModelCounts:
        """What counts against ``user_id``'s tier limits (``domain.models.tiers``): their models that
        are not archived, and those whose latest version is public; ``excluding`` one model (the
        one being updated)."""
        states = [s for s in self.models_of(user_id) if not s.archived and s.model_id != excluding]
        public = sum(is_public(self.read(s, s.latest).payload) for s in states)
        return ModelCounts(active=len(states), public=public)

    def member(self, model_id: str) -> MemberInfo | None:
        """What validating an ensemble needs of a model it uses (``MemberLookup``); None when there is
        no such model or it is archived (nobody may build on it any more)."""
        state = self.state(model_id)
        if state is None or state.archived:
            return None
        payload = self.read(state, state.latest).payload
        sources = payload["data_sources"].values()
        return MemberInfo(
            model_id=model_id,
            owner_user_id=payload["creator_user_id"],
            public=is_public(payload),
            versions=state.versions,
            sport=payload["sport"],
            market=payload.get("market", ModelConfig.model_fields["market"].default),
            members=tuple(s["model_id"] for s in sources if isinstance(s, dict) and "model_id" in s),
        )

    def read(self, state: ModelState, version: int) -> StoredVersion:
        """One stored version of a listed model."""
        key = model_version_key(state.model_id, version)
        return StoredVersion(self._payload(key), key, state.status)

    def inbox_keys(self) -> Iterator[str]:
        """Every registry object, for a full rebuild of the table."""
        return (key for key in self.lake.list_keys(MODELS_INBOX) if parse_model_key(key) is not None)

    def load(self, keys: Iterable[str]) -> tuple[list[dict[str, Any]], set[str]]:
        """The ``model_versions`` rows of the version objects among ``keys`` and the ids of the models
        whose archive markers are among them. A key that is not a registry object raises."""
        parsed = {key: parse_model_key(key) for key in dict.fromkeys(keys)}
        if bad := [key for key, p in parsed.items() if p is None]:
            raise ValueError(f"not model registry objects: {', '.join(bad)}")
        version_keys = [key for key, p in parsed.items() if p is not None and p.version is not None]
        archived = {p.model_id for p in parsed.values() if p is not None and p.version is None}
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            blobs = list(pool.map(self.lake.get_bytes, version_keys))
        records = [
            version_record(json.loads(blob), key) for key, blob in zip(version_keys, blobs, strict=True)
        ]
        return records, archived

    # -- writes (create-if-absent only) -----------------------------------------------------------
    def create_version(self, config: ModelConfig) -> bool:
        """Store a new version; False if that version already exists (a concurrent writer won)."""
        return self.lake.put_new(model_version_key(config.model_id, config.version), version_bytes(config))

    def archive(self, model_id: str, archived_by: str, at: dt.datetime) -> bool:
        """Mark the model archived; False if it already was (archiving is idempotent)."""
        marker = {"model_id": model_id, "archived_by": archived_by, "archived_at": at.isoformat()}
        return self.lake.put_new(model_archived_key(model_id), json.dumps(marker, sort_keys=True).encode())
