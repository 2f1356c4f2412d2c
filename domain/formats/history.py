"""Historical files (read as all-string frames) -> the lake's raw tables.

Each ``parse_*`` function takes one file's cells as strings plus the file's name and returns a
:class:`HistoryBatch` of frames conformed to ``domain.tables.schemas``. Decisions (SPEC section 5):

- **Line numbers.** "line N" is the line of the file as an editor shows it: the header is line 1, the
  first data row line 2 (files with quoted line breaks inside cells would shift this; none have them).
- **Bad input raises** :class:`HistoryImportError` naming file, line and column: a missing column, a
  cell that does not parse (``abc``, ``nan``, ``inf`` in a number column), an unknown team, a missing
  required value, a game listed twice, an empty file. **Garbled but parseable values** that the real
  files do contain (a total of ``1955.5``, a spread of ``-2.5115``, a moneyline of ``8``) are dropped
  with a warning on the batch instead, so the rest of a real file still imports: a line must be a
  multiple of 0.5 inside the sport's range (``Sport.line_ranges``), an American price must have
  ``|price| >= 100``.
- **Times.** Files give dates only. A game starts at the sport's ``local_start`` on its local date
  in the sport's ``time_zone`` (NBA 19:00, NFL 13:00, US/Eastern), converted to UTC. A source with
  opening and closing lines gives two snapshots per game, bookmaker and market: opening at
  ``commence_time - 1 day``, closing at ``commence_time - 1 minute``; a source with closing lines
  only gives the closing one.
- **Prices** are decimal. A spread or total without a price (or with one side's price missing) gets
  -110 on both sides and ``priced_by_assumption = True``. Moneylines are market ``h2h`` (home price
  first, no line) and are dropped when either side is missing. Spread ``line`` = the home team's
  spread (negative when home is favoured); total ``line`` = the total, ``price_first`` = over.
- **Bookmakers.** ``kaggle-nba`` -> ``kaggle`` (closing spread, total and moneyline);
  ``sbr-nba`` -> ``sbr`` (opening and closing spread and total, closing moneyline);
  ``nfl-lines`` -> ``nfelo`` (opening and closing spread, opening and closing total where present,
  with prices where the file has them; no opener before 2007 because nfelo's "open" there is a copy of
  the close) and ``spreadspoke`` (closing spread and total, never priced). ``nba-team-box``'s spread
  column is Kaggle's closing line, imported by ``kaggle-nba``, so that format yields no odds.
- **Seasons** come from the file's own season column, labelled by the sport's ``season_label`` rule,
  not from the game date: the 2019-20 NBA finals were played in October 2020.
- **neutral** is taken from files that flag it (``sbr-nba``, ``nfl-lines``) and is null (unknown)
  elsewhere. Playoff and play-in games are real games and are kept; preseason and All-Star rows
  are left out where a file marks them.
- **Teams** map through ``Sport.team_code_expr``: historical names and codes (Seattle,
  New Jersey, St. Louis, Oakland, ...) map to the franchise's current code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce

import polars as pl

from domain.errors import UserError
from domain.markets.odds import ASSUMED_AMERICAN, american_to_decimal_expr
from domain.sports.ids import game_id_expr
from domain.sports.nba import NBA
from domain.sports.nfl import NFL
from domain.sports.sport import LineMarket, Sport
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform

OPENING_LEAD = dt.timedelta(days=1)
CLOSING_LEAD = dt.timedelta(minutes=1)

NFELO_FIRST_REAL_OPENER = 2007
"""nfelo's opening lines before this season are copies of the closing line, not observations."""

_STATS = ["pts", "reb", "ast", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "tov", "stl", "blk", "plus_minus"]


class HistoryImportError(UserError, ValueError):
    """A history file that cannot be imported; the message names the file, line and column."""


