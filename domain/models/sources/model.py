"""model: another model's p, the source of an ensemble (seed "Future: Ensemble models").

A model source names a member model (``model_id``, and ``version`` to pin one; without it the
member's latest version scored in the same run). Its score on a line is the member's ``p`` on the
same game, bookmaker, market and line at the same cut-off, so an ensemble is point in time exactly
as its members are; no such analysis makes the source missing. The engine therefore scores models in
dependency layers (:func:`layers`): the members first, then the ensembles over their analyses
(``SourceDay.members``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from domain.models.config_base import Identifier
from domain.models.sources.base import SourceBase, SourceDay, SourceKind

MEMBER_COLUMNS = ["model_id", "version", "game_id", "bookmaker", "market", "cutoff_time", "line", "p"]
"""The columns of a member's analyses that a model source reads."""


class ModelSource(SourceBase):
    """Another model's p: the creator's own model or a public model."""

    kind: ClassVar[str] = "model"
    model_id: Identifier
    version: Annotated[
        int | None, Field(ge=1, description="Pin a version; the member's latest if absent")
    ] = None


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> tuple[str, int | None]:
    """(member model id, pinned version or None)."""
    return source["model_id"], source.get("version")


def prepare(keys: list[tuple[str, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(keys, schema={"model_id": pl.String, "pinned": pl.Int32}, orient="row")


def score(members: pl.DataFrame, used: np.ndarray, day: SourceDay) -> np.ndarray:
    """The members' p per line of the span x member ``used``, at the same cut-off; NaN where a
    member has no analysis. An unpinned member is its latest version among the analyses handed over."""
    block = np.full((len(day.lines), len(used)), np.nan)
    given = day.members
    if given is None or given.is_empty():
        return block
    given = given.filter(pl.col("market") == day.market).select(MEMBER_COLUMNS)
    latest = given.group_by("model_id").agg(pl.col("version").max().alias("latest"))
    wanted = (
        members[used]
        .with_row_index("position")
        .join(latest, on="model_id", how="left")
        .select("position", "model_id", pl.coalesce("pinned", "latest").alias("version"))
    )
    lines = day.lines.select("game_id", "bookmaker", "cutoff_time", "line").with_row_index("row")
    found = (
        wanted.join(given, on=["model_id", "version"])
        .join(lines, on=["game_id", "bookmaker", "cutoff_time"], suffix="_current")
        .filter(pl.col("line").eq_missing(pl.col("line_current")))
    )
    block[found["row"].to_numpy(), found["position"].to_numpy()] = found["p"].to_numpy()
    return block


KIND = SourceKind(ModelSource, key, prepare, score, builtin=False, by_line=True)


def member_ids(payload: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """The (model id, pinned version) of every enabled model source of a config payload."""
    return [
        (source["model_id"], source.get("version"))
        for source in payload["data_sources"].values()
        if isinstance(source, Mapping) and "model_id" in source and source.get("enabled", True)
    ]


def layers(payloads: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each config's dependency layer within ``payloads``: 0 without members among them, else one
    more than its deepest member's. A member is the pinned version, or the latest version of its
    model among ``payloads``; members outside them are not waited for (their analyses must be handed
    over). Raises ValueError on a cycle (validation refuses those when configs are saved)."""
    uses = [member_ids(payload) for payload in payloads]
    if not any(uses):
        return np.zeros(len(payloads), dtype=np.int64)
    versions: dict[str, dict[int, int]] = {}
    for i, payload in enumerate(payloads):
        versions.setdefault(payload["model_id"], {})[payload.get("version", 1)] = i
    layer = np.full(len(payloads), -1, dtype=np.int64)

    def member(model_id: str, pinned: int | None) -> int | None:
        found = versions.get(model_id, {})
        return found.get(max(found) if pinned is None else pinned) if found else None

    def depth(i: int, seen: tuple[str, ...]) -> int:
        model_id = payloads[i]["model_id"]
        if model_id in seen:
            raise ValueError(f"models depend on each other: {cycle_text([*seen, model_id])}")
        if layer[i] < 0:
            below = [depth(j, (*seen, model_id)) for j in (member(m, v) for m, v in uses[i]) if j is not None]
            layer[i] = 1 + max(below) if below else 0
        return int(layer[i])

    for i in range(len(payloads)):
        depth(i, ())
    return layer


def cycle_text(path: Sequence[str]) -> str:
    """``a -> b -> a`` from the models of a cycle, its first repeated at the end."""
    start = path.index(path[-1])
    return " -> ".join(path[start:])


def find_cycle(model_id: str, members_of: Callable[[str], Sequence[str]], start: str) -> list[str] | None:
    """A dependency cycle ``[model_id, start, ..., model_id]`` in the graph ``members_of`` (model id
    -> the model ids it uses), or None."""

    dead: set[str] = set()  # models seen not to lead back (each is walked once)

    def walk(path: list[str]) -> list[str] | None:
        if path[-1] == model_id:
            return path
        if path[-1] in dead:
            return None
        dead.add(path[-1])
        for member in members_of(path[-1]):
            if (found := walk([*path, member])) is not None:
                return found
        return None

    return walk([model_id, start])


def member_versions(versions: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``stored`` (``model_versions``: ``model_id``, ``version``, ``config_json``) that
    the configs of ``versions`` use, transitively, and that are not among ``versions``: what a run
    of some models must score with them so that their ensembles see their members at the same
    cut-off. A member is its pinned version, else its model's latest stored version."""
    latest = stored.group_by("model_id").agg(pl.col("version").max().alias("latest"))
    chosen = versions.select("model_id", "version")
    found: list[pl.DataFrame] = []
    frontier = versions
    while True:
        # Only configs naming a model id besides their own can use one (no JSON parsed for the rest).
        frontier = frontier.filter(pl.col("config_json").str.count_matches('"model_id"', literal=True) > 1)
        wanted = pl.DataFrame(
            [member for doc in frontier["config_json"] for member in member_ids(json.loads(doc))],
            schema={"model_id": pl.String, "pinned": pl.Int32},
            orient="row",
        )
        resolved = (
            wanted.join(latest, on="model_id")
            .select(
                "model_id", pl.coalesce("pinned", "latest").cast(stored.schema["version"]).alias("version")
            )
            .unique()
            .join(chosen, on=["model_id", "version"], how="anti")
        )
        frontier = stored.join(resolved, on=["model_id", "version"], how="semi")
        if frontier.is_empty():
            return pl.concat([stored.clear(), *found])
        found.append(frontier)
        chosen = pl.concat([chosen, frontier.select("model_id", "version")])
