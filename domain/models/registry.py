"""The model registry's rules: model ids, immutable version objects, the ``model_versions`` table and
who may read a model.

A model is a sequence of immutable versions (SPEC section 3); each version is one JSON object, the
seed-shaped config (:meth:`ModelConfig.to_payload`) with the fields the server owns filled in.

Model ids encode their owner: ``{user_id}--{slug}-{6 hex}``, e.g. ``user123--momentum-3fa9c1``. So
the API finds a model's objects from its id alone (one listing, no index object that could
disagree with the versions). The owner is everything before the *last* ``--``: the part after it
(a lowercase slug of the name and the entropy) never contains ``--``, so any user id allowed as a
config ``Identifier`` parses back, even one containing ``--`` or ending in ``-``. A model id is an
``Identifier`` itself (at most 128 characters), which leaves user ids of up to 118 characters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import polars as pl
from pydantic import TypeAdapter, ValidationError

from domain.errors import UserError
from domain.models.config import Identifier, ModelConfig, parse_model_config
from domain.tables.schemas import UTC_TS, conform

Status = Literal["active", "archived", "suspended"]
"""``archived``: its owner deleted it; ``suspended``: the marketplace pulled it (SPEC section 6)."""

MODEL_ID_MAX = 128
"""A model id is a config ``Identifier``."""
SLUG_MAX = 32
ENTROPY_BYTES = 3
"""Six hex digits: a fresh id collides only with the same owner's ids of the same slug, and the
creator retries on the (create-if-absent) clash."""
_SEPARATOR = "--"
_TAIL = re.compile(rf"[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{{{2 * ENTROPY_BYTES}}}")
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)

SERVER_FIELDS = ("model_id", "creator_user_id", "version", "created_at", "updated_at")
"""Set by the server on every version; a request body's values for them are ignored, so a client
may send back what it read."""

MODEL_VERSIONS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "owner_user_id": pl.String(),
    "name": pl.String(),
    "description": pl.String(),
    "sport": pl.String(),
    "bet_type": pl.String(),
    "market": pl.String(),
    "public": pl.Boolean(),
    "price_cents": pl.Int64(),
    "trial_days": pl.Int32(),
    "status": pl.String(),
    "created_at": UTC_TS,
    "config_json": pl.String(),
    "inbox_key": pl.String(),
}
"""One row per model version. ``created_at`` is when *this version* was created (the config's
``updated_at``); ``status`` is the model's current status, the same on all of its versions."""


class UnusableUserIdError(UserError, ValueError):
    """The caller's user id cannot be part of model ids and object keys."""


# ---- ids ----------------------------------------------------------------------------------------