@dataclass
class HistoryBatch:
    """What one or more files of one format hold, as conformed raw-table frames."""

    source: str
    sport: str
    frames: dict[str, pl.DataFrame]
    """Keys are ``domain.tables.schemas.RAW_TABLES`` names; only the tables the format provides."""
    warnings: list[str] = field(default_factory=list)
    """Garbled values dropped and rows left out, one line per file, column and reason."""

    @property
    def games(self) -> int:
        """Distinct games across all frames."""
        ids = [f.select("game_id") for f in self.frames.values()]
        return pl.concat(ids).n_unique() if ids else 0

    @property
    def lines(self) -> int:
        """Odds snapshot rows."""
        return self._height("odds_snapshots")

    @property
    def stat_rows(self) -> int:
        """Team and player box-score rows."""
        return self._height("team_box") + self._height("player_box")

    @property
    def counts(self) -> dict[str, int]:
        return {"games": self.games, "lines": self.lines, "stat_rows": self.stat_rows}

    def _height(self, table: str) -> int:
        return self.frames[table].height if table in self.frames else 0


def concat_batches(batches: list[HistoryBatch]) -> HistoryBatch:
    """One batch from the batches of several files of the same format."""
    first = batches[0]
    tables = dict.fromkeys(t for b in batches for t in b.frames)
    return HistoryBatch(
        source=first.source,
        sport=first.sport,
        frames={t: pl.concat([b.frames[t] for b in batches if t in b.frames]) for t in tables},
        warnings=[w for b in batches for w in b.warnings],
    )


class _Cells:
    """One file's cells as stripped strings (empty -> null) with their line numbers, and typed readers
    that raise :class:`HistoryImportError` at the first bad cell of a column."""

    def __init__(self, raw: pl.DataFrame, name: str, required: Iterable[str]) -> None:
        self.name = name
        missing = [c for c in required if c not in raw.columns]
        if missing:
            cols = ", ".join(f"'{c}'" for c in missing)
            raise HistoryImportError(f"{name} line 1, column {cols}: missing from the header")
        if raw.height == 0:
            raise HistoryImportError(f"{name} line 2: no data rows after the header")
        stripped = [pl.col(c).cast(pl.String).str.strip_chars().alias(c) for c in raw.columns]
        self.frame = (
            raw.select(stripped)
            .with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in raw.columns)
            .with_row_index("_line", offset=2)
        )
        self.warnings: list[str] = []

    @property
    def lines(self) -> pl.Series:
        return self.frame["_line"]

    def filter(self, keep: pl.Series, why: str) -> None:
        """Leave out rows (e.g. preseason), noting how many on the batch."""
        dropped = (~keep).sum()
        if dropped:
            first = self.lines.filter(~keep)[0]
            self.warnings.append(f"{self.name}: {dropped} row(s) left out ({why}); first at line {first}")
            self.frame = self.frame.filter(keep)

    def fail_at(self, bad: pl.Series, col: str, message: str, shown: pl.Series | None = None) -> None:
        """Raise for the first row where ``bad`` is true; ``message`` may use ``{value}``, the cell (or
        ``shown``'s value, e.g. the part of the cell that is wrong)."""
        hits = bad.fill_null(False).arg_true()
        if hits.len():
            row = hits[0]
            value = (self.frame[col] if shown is None else shown)[row]
            raise HistoryImportError(
                f"{self.name} line {self.lines[row]}, column '{col}': {message.format(value=repr(value))}"
            )

    def text(self, col: str, *, required: bool = True) -> pl.Series:
        s = self.frame[col]
        if required:
            self.fail_at(s.is_null(), col, "value is missing")
        return s

    def number(self, col: str, *, required: bool = False) -> pl.Series:
        s = self.text(col, required=required)
        x = s.cast(pl.Float64, strict=False)
        self.fail_at(s.is_not_null() & ~x.is_finite().fill_null(False), col, "{value} is not a number")
        return x + 0.0  # -0.0 -> 0.0

    def integer(self, col: str, *, required: bool = True) -> pl.Series:
        x = self.number(col, required=required)
        self.fail_at(x != x.round(), col, "{value} is not a whole number")
        return x.cast(pl.Int64)

    def boolean(self, col: str) -> pl.Series:
        s = self.text(col).str.to_lowercase()
        self.fail_at(~s.is_in(["true", "false"]), col, "{value} is not True or False")
        return s == "true"

    def date(self, col: str, *formats: str) -> pl.Series:
        s = self.text(col)
        d = reduce(pl.Series.fill_null, (_parse_date(s, f) for f in formats))
        self.fail_at(d.is_null(), col, "{value} is not a date (" + " or ".join(formats) + ")")
        return d

    def team(self, col: str, sport: Sport, names: pl.Series | None = None) -> pl.Series:
        """Team codes of ``col``'s names, or of ``names`` when they are a part of ``col``'s cells."""
        names = self.text(col) if names is None else names
        codes = names.to_frame("name").select(sport.team_code_expr(pl.col("name"))).to_series()
        self.fail_at(codes.is_null(), col, "{value} is not a known " + sport.title + " team", shown=names)
        return codes

    def choice(self, col: str, allowed: list[str], *, required: bool = True) -> pl.Series:
        s = self.text(col, required=required)
        self.fail_at(s.is_not_null() & ~s.is_in(allowed), col, "{value} is not one of " + ", ".join(allowed))
        return s

    def screen(self, x: pl.Series, col: str, ok: pl.Series, why: str) -> pl.Series:
        """Null out garbled values (``ok`` false) with one warning per column."""
        bad = x.is_not_null() & ~ok.fill_null(False)
        if bad.any():
            first = self.lines.filter(bad)[0]
            self.warnings.append(
                f"{self.name} column '{col}': {bad.sum()} value(s) dropped ({why}); first at line {first}"
            )
        return x.scatter(bad.arg_true(), None)

    def line(self, col: str, sport: Sport, market: LineMarket, x: pl.Series | None = None) -> pl.Series:
        """A spread or total (``x`` if already derived from ``col``), garbled values dropped."""
        x = self.number(col) if x is None else x
        lo, hi = sport.line_ranges[market]
        ok = ((x * 2).round() == x * 2) & x.is_between(lo, hi)
        return self.screen(x, col, ok, f"not a {market} line: not a multiple of 0.5 in [{lo:g}, {hi:g}]")

    def american(self, col: str) -> pl.Series:
        """An American price, garbled values (|x| < 100) dropped."""
        x = self.number(col)
        return self.screen(x, col, x.abs() >= 100, "not an American price: |price| < 100")


