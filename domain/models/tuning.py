"""Auto-tuning (seed "Future: auto-tuning"): search a model's source weights and confidence threshold
with walk-forward validation, every configuration evaluated at once.

What a configuration changes is only arithmetic on numbers that do not depend on it: a source's score
of a (game, bookmaker, line) does not depend on weights, and neither do dynamic-weighting multipliers
(a source's calls and hits over the model's own past analyses: every analysis counts, qualifying or
not, and with positive weights the same lines are analysed whatever the weights). So the model is
replayed once with every enabled source at weight 1 (:func:`unit_weights`); each analysis of that
replay holds its source scores and, as its weights, exactly the multipliers (``1 * m``). A trial's
``p`` on every line is then the engine's own weighted average, done in the engine's order of
operations over a (lines x trials) block, so every ``p``, pick, qualifying flag and confidence equals
what a backtest of the trial's saved configuration computes (the tests compare them), and a thousand
trials over three seasons take about a second instead of a thousand backtests.

Walk-forward: the span's game days are cut into ``folds`` consecutive folds; for each fold after the
first, the trial with the best edge lower bound (SPEC 5's ranking: Wilson lower bound of accuracy
minus the mean break-even probability) on all earlier folds is chosen and reported on that fold (out
of sample); the best configuration is the one chosen on the whole span (in sample). Trials get
weights of three decimals (at least 0.001, so every source stays in) and thresholds of two: what is
reported is exactly what is saved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from domain.errors import UserError
from domain.marketplace.performance import edge_lower_bound
from domain.markets.grading import FIRST_SIDE, SECOND_SIDE
from domain.models.config import ModelConfig, effective_dynamic_weighting
from domain.models.engine.backtest import grade_analyses
from domain.models.registry import SERVER_FIELDS

MAX_FOLDS = 10
MAX_TRIALS = 5_000
THRESHOLD_CAP = 0.7
"""Highest confidence threshold tried (a threshold above it keeps too few picks to judge)."""
WEIGHT_DECIMALS, THRESHOLD_DECIMALS = 3, 2
CHUNK_CELLS = 2_000_000
"""Lines x trials evaluated at once (each float block ~16 MB)."""
_WON, _LOST, _PUSH, _OPEN = 1, -1, 0, 2
_DRAW_ROUNDS = 20
"""Batches of random draws to find ``trials`` distinct configurations."""


class TuningError(UserError, ValueError):
    """A span or setting tuning cannot work with (the message says which)."""


@dataclass(frozen=True)
class TuneSettings:
    folds: int = 4
    trials: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.folds <= MAX_FOLDS or not 1 <= self.trials <= MAX_TRIALS:
            raise TuningError(f"folds must be 2 to {MAX_FOLDS} and trials 1 to {MAX_TRIALS:,}")

    def as_params(self) -> dict[str, int]:
        return {"folds": self.folds, "trials": self.trials, "seed": self.seed}


def unit_weights(config: ModelConfig) -> dict[str, Any]:
    """``config``'s payload with every enabled source at weight 1: the replay tuning starts from."""
    payload = config.to_payload()
    for source in payload["data_sources"].values():
        if source is not None and source.get("enabled", True):
            source["weight"] = 1.0
    return payload


@dataclass(frozen=True)
class Replay:
    """The analyses of a unit-weight replay, as arrays (one row per analysis, slots in config order)."""

    source_names: tuple[str, ...]
    day: np.ndarray
    """Game date of each row (``datetime64[D]``)."""
    scores: np.ndarray
    """Rows x slots, NaN = missing."""
    multipliers: np.ndarray
    """Rows x slots: each source's dynamic multiplier (1 without dynamic weighting), 0 where missing."""
    result: np.ndarray
    """Rows x 2: the result of a pick of the first / second side (1 won, -1 lost, 0 push, 2 open)."""
    price: np.ndarray
    """Rows x 2: the decimal price of the first / second side."""

    def __len__(self) -> int:
        return len(self.day)


def replay_arrays(analyses: pl.DataFrame, games: pl.DataFrame, market: str) -> Replay:
    """:class:`Replay` of the analyses of one unit-weight model with their sources
    (``domain.models.engine.EXPLAINED``)."""
    names = tuple(analyses["source_names"][0]) if analyses.height else ()
    k = len(names)

    def block(column: str) -> np.ndarray:
        flat = analyses[column].explode().cast(pl.Float64).fill_null(np.nan).to_numpy()
        return flat.reshape(analyses.height, k)

    def results(side: str) -> np.ndarray:
        graded = grade_analyses(analyses.with_columns(pl.lit(side).alias("pick")), games)
        code = pl.col("result").replace_strict({"won": _WON, "lost": _LOST, "push": _PUSH}, default=_OPEN)
        return graded.select(code.cast(pl.Int8)).to_series().to_numpy()

    return Replay(
        source_names=names,
        day=analyses["game_date"].to_numpy().astype("datetime64[D]"),
        scores=block("source_scores"),
        multipliers=block("weights"),
        result=np.column_stack([results(FIRST_SIDE[market]), results(SECOND_SIDE[market])]),
        price=analyses.select("price_first", "price_second").to_numpy(),
    )