def slugify(name: str, max_length: int = SLUG_MAX) -> str:
    """A lowercase ASCII slug of ``name`` (``"Momentum Model!"`` -> ``momentum-model``), ``model`` if
    nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:max_length].rstrip("-")
    return slug or "model"[:max_length]


def check_user_id(user_id: str) -> str:
    """``user_id`` if it can own models, else :class:`UnusableUserIdError` saying why."""
    budget = MODEL_ID_MAX - len(_SEPARATOR) - 1 - 2 * ENTROPY_BYTES
    try:
        _IDENTIFIER.validate_python(user_id)
    except ValidationError:
        raise UnusableUserIdError(
            f"user id {user_id!r} cannot own models: user ids start with a letter or digit and use "
            "only letters, digits and _ . @ | : + -"
        ) from None
    if len(user_id) >= budget:
        raise UnusableUserIdError(f"user id {user_id!r} cannot own models: at most {budget - 1} characters")
    return user_id


def new_model_id(user_id: str, name: str, entropy: bytes) -> str:
    """A fresh model id for ``user_id``'s model called ``name``; ``entropy`` is ENTROPY_BYTES random
    bytes from the caller (domain code reads no randomness)."""
    if len(entropy) != ENTROPY_BYTES:
        raise ValueError(f"entropy must be {ENTROPY_BYTES} bytes, got {len(entropy)}")
    check_user_id(user_id)
    room = MODEL_ID_MAX - len(user_id) - len(_SEPARATOR) - 1 - 2 * ENTROPY_BYTES
    return f"{user_id}{_SEPARATOR}{slugify(name, min(SLUG_MAX, room))}-{entropy.hex()}"


def owner_of(model_id: str) -> str | None:
    """The owner's user id encoded in ``model_id``; None if it is not a model id (so a lookup of a
    malformed id is a plain 'not found')."""
    owner, separator, tail = model_id.rpartition(_SEPARATOR)
    if not separator or len(model_id) > MODEL_ID_MAX or not _TAIL.fullmatch(tail):
        return None
    try:
        return _IDENTIFIER.validate_python(owner)
    except ValidationError:
        return None


# ---- version objects ----------------------------------------------------------------------------


def build_version(
    body: Mapping[str, Any],
    *,
    model_id: str,
    owner_user_id: str,
    version: int,
    created_at: dt.datetime,
    updated_at: dt.datetime,
) -> ModelConfig:
    """Version ``version`` of a model from a request body; raises ``ConfigError`` naming each field.

    ``created_at`` is the model's creation time (carried by every version), ``updated_at`` this
    version's.
    """
    server = {
        "model_id": model_id,
        "creator_user_id": owner_user_id,
        "version": version,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    return parse_model_config({k: v for k, v in body.items() if k not in SERVER_FIELDS} | server)


def version_bytes(config: ModelConfig) -> bytes:
    """The immutable object stored for a version: the seed-shaped payload, canonical JSON."""
    return json.dumps(config.to_payload(), sort_keys=True, separators=(",", ":")).encode()


def is_public(payload: Mapping[str, Any]) -> bool:
    """Whether a stored version is shared (``sharing.public``), read as written."""
    return bool(payload["sharing"]["public"])


def version_record(payload: Mapping[str, Any], inbox_key: str) -> dict[str, Any]:
    """The ``model_versions`` row of a stored version (status ``active``; archive markers change it).

    Reads the stored payload as written (it was validated then), so a later change of the validation
    rules never makes history unreadable.
    """
    sharing = payload["sharing"]
    return {
        "model_id": payload["model_id"],
        "version": payload["version"],
        "owner_user_id": payload["creator_user_id"],
        "name": payload["name"],
        "description": payload.get("description", ""),
        "sport": payload["sport"],
        "bet_type": payload["bet_type"],
        "market": payload["market"],
        "public": is_public(payload),
        "price_cents": sharing["price_cents"],
        "trial_days": sharing["trial_days"],
        "status": "active",
        "created_at": dt.datetime.fromisoformat(payload["updated_at"]),
        "config_json": json.dumps(payload, sort_keys=True, separators=(",", ":")),
        "inbox_key": inbox_key,
    }


# ---- the table ----------------------------------------------------------------------------------


def merge_model_versions(
    existing: pl.DataFrame, records: Sequence[Mapping[str, Any]], archived_model_ids: Collection[str]
) -> pl.DataFrame:
    """``existing`` with ``records`` upserted by (model_id, version) and every version of an archived
    model marked ``archived``. Merging the same records again gives the same table (idempotent);
    a full rebuild is a merge into an empty table."""
    new = conform(pl.DataFrame(list(records), schema=MODEL_VERSIONS), MODEL_VERSIONS)
    merged = pl.concat([conform(existing, MODEL_VERSIONS), new]).unique(
        ["model_id", "version"], keep="last", maintain_order=True
    )
    archived = pl.concat(
        [
            merged.filter(pl.col("status") == "archived")["model_id"],
            pl.Series(list(archived_model_ids), dtype=pl.String),
        ]
    )
    return merged.with_columns(
        status=pl.when(pl.col("model_id").is_in(archived.implode()))
        .then(pl.lit("archived"))
        .otherwise(pl.col("status"))
    ).sort("model_id", "version")


# ---- visibility ---------------------------------------------------------------------------------


def can_read(
    model_row: Mapping[str, Any], user_id: str, subscriptions: Collection[str] = frozenset()
) -> bool:
    """Whether ``user_id`` may read a model, given its latest version's row (``model_id``,
    ``owner_user_id``, ``public``, ``price_cents``, ``status``) and the model ids the user
    subscribes to (active or in trial).

    Owners always may. Anyone else only while the model is public and active, and, for a paid model,
    subscribed to (SPEC section 6): until subscriptions exist, paid models stay their owners' alone.
    """
    if model_row["owner_user_id"] == user_id:
        return True
    if not model_row["public"] or model_row["status"] != "active":
        return False
    return model_row["price_cents"] == 0 or model_row["model_id"] in subscriptions