def _parse_date(s: pl.Series, fmt: str) -> pl.Series:
    if "%H" in fmt:
        return s.str.to_datetime(fmt, strict=False).dt.date()
    return s.str.to_date(fmt, strict=False)


def _season_labels(sport: Sport, start_year: pl.Series) -> pl.Series:
    """Season labels of start years, by the sport's ``season_label`` rule."""
    labels = {y: sport.season_label(y) for y in start_year.unique().to_list()}
    return start_year.replace_strict(labels, return_dtype=pl.String)


def _games(
    cells: _Cells, sport: Sport, source: str, date_col: str, columns: dict[str, pl.Series]
) -> pl.DataFrame:
    """The per-game frame every parser builds on: typed ``columns`` (at least game_date, home_team,
    away_team) plus game_id, commence_time and the source line; a game listed twice raises."""
    games = pl.DataFrame(columns).with_columns(
        _line=cells.lines,
        game_id=game_id_expr(sport.key, pl.col("game_date"), pl.col("away_team"), pl.col("home_team")),
        commence_time=pl.col("game_date")
        .dt.combine(sport.local_start)
        .dt.replace_time_zone(sport.time_zone)
        .dt.convert_time_zone("UTC"),
        sport=pl.lit(sport.key),
        source=pl.lit(source),
    )
    dup = games.filter(pl.col("game_id").is_duplicated()).head(2)
    if dup.height:
        raise HistoryImportError(
            f"{cells.name} line {dup['_line'][1]}, column '{date_col}': game {dup['game_id'][0]} "
            f"is already listed at line {dup['_line'][0]}"
        )
    return games


def _results(games: pl.DataFrame) -> pl.DataFrame:
    return conform(games.with_columns(completed=pl.lit(True)), GAME_RESULTS)


@dataclass(frozen=True)
class _Quote:
    """Which columns of the games frame hold one bookmaker's market at one time."""

    bookmaker: str
    market: str
    closing: bool
    line: str | None
    first: str | None
    """American price of the first side (home, or over); None when the source never prices it."""
    second: str | None