@dataclass(frozen=True)
class Trials:
    weights: np.ndarray
    """Trials x slots."""
    min_confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.min_confidence)


def draw_trials(config: ModelConfig, source_names: tuple[str, ...], n: int, seed: int) -> Trials:
    """``n`` distinct configurations, the model's own first (fewer only when fewer exist, as with one
    source, whose weight cannot matter): weights drawn uniformly from the simplex (three decimals, at
    least 0.001), thresholds from 0.50 to below ``max_confidence`` (at most 0.70)."""
    sources = config.to_payload()["data_sources"]
    rng = np.random.default_rng(seed)
    step = 10**-THRESHOLD_DECIMALS
    top = min(THRESHOLD_CAP, config.max_confidence - step)
    grid = [round(0.5 + i * step, THRESHOLD_DECIMALS) for i in range(max(0, round((top - 0.5) / step) + 1))]
    rows = [(*(float(sources[name]["weight"]) for name in source_names), config.min_confidence)]
    seen = set(rows)
    for _ in range(_DRAW_ROUNDS):
        if len(rows) >= n:
            break
        weights = rng.dirichlet(np.ones(len(source_names)), n)
        thresholds = rng.choice(grid, n) if grid else np.full(n, config.min_confidence)
        for w, t in zip(weights, thresholds, strict=True):
            # Python's round gives the double nearest the decimal, so the saved JSON reads as written.
            row = (*(max(round(float(x), WEIGHT_DECIMALS), 10**-WEIGHT_DECIMALS) for x in w), float(t))
            if row not in seen and len(rows) < n:
                seen.add(row)
                rows.append(row)
    table = np.array(rows).reshape(len(rows), len(source_names) + 1)
    return Trials(weights=table[:, :-1], min_confidence=table[:, -1])


TALLIES = ("analyses", "qualifying", "wins", "losses", "pushes", "profit", "brier_sum", "breakeven_sum")


