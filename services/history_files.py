"""Read historical CSV files from disk and hand their cells to ``domain.formats.history``'s parsers.

Every cell is read as a string so that the parsers, not the CSV reader's type guessing, decide what
a bad cell is and report it with its file, line and column. Several files of one format (e.g. the
per-season SBR sheets) make one :class:`~domain.formats.history.HistoryBatch`. Nothing is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from domain.formats import history
from domain.formats.history import HistoryBatch, HistoryImportError
from domain.sports.nba import NBA
from domain.sports.nfl import NFL


@dataclass(frozen=True)
class HistoryFormat:
    sport: str
    parse: Callable[[pl.DataFrame, str], HistoryBatch]
    """(all-string cells, file name) -> batch."""
    example: str
    """The file the format was built and tested against."""


HISTORY_FORMATS: dict[str, HistoryFormat] = {
    "kaggle-nba": HistoryFormat(NBA.key, history.parse_kaggle_nba, "nba_2008-2025.csv"),
    "sbr-nba": HistoryFormat(
        NBA.key, history.parse_sbr_nba, "nba_sbr_games_2016_2022.csv or raw/sbr_nba_odds_2016-17.csv"
    ),
    "nba-team-box": HistoryFormat(NBA.key, history.parse_nba_team_box, "nba_team_box_2018_2025.csv"),
    "nba-player-logs": HistoryFormat(
        NBA.key, history.parse_nba_player_logs, "nba_player_gamelogs_2024_25.csv"
    ),
    "nfl-lines": HistoryFormat(NFL.key, history.parse_nfl_lines, "nfl_games_scores_lines_1999_2022.csv"),
}


def read_cells(path: Path) -> pl.DataFrame:
    """All cells of a CSV file as strings; an empty or unreadable file raises HistoryImportError."""
    try:
        return pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        raise HistoryImportError(f"{path.name} line 1: the file is empty (no header)") from None
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise HistoryImportError(f"{path.name}: not a readable UTF-8 CSV file ({exc})") from None


def read_history(fmt: str, paths: list[Path]) -> HistoryBatch:
    """Parse ``paths`` as history files of format ``fmt`` into one batch (every file, or an error)."""
    if fmt not in HISTORY_FORMATS:
        raise ValueError(f"unknown history format {fmt!r}; known: {', '.join(HISTORY_FORMATS)}")
    if not paths:
        raise ValueError("no history files given")
    parse = HISTORY_FORMATS[fmt].parse
    return history.concat_batches([parse(read_cells(path), path.name) for path in paths])