def _snapshots(games: pl.DataFrame, quotes: list[_Quote]) -> pl.DataFrame:
    """Odds snapshots of ``games`` for each quote; rows without a line (or, for h2h, a price) drop."""
    frames = []
    for q in quotes:
        first = pl.col(q.first) if q.first else pl.lit(None, pl.Float64)
        second = pl.col(q.second) if q.second else pl.lit(None, pl.Float64)
        if q.market == "h2h":
            present = first.is_not_null() & second.is_not_null()
            assumed = pl.lit(False)
        else:
            assert q.line is not None, "spreads and totals quotes always name their line column"
            present = pl.col(q.line).is_not_null()
            assumed = first.is_null() | second.is_null()
            first = pl.when(assumed).then(pl.lit(ASSUMED_AMERICAN, pl.Float64)).otherwise(first)
            second = pl.when(assumed).then(pl.lit(ASSUMED_AMERICAN, pl.Float64)).otherwise(second)
        lead = CLOSING_LEAD if q.closing else OPENING_LEAD
        frames.append(
            games.filter(present).select(
                "game_id",
                "sport",
                "game_date",
                "source",
                bookmaker=pl.lit(q.bookmaker),
                market=pl.lit(q.market),
                snapshot_time=pl.col("commence_time") - lead,
                line=pl.col(q.line) if q.line else pl.lit(None, pl.Float64),
                price_first=american_to_decimal_expr(first),
                price_second=american_to_decimal_expr(second),
                priced_by_assumption=assumed,
            )
        )
    return conform(pl.concat(frames), ODDS_SNAPSHOTS).sort("game_id", "bookmaker", "market", "snapshot_time")


def _batch(cells: _Cells, source: str, sport: Sport, frames: dict[str, pl.DataFrame]) -> HistoryBatch:
    return HistoryBatch(source=source, sport=sport.key, frames=frames, warnings=cells.warnings)


# --- kaggle-nba -------------------------------------------------------------------------------------


def parse_kaggle_nba(raw: pl.DataFrame, name: str) -> HistoryBatch:
    """Kaggle "NBA betting data" (nba_2008-2025.csv): scores and closing spread, total, moneyline.

    ``spread`` is unsigned and belongs to ``whos_favored``; ``season`` is the year the season ends.
    """
    teams_and_scores = ["season", "date", "away", "home", "score_away", "score_home"]
    lines = ["whos_favored", "spread", "total", "moneyline_away", "moneyline_home"]
    cells = _Cells(raw, name, teams_and_scores + lines)
    spread = cells.number("spread")
    fav = cells.choice("whos_favored", ["home", "away"], required=False)
    cells.fail_at(spread.is_not_null() & fav.is_null(), "whos_favored", "value is missing (spread given)")
    cells.fail_at(spread < 0, "spread", "{value} is negative; expected the favourite's unsigned spread")
    home_line = pl.DataFrame({"spread": spread, "fav": fav}).select(
        pl.when(pl.col("fav") == "home").then(-pl.col("spread")).otherwise(pl.col("spread")) + 0.0
    )
    games = _games(
        cells,
        NBA,
        "kaggle-nba",
        "date",
        {
            "season": _season_labels(NBA, cells.integer("season") - 1),
            "game_date": cells.date("date", "%m/%d/%y", "%Y-%m-%d"),
            "home_team": cells.team("home", NBA),
            "away_team": cells.team("away", NBA),
            "home_score": cells.integer("score_home"),
            "away_score": cells.integer("score_away"),
            "home_spread": cells.line("spread", NBA, "spreads", home_line.to_series()),
            "total": cells.line("total", NBA, "totals"),
            "home_ml": cells.american("moneyline_home"),
            "away_ml": cells.american("moneyline_away"),
        },
    )
    odds = _snapshots(
        games,
        [
            _Quote("kaggle", "spreads", True, "home_spread", None, None),
            _Quote("kaggle", "totals", True, "total", None, None),
            _Quote("kaggle", "h2h", True, None, "home_ml", "away_ml"),
        ],
    )
    return _batch(cells, "kaggle-nba", NBA, {"game_results": _results(games), "odds_snapshots": odds})