def tally_trials(
    replay: Replay, trials: Trials, max_confidence: float, fold: np.ndarray, folds: int
) -> dict[str, np.ndarray]:
    """Per fold and trial (folds x trials arrays), the additive figures of :data:`TALLIES` of the
    trial's qualifying picks, exactly as the engine scores and grades them. ``fold`` gives each row's."""
    n, k = replay.scores.shape
    out = {name: np.zeros((folds, len(trials))) for name in TALLIES}
    if n == 0 or k == 0:
        return out
    onehot = np.zeros((n, folds))
    onehot[np.arange(n), fold] = 1.0
    present = ~np.isnan(replay.scores)
    filled = np.where(present, replay.scores, 0.0)
    step = max(1, CHUNK_CELLS // n)
    for lo in range(0, len(trials), step):
        part = slice(lo, lo + step)
        sums = _chunk(
            replay, present, filled, trials.weights[part], trials.min_confidence[part], max_confidence
        )
        for name, values in sums.items():
            out[name][:, part] = onehot.T @ values
    return out


def _chunk(
    replay: Replay,
    present: np.ndarray,
    filled: np.ndarray,
    weights: np.ndarray,
    lo: np.ndarray,
    hi: float,
) -> dict[str, np.ndarray]:
    """Rows x trials of each tally for a chunk of trials (the engine's ``_block`` arithmetic)."""
    k = weights.shape[1]
    total = weighted = None
    for j in range(k):
        used = present[:, j, None] * (weights[None, :, j] * replay.multipliers[:, j, None])
        if total is None or weighted is None:
            total, weighted = used.copy(), used * filled[:, j, None]
        else:
            total += used
            weighted += used * filled[:, j, None]
    assert total is not None and weighted is not None
    scored = total > 0
    p = weighted / np.where(scored, total, 1.0)
    raw = np.maximum(p, 1.0 - p)
    first = p >= 0.5
    qualifies = scored & (raw >= lo[None, :])
    confidence = np.clip(raw, lo[None, :], hi)
    result = np.where(first, replay.result[:, 0, None], replay.result[:, 1, None])
    price = np.where(first, replay.price[:, 0, None], replay.price[:, 1, None])
    won, lost = qualifies & (result == _WON), qualifies & (result == _LOST)
    graded = won | lost
    return {
        "analyses": scored.astype(np.float64),
        "qualifying": qualifies.astype(np.float64),
        "wins": won.astype(np.float64),
        "losses": lost.astype(np.float64),
        "pushes": (qualifies & (result == _PUSH)).astype(np.float64),
        "profit": np.where(won, price - 1.0, 0.0) - lost,
        "brier_sum": np.where(graded, (confidence - won) ** 2, 0.0),
        "breakeven_sum": np.where(graded, 1.0 / price, 0.0),
    }


def figures(sums: dict[str, np.ndarray], t: int) -> dict[str, Any]:
    """The figures of trial ``t`` from tallies summed over some folds (1-d per trial)."""
    wins, losses = int(sums["wins"][t]), int(sums["losses"][t])
    graded = wins + losses
    return {
        "analyses": int(sums["analyses"][t]),
        "qualifying": int(sums["qualifying"][t]),
        "wins": wins,
        "losses": losses,
        "pushes": int(sums["pushes"][t]),
        "graded": graded,
        "accuracy": wins / graded if graded else None,
        "profit": float(sums["profit"][t]),
        "roi": float(sums["profit"][t]) / graded if graded else None,
        "brier": float(sums["brier_sum"][t]) / graded if graded else None,
    }


def choose(sums: dict[str, np.ndarray]) -> int:
    """The trial with the best edge lower bound (then profit, then the earliest: the model's own)."""
    graded = sums["wins"] + sums["losses"]
    breakeven = np.divide(sums["breakeven_sum"], graded, out=np.zeros_like(graded), where=graded > 0)
    frame = pl.DataFrame({"wins": sums["wins"], "graded": graded, "breakeven": breakeven})
    score = frame.select(edge_lower_bound(pl.col("wins"), pl.col("graded"), pl.col("breakeven"))).to_series()
    order = np.lexsort((np.arange(len(graded)), -sums["profit"], -score.to_numpy()))
    return int(order[0])


def fold_of_days(day: np.ndarray, folds: int) -> tuple[np.ndarray, list[tuple[np.datetime64, np.datetime64]]]:
    """Each row's fold (consecutive blocks of game days, as equal as can be) and each fold's span."""
    days = np.unique(day)
    if len(days) < folds:
        raise TuningError(f"the span has {len(days)} game days with analyses: too few for {folds} folds")
    of_day = np.arange(len(days)) * folds // len(days)
    spans = [(days[of_day == f][0], days[of_day == f][-1]) for f in range(folds)]
    return of_day[np.searchsorted(days, day)], spans


def best_config(config: ModelConfig, source_names: tuple[str, ...], trials: Trials, t: int) -> dict[str, Any]:
    """The configuration of trial ``t`` as a request body ready to save (server fields left out)."""
    payload = copy.deepcopy(config.to_payload())
    for name, weight in zip(source_names, trials.weights[t], strict=True):
        payload["data_sources"][name]["weight"] = float(weight)
    payload["min_confidence"] = float(trials.min_confidence[t])
    return {k: v for k, v in payload.items() if k not in SERVER_FIELDS}


def _summed(tallies: dict[str, np.ndarray], folds: slice) -> dict[str, np.ndarray]:
    return {name: values[folds].sum(axis=0) for name, values in tallies.items()}


def tune(
    replay: Replay, config: ModelConfig, settings: TuneSettings, trials: Trials | None = None
) -> dict[str, Any]:
    """The walk-forward search over ``replay`` (see the module docstring) of ``trials`` (default:
    :func:`draw_trials` as ``settings`` say): the report."""
    fold, spans = fold_of_days(replay.day, settings.folds)
    if trials is None:
        trials = draw_trials(config, replay.source_names, settings.trials, settings.seed)
    tallies = tally_trials(replay, trials, config.max_confidence, fold, settings.folds)
    walk, outside = [], {name: 0.0 for name in TALLIES}
    for f in range(1, settings.folds):
        chosen = choose(_summed(tallies, slice(0, f)))
        test = {name: values[f] for name, values in tallies.items()}
        for name in TALLIES:
            outside[name] += test[name][chosen]
        walk.append(
            {
                "fold": f,
                "train": [str(spans[0][0]), str(spans[f - 1][1])],
                "test": [str(spans[f][0]), str(spans[f][1])],
                "chosen": _trial(replay.source_names, trials, chosen),
                "in_sample": figures(_summed(tallies, slice(0, f)), chosen),
                "out_of_sample": figures(test, chosen),
            }
        )
    whole = _summed(tallies, slice(None))
    best = choose(whole)
    return {
        "configurations": len(trials),
        "folds": settings.folds,
        "seed": settings.seed,
        "dynamic_weighting": any(effective_dynamic_weighting(config, name) for name in replay.source_names),
        "baseline": figures(whole, 0),
        "in_sample": figures(whole, best),
        "out_of_sample": figures({name: np.array([v]) for name, v in outside.items()}, 0),
        "walk_forward": walk,
        "best": _trial(replay.source_names, trials, best),
        "best_config": best_config(config, replay.source_names, trials, best),
    }


def _trial(source_names: tuple[str, ...], trials: Trials, t: int) -> dict[str, Any]:
    weights = dict(zip(source_names, (float(w) for w in trials.weights[t]), strict=True))
    return {"trial": t, "weights": weights, "min_confidence": float(trials.min_confidence[t])}