# --- sbr-nba ----------------------------------------------------------------------------------------

_SBR_JOINED = [
    "season",
    "date",
    "neutral",
    "away_abbr",
    "home_abbr",
    "away_score",
    "home_score",
    "home_spread_open",
    "home_spread_close",
    "total_open",
    "total_close",
    "away_ml",
    "home_ml",
]
_SBR_RAW = ["Date", "Rot", "VH", "Team", "Final", "Open", "Close", "ML"]
_SBR_SPREAD_BELOW = 75.0
"""In SBR's raw sheets the favourite's row holds the spread and the other row the total; NBA spreads
are below this value and totals above it."""


def parse_sbr_nba(raw: pl.DataFrame, name: str) -> HistoryBatch:
    """SportsbookReviewsOnline NBA archive: opening and closing spread and total, closing moneyline.

    Accepts the one-row-per-game conversion (nba_sbr_games_2016_2022.csv) and SBR's own season sheets
    saved as CSV (two rows per game, ``Date`` as MMDD without a year); the latter need the season in
    the file name (``sbr_nba_odds_2016-17.csv``, ``nba odds 2016-17.csv``).
    """
    if "VH" in raw.columns:
        cells, columns = _sbr_raw_columns(raw, name)
        date_col = "Date"
    else:
        date_col = "date"
        cells = _Cells(raw, name, _SBR_JOINED)
        season = cells.text("season")
        cells.fail_at(~season.str.contains(r"^\d{4}-\d{2}$"), "season", "{value} is not like 2016-17")
        columns = {
            "season": _season_labels(NBA, season.str.slice(0, 4).cast(pl.Int64)),
            "game_date": cells.date("date", "%Y-%m-%d"),
            "neutral": cells.boolean("neutral"),
            "home_team": cells.team("home_abbr", NBA),
            "away_team": cells.team("away_abbr", NBA),
            "home_score": cells.integer("home_score"),
            "away_score": cells.integer("away_score"),
            "spread_open": cells.line("home_spread_open", NBA, "spreads"),
            "spread_close": cells.line("home_spread_close", NBA, "spreads"),
            "total_open": cells.line("total_open", NBA, "totals"),
            "total_close": cells.line("total_close", NBA, "totals"),
            "home_ml": cells.american("home_ml"),
            "away_ml": cells.american("away_ml"),
        }
    games = _games(cells, NBA, "sbr-nba", date_col, columns)
    odds = _snapshots(
        games,
        [
            _Quote("sbr", "spreads", False, "spread_open", None, None),
            _Quote("sbr", "spreads", True, "spread_close", None, None),
            _Quote("sbr", "totals", False, "total_open", None, None),
            _Quote("sbr", "totals", True, "total_close", None, None),
            _Quote("sbr", "h2h", True, None, "home_ml", "away_ml"),
        ],
    )
    return _batch(cells, "sbr-nba", NBA, {"game_results": _results(games), "odds_snapshots": odds})


def _sbr_raw_columns(raw: pl.DataFrame, name: str) -> tuple[_Cells, dict[str, pl.Series]]:
    """Pair SBR's visitor/home rows into one row per game (kept on the visitor's line)."""
    season = re.search(r"(\d{4})-(\d{2})", name)
    if season is None or (int(season[1]) + 1) % 100 != int(season[2]):
        raise HistoryImportError(
            f"{name} line 1, column 'Date': dates have no year, so the file name must "
            "carry the season, e.g. sbr_nba_odds_2016-17.csv"
        )
    cells = _Cells(raw, name, _SBR_RAW)
    n = cells.frame.height
    if n % 2:
        raise HistoryImportError(f"{name} line {n + 1}, column 'VH': odd row count; SBR has two rows a game")
    visitor_row = pl.Series(range(n)) % 2 == 0
    vh = cells.choice("VH", ["V", "H", "N"])
    pair_vh = vh.shift(1).fill_null("")  # on the home row: the visitor row's VH
    cells.fail_at(visitor_row & (vh == "H"), "VH", "{value} on a first row of a game; expected V or N")
    cells.fail_at(
        ~visitor_row & ~(((vh == "H") & (pair_vh == "V")) | ((vh == "N") & (pair_vh == "N"))),
        "VH",
        "{value} does not pair with the row above (V then H, or N then N)",
    )
    mmdd = cells.integer("Date")
    cells.fail_at(~visitor_row & (mmdd != mmdd.shift(1)), "Date", "{value} differs from the row above")
    month = mmdd // 100
    # Rows are in date order: each drop in month (December -> January) starts the next calendar year.
    new_year = (month < month.shift(1)).fill_null(False).cast(pl.Int64).cum_sum()
    date = ((int(season[1]) + new_year) * 10_000 + mmdd).cast(pl.String).str.to_date("%Y%m%d", strict=False)
    cells.fail_at(date.is_null(), "Date", "{value} is not a MMDD date")
    team = cells.team("Team", NBA)
    score = cells.integer("Final")
    ml = cells.american("ML")

    def pair(s: pl.Series) -> tuple[pl.Series, pl.Series]:
        """(visitor value, home value) per game."""
        return s.gather_every(2), s.gather_every(2, offset=1)

    columns: dict[str, pl.Series] = {
        "season": _season_labels(NBA, pl.repeat(int(season[1]), n // 2, eager=True)),
        "game_date": date.gather_every(2),
        "neutral": vh.gather_every(2) == "N",
    }
    for col, series in (("team", team), ("score", score), ("ml", ml)):
        columns[f"away_{col}"], columns[f"home_{col}"] = pair(series)
    for col in ("Open", "Close"):
        spread, total = _sbr_split(*pair(_sbr_quote(cells, col)))
        columns[f"spread_{col.lower()}"], columns[f"total_{col.lower()}"] = spread, total
    cells.frame = cells.frame.gather_every(2)
    return cells, columns


def _sbr_quote(cells: _Cells, col: str) -> pl.Series:
    """An SBR Open/Close cell: a number, 'pk' (pick'em, 0) or 'NL' (no line)."""
    s = cells.text(col, required=False).str.to_lowercase()
    x = s.replace({"pk": "0", "nl": None}).cast(pl.Float64, strict=False)
    cells.fail_at(
        s.is_not_null() & (s != "nl") & ~x.is_finite().fill_null(False),
        col,
        "{value} is not a number, pk or NL",
    )
    lo, hi = NBA.line_ranges["totals"]
    ok = ((x * 2).round() == x * 2) & ((x < _SBR_SPREAD_BELOW) | x.is_between(lo, hi))
    return cells.screen(x + 0.0, col, ok, "not a line: not a multiple of 0.5, or an implausible total")


def _sbr_split(visitor: pl.Series, home: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(home spread, total) of one game from its two cells: the favourite's row holds the spread, the
    other row the total. Both cells spreads, or both totals, is garbled and gives no line."""

    def spread(c: str) -> pl.Expr:
        return (pl.col(c) < _SBR_SPREAD_BELOW).fill_null(False)

    def total(c: str) -> pl.Expr:
        return (pl.col(c) >= _SBR_SPREAD_BELOW).fill_null(False)

    out = pl.DataFrame({"v": visitor, "h": home}).select(
        spread=pl.when(spread("v") & ~spread("h"))
        .then(pl.col("v"))
        .when(spread("h") & ~spread("v"))
        .then(-pl.col("h"))
        + 0.0,
        total=pl.when(total("v") & ~total("h"))
        .then(pl.col("v"))
        .when(total("h") & ~total("v"))
        .then(pl.col("h")),
    )
    return out["spread"], out["total"]


# --- nba-team-box -----------------------------------------------------------------------------------

_EXCLUDED_SEASON_TYPES = ["Pre Season", "Preseason", "All Star", "All-Star"]


def parse_nba_team_box(raw: pl.DataFrame, name: str) -> HistoryBatch:
    """Per-game team box scores (nba_team_box_2018_2025.csv): results and two team_box rows per game.

    Rows without a box score (empty ``GAME_ID``) are left out with a warning. There is no OREB/DREB
    split, no minutes and no PF, so those stay null.
    """
    sides = ("home", "away")
    stats = [f"{side}_{stat}" for side in sides for stat in _STATS]
    cells = _Cells(raw, name, ["season", "date", "home_abbr", "away_abbr", "GAME_ID", "SEASON_TYPE", *stats])
    cells.filter(cells.frame["GAME_ID"].is_not_null(), "no box score: GAME_ID is empty")
    cells.filter(
        ~cells.frame["SEASON_TYPE"].is_in(_EXCLUDED_SEASON_TYPES).fill_null(False), "preseason or All-Star"
    )
    games = _games(
        cells,
        NBA,
        "nba-team-box",
        "date",
        {
            "season": _season_labels(NBA, cells.integer("season") - 1),
            "game_date": cells.date("date", "%Y-%m-%d"),
            "home_team": cells.team("home_abbr", NBA),
            "away_team": cells.team("away_abbr", NBA),
            "source_event_id": cells.text("GAME_ID"),
            **{col: cells.number(col, required=True) for col in stats},
        },
    ).with_columns(home_score=pl.col("home_pts"), away_score=pl.col("away_pts"))
    box = pl.concat(
        games.select(
            "game_id",
            "sport",
            "game_date",
            "source",
            team=f"{side}_team",
            opponent=f"{other}_team",
            is_home=pl.lit(side == "home"),
            **{stat: f"{side}_{stat}" for stat in _STATS},
        )
        for side, other in (sides, sides[::-1])
    ).sort("game_id", "is_home", descending=[False, True])
    frames = {"game_results": _results(games), "team_box": conform(box, TEAM_BOX)}
    return _batch(cells, "nba-team-box", NBA, frames)


# --- nba-player-logs --------------------------------------------------------------------------------

_PLAYER_STATS = {
    "MIN": "minutes",
    "PTS": "pts",
    "FGM": "fgm",
    "FGA": "fga",
    "FG3M": "fg3m",
    "FG3A": "fg3a",
    "FTM": "ftm",
    "FTA": "fta",
    "OREB": "oreb",
    "DREB": "dreb",
    "REB": "reb",
    "AST": "ast",
    "STL": "stl",
    "BLK": "blk",
    "TOV": "tov",
    "PF": "pf",
    "PLUS_MINUS": "plus_minus",
}
_MATCHUP = r"^(\S+) (vs\.|@) (\S+)$"


def parse_nba_player_logs(raw: pl.DataFrame, name: str) -> HistoryBatch:
    """nba_api PlayerGameLog rows: one player_box row each.

    The player's team and the opponent come from ``MATCHUP`` ("MIA vs. ORL" = MIA at home, "MIA @ CHA"
    = MIA away), which also orders the canonical game id. ``SEASON_ID`` 1xxxx (preseason) and 3xxxx
    (All-Star) rows are left out.
    """
    required = ["SEASON_ID", "Player_ID", "GAME_DATE", "MATCHUP", "PLAYER_NAME", *_PLAYER_STATS]
    cells = _Cells(raw, name, required)
    season_id = cells.text("SEASON_ID")
    cells.filter(~season_id.str.slice(0, 1).is_in(["1", "3"]), "preseason or All-Star")
    matchup = cells.text("MATCHUP").str.extract_groups(_MATCHUP).struct.unnest()
    cells.fail_at(matchup["1"].is_null(), "MATCHUP", "{value} is not like 'MIA vs. ORL' or 'MIA @ CHA'")
    team, opponent = cells.team("MATCHUP", NBA, matchup["1"]), cells.team("MATCHUP", NBA, matchup["3"])
    sides = pl.DataFrame({"at_home": matchup["2"] == "vs.", "team": team, "opponent": opponent}).select(
        home=pl.when("at_home").then("team").otherwise("opponent"),
        away=pl.when("at_home").then("opponent").otherwise("team"),
    )
    frame = pl.DataFrame(
        {
            "game_date": cells.date("GAME_DATE", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S"),
            "team": team,
            "opponent": opponent,
            "home": sides["home"],
            "away": sides["away"],
            "player_id": cells.text("Player_ID"),
            "player_name": cells.text("PLAYER_NAME"),
            **{ours: cells.number(theirs, required=True) for theirs, ours in _PLAYER_STATS.items()},
            "_line": cells.lines,
        }
    ).with_columns(
        game_id=game_id_expr(NBA.key, pl.col("game_date"), pl.col("away"), pl.col("home")),
        sport=pl.lit(NBA.key),
        source=pl.lit("nba-player-logs"),
    )
    dup = frame.filter(pl.struct("game_id", "player_id").is_duplicated()).head(2)
    if dup.height:
        raise HistoryImportError(
            f"{name} line {dup['_line'][1]}, column 'Player_ID': player {dup['player_id'][0]} in game "
            f"{dup['game_id'][0]} is already listed at line {dup['_line'][0]}"
        )
    box = conform(frame, PLAYER_BOX).sort("game_id", "team", "player_id")
    return _batch(cells, "nba-player-logs", NBA, {"player_box": box})


# --- nfl-lines --------------------------------------------------------------------------------------


def parse_nfl_lines(raw: pl.DataFrame, name: str) -> HistoryBatch:
    """NFL scores with spreadspoke's closing lines joined to nfelo's open/close lines and prices
    (nfl_games_scores_lines_1999_2022.csv).

    ``home_team``/``away_team`` are nfelo codes (OAK for the Raiders in every era). Every line column is
    already signed from the home side, including the 6 games whose nfelo lines were flipped when joined
    (``lines_home_away_swapped``), so no column needs a sign change.
    """
    prices = [
        "home_line_open_price",
        "away_line_open_price",
        "home_line_close_price",
        "away_line_close_price",
        "over_price_open",
        "under_price_open",
        "over_price_close",
        "under_price_close",
    ]
    cells = _Cells(
        raw,
        name,
        [
            "game_id",
            "schedule_date",
            "season",
            "home_team",
            "away_team",
            "home_score",
            "away_score",
            "neutral_site",
            "ss_home_spread",
            "ss_total",
            "home_line_open",
            "home_line_close",
            "total_line_open",
            "total_line_close",
            *prices,
        ],
    )
    season = cells.integer("season")
    games = _games(
        cells,
        NFL,
        "nfl-lines",
        "schedule_date",
        {
            "season": _season_labels(NFL, season),
            "game_date": cells.date("schedule_date", "%Y-%m-%d"),
            "home_team": cells.team("home_team", NFL),
            "away_team": cells.team("away_team", NFL),
            "home_score": cells.integer("home_score"),
            "away_score": cells.integer("away_score"),
            "neutral": cells.boolean("neutral_site"),
            "source_event_id": cells.text("game_id"),
            "ss_spread": cells.line("ss_home_spread", NFL, "spreads"),
            "ss_total": cells.line("ss_total", NFL, "totals"),
            "spread_open": cells.line("home_line_open", NFL, "spreads").scatter(
                (season < NFELO_FIRST_REAL_OPENER).arg_true(), None
            ),
            "spread_close": cells.line("home_line_close", NFL, "spreads"),
            "total_open": cells.line("total_line_open", NFL, "totals"),
            "total_close": cells.line("total_line_close", NFL, "totals"),
            **{col: cells.american(col) for col in prices},
        },
    )
    odds = _snapshots(
        games,
        [
            _Quote("nfelo", "spreads", False, "spread_open", "home_line_open_price", "away_line_open_price"),
            _Quote(
                "nfelo", "spreads", True, "spread_close", "home_line_close_price", "away_line_close_price"
            ),
            _Quote("nfelo", "totals", False, "total_open", "over_price_open", "under_price_open"),
            _Quote("nfelo", "totals", True, "total_close", "over_price_close", "under_price_close"),
            _Quote("spreadspoke", "spreads", True, "ss_spread", None, None),
            _Quote("spreadspoke", "totals", True, "ss_total", None, None),
        ],
    )
    return _batch(cells, "nfl-lines", NFL, {"game_results": _results(games), "odds_snapshots": odds})
