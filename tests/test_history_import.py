"""History importers against the real files in ../shared/data/real and against small broken files.

Hand-checked games quote the raw CSV lines they come from (line 1 = header).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from domain.formats.history import HistoryBatch, HistoryImportError
from domain.sports import SPORTS, sport_info
from domain.tables.schemas import RAW_TABLES
from services.history_files import HISTORY_FORMATS, read_cells, read_history

UTC = dt.UTC
ASSUMED = 1 + 100 / 110  # -110 as a decimal price

REAL_FILES = {
    "kaggle-nba": "nba_kaggle_odds_2008_2025/nba_2008-2025.csv",
    "sbr-nba": "nba_sbr_open_close_2016_2022/nba_sbr_games_2016_2022.csv",
    "nba-team-box": "nba_team_box_2018_2025/nba_team_box_2018_2025.csv",
    "nba-player-logs": "nba_player_gamelogs_2024_25/nba_player_gamelogs_2024_25.csv",
    "nfl-lines": "nfl_spreadspoke_nfelo/nfl_games_scores_lines_1999_2022.csv",
}


@pytest.fixture(scope="module")
def cells(shared_data: Path) -> dict[str, pl.DataFrame]:
    """Every real file's cells, read once for the module."""
    return {fmt: read_cells(shared_data / "real" / path) for fmt, path in REAL_FILES.items()}


@pytest.fixture(scope="module")
def real(shared_data: Path, cells: dict[str, pl.DataFrame]) -> dict[str, HistoryBatch]:
    """Every real file imported; the raw SBR season sheets (through ``read_history``) as ``sbr-nba-raw``."""
    batches = {fmt: HISTORY_FORMATS[fmt].parse(cells[fmt], Path(REAL_FILES[fmt]).name) for fmt in REAL_FILES}
    raw_sheets = shared_data / "real" / "nba_sbr_open_close_2016_2022" / "raw"
    batches["sbr-nba-raw"] = read_history("sbr-nba", sorted(raw_sheets.glob("sbr_nba_odds_*.csv")))
    return batches


def one(frame: pl.DataFrame, **equals: object) -> dict:
    """The single row of ``frame`` whose columns equal ``equals``."""
    rows = frame.filter(**equals)
    assert rows.height == 1, f"{rows.height} rows match {equals}"
    return rows.row(0, named=True)


def snapshot(batch: HistoryBatch, game_id: str, bookmaker: str, market: str, closing: bool = True) -> dict:
    odds = batch.frames["odds_snapshots"].filter(game_id=game_id, bookmaker=bookmaker, market=market)
    return odds.sort("snapshot_time").row(-1 if closing else 0, named=True)


def closing(batch: HistoryBatch, bookmaker: str) -> pl.DataFrame:
    """Closing snapshots of ``bookmaker`` joined to their games."""
    return (
        batch.frames["game_results"]
        .join(batch.frames["odds_snapshots"].filter(bookmaker=bookmaker), on="game_id")
        .filter(pl.col("snapshot_time") == pl.col("commence_time") - dt.timedelta(minutes=1))
    )


def ats(batch: HistoryBatch, bookmaker: str) -> tuple[int, int, int]:
    """(home covers, home fails, pushes) against each game's closing spread of ``bookmaker``."""
    margin = (
        closing(batch, bookmaker)
        .filter(market="spreads")
        .select(m=pl.col("home_score") - pl.col("away_score") + pl.col("line"))["m"]
    )
    return (margin > 0).sum(), (margin < 0).sum(), (margin == 0).sum()


# --- counts and shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "games", "lines", "stat_rows"),
    [
        # 23118 games; spreads miss 3, moneylines 3298 (+1 garbled '8').
        ("kaggle-nba", 23118, 23115 + 23118 + (23118 - 3299), 0),
        # open + close spread and total (4 + 1 missing, 1 garbled each) + 6470 closing moneylines.
        ("sbr-nba", 6470, 2 * (2 * 6470 - 6) + 6470, 0),
        # 9519 rows, 5 without a box score.
        ("nba-team-box", 9514, 0, 2 * 9514),
        ("nba-player-logs", 1230, 0, 18851),
        # nfelo: close spread and total for all, open spread from 2007 (4309 games); spreadspoke: 2 x 6421.
        ("nfl-lines", 6421, 6421 + 4309 + 6421 + 2 * 6421, 0),
    ],
)
def test_real_file_counts(real, fmt, games, lines, stat_rows):
    batch = real[fmt]
    assert batch.counts == {"games": games, "lines": lines, "stat_rows": stat_rows}
    assert batch.source == fmt and batch.sport == HISTORY_FORMATS[fmt].sport
    for table, frame in batch.frames.items():
        assert frame.schema == pl.Schema(RAW_TABLES[table])
        assert frame["source"].unique().to_list() == [fmt]
        assert frame["sport"].unique().to_list() == [batch.sport]
        assert frame.select(pl.all().exclude(_optional(table)).null_count()).sum_horizontal().item() == 0
        assert set(frame["game_id"].str.split("_").list.get(2)) <= set(sport_info(batch.sport).teams)


def _optional(table: str) -> list[str]:
    """Columns that may legitimately be null."""
    return {
        "game_results": ["neutral", "source_event_id"],
        "odds_snapshots": ["line", "public_first_pct"],
        "team_box": ["minutes", "oreb", "dreb", "pf"],
        "player_box": [],
    }[table]


def test_snapshot_rules_hold_everywhere(real):
    for fmt in ("kaggle-nba", "sbr-nba", "nfl-lines"):
        odds = (
            real[fmt]
            .frames["odds_snapshots"]
            .join(real[fmt].frames["game_results"].select("game_id", "commence_time"), on="game_id")
        )
        lead = odds["commence_time"] - odds["snapshot_time"]
        assert set(lead.unique().to_list()) <= {dt.timedelta(minutes=1), dt.timedelta(days=1)}
        assert odds.filter(market="h2h")["line"].null_count() == odds.filter(market="h2h").height
        assert odds.filter(pl.col("market") != "h2h")["line"].null_count() == 0
        assumed = odds.filter("priced_by_assumption")
        assert assumed.select(pl.col("price_first", "price_second") == ASSUMED).to_series().all()
        assert odds.filter(market="h2h")["priced_by_assumption"].not_().all()
        lines = odds.filter(pl.col("market") != "h2h")["line"]
        assert ((lines * 2).round() == lines * 2).all()


def test_garbled_values_are_dropped_with_warnings(real):
    assert real["kaggle-nba"].warnings == [
        "nba_2008-2025.csv column 'moneyline_away': 1 value(s) dropped "
        "(not an American price: |price| < 100); first at line 7024"
    ]
    assert [w.split(":")[0] for w in real["sbr-nba"].warnings] == [
        "nba_sbr_games_2016_2022.csv column 'home_spread_open'",  # -2.5115
        "nba_sbr_games_2016_2022.csv column 'total_open'",  # 1955.5
    ]
    assert real["nba-team-box"].warnings == [
        "nba_team_box_2018_2025.csv: 5 row(s) left out (no box score: GAME_ID is empty); first at line 8372"
    ]
    assert real["nba-player-logs"].warnings == real["nfl-lines"].warnings == []


# --- kaggle-nba -------------------------------------------------------------------------------------


def test_kaggle_hand_checked_games(real):
    batch = real["kaggle-nba"]
    games = batch.frames["game_results"]
    # line 2: 2008,10/30/07,TRUE,FALSE,por,sa,97,106,...,home,13,189.5,900,-1400,...
    g = one(games, game_id="nba_20071030_POR_SAS")
    assert (g["home_team"], g["away_team"], g["home_score"], g["away_score"]) == ("SAS", "POR", 106, 97)
    assert g["season"] == "2007-08" and g["neutral"] is None and g["completed"]
    assert g["commence_time"] == dt.datetime(2007, 10, 30, 23, 0, tzinfo=UTC)  # 19:00 EDT
    spread = snapshot(batch, "nba_20071030_POR_SAS", "kaggle", "spreads")
    assert spread["line"] == -13.0 and spread["priced_by_assumption"]
    assert spread["snapshot_time"] == dt.datetime(2007, 10, 30, 22, 59, tzinfo=UTC)
    assert spread["price_first"] == spread["price_second"] == pytest.approx(ASSUMED)
    assert snapshot(batch, "nba_20071030_POR_SAS", "kaggle", "totals")["line"] == 189.5
    h2h = snapshot(batch, "nba_20071030_POR_SAS", "kaggle", "h2h")
    assert h2h["line"] is None and not h2h["priced_by_assumption"]
    assert (h2h["price_first"], h2h["price_second"]) == pytest.approx((1 + 100 / 1400, 10.0))

    # line 16665: 2020,10/11/20,FALSE,TRUE,lal,mia,106,93,...,away,5.5,215,-250,210,... (Finals game 6;
    # the season column says 2019-20 although the date alone would say 2020-21)
    g = one(games, game_id="nba_20201011_LAL_MIA")
    assert (g["home_score"], g["away_score"], g["season"]) == (93, 106, "2019-20")
    assert snapshot(batch, g["game_id"], "kaggle", "spreads")["line"] == 5.5
    assert snapshot(batch, g["game_id"], "kaggle", "totals")["line"] == 215.0
    h2h = snapshot(batch, g["game_id"], "kaggle", "h2h")
    assert (h2h["price_first"], h2h["price_second"]) == pytest.approx((3.1, 1.4))

    # line 23119: 2025,6/22/25,FALSE,TRUE,ind,okc,91,103,...,home,6.5,215.5,,,... (no moneyline)
    g = one(games, game_id="nba_20250622_IND_OKC")
    assert (g["home_score"], g["away_score"], g["season"]) == (103, 91, "2024-25")
    odds = batch.frames["odds_snapshots"].filter(game_id="nba_20250622_IND_OKC")
    assert sorted(zip(odds["market"], odds["line"], strict=True)) == [("spreads", -6.5), ("totals", 215.5)]

    # line 7024: moneyline_away '8' is no price: spread and total stay, h2h goes.
    odds = batch.frames["odds_snapshots"].filter(game_id="nba_20130202_CHI_ATL")
    assert sorted(odds["market"]) == ["spreads", "totals"]


def test_kaggle_home_line_agrees_with_its_ats_column(real, cells):
    """``id_spread`` (1 favourite covered, 0 underdog, 2 push) checks the sign of every home line."""
    raw = cells["kaggle-nba"]
    batch = real["kaggle-nba"]
    spreads = batch.frames["odds_snapshots"].filter(market="spreads").select("game_id", "line")
    ids = (
        batch.frames["game_results"]
        .select("game_id")
        .with_columns(id_spread=raw["id_spread"].cast(pl.Int8), fav=raw["whos_favored"])
    )
    got = (
        batch.frames["game_results"]
        .join(spreads, on="game_id")
        .join(ids, on="game_id")
        .with_columns(home_margin=pl.col("home_score") - pl.col("away_score") + pl.col("line"))
        .with_columns(
            derived=pl.when(pl.col("home_margin") == 0)
            .then(2)
            .when((pl.col("home_margin") > 0) == (pl.col("fav") == "home"))
            .then(1)
            .otherwise(0)
        )
    )
    assert got.height == 23115
    assert (got["derived"] == got["id_spread"]).all()
    assert ats(batch, "kaggle")[2] == 335  # the README's 335 pushes


# --- sbr-nba ----------------------------------------------------------------------------------------


def test_sbr_hand_checked_games(real):
    batch = real["sbr-nba"]
    games = batch.frames["game_results"]
    # line 2: 2016-17,2016-10-25,501,502,False,NewYork,Cleveland,NYK,CLE,...,88,...,117,-9.5,-9.0,205.5,206.0,
    #         355.0,-450.0,...
    g = one(games, game_id="nba_20161025_NYK_CLE")
    assert (g["home_score"], g["away_score"], g["neutral"], g["season"]) == (117, 88, False, "2016-17")
    opening = snapshot(batch, g["game_id"], "sbr", "spreads", closing=False)
    closing = snapshot(batch, g["game_id"], "sbr", "spreads")
    assert (opening["line"], closing["line"]) == (-9.5, -9.0)
    assert opening["snapshot_time"] == dt.datetime(2016, 10, 24, 23, 0, tzinfo=UTC)
    assert closing["snapshot_time"] == dt.datetime(2016, 10, 25, 22, 59, tzinfo=UTC)
    assert snapshot(batch, g["game_id"], "sbr", "totals", closing=False)["line"] == 205.5
    assert snapshot(batch, g["game_id"], "sbr", "totals")["line"] == 206.0
    h2h = snapshot(batch, g["game_id"], "sbr", "h2h")
    assert (h2h["price_first"], h2h["price_second"]) == pytest.approx((1 + 100 / 450, 4.55))
    assert batch.frames["odds_snapshots"].filter(game_id=g["game_id"]).height == 5

    # line 1927: 2017-18,2018-01-11,901,902,True,Boston,Philadelphia,BOS,PHI,...,114,...,103,1.5,1.5,205.5,
    #            211.5,-130.0,110.0,... (London: neutral; winter, so 19:00 EST = 00:00 UTC next day)
    g = one(games, game_id="nba_20180111_BOS_PHI")
    assert (g["home_score"], g["away_score"], g["neutral"]) == (103, 114, True)
    closing = snapshot(batch, g["game_id"], "sbr", "spreads")
    assert closing["line"] == 1.5
    assert closing["snapshot_time"] == dt.datetime(2018, 1, 11, 23, 59, tzinfo=UTC)
    assert snapshot(batch, g["game_id"], "sbr", "totals")["line"] == 211.5
    h2h = snapshot(batch, g["game_id"], "sbr", "h2h")
    assert (h2h["price_first"], h2h["price_second"]) == pytest.approx((2.1, 1 + 100 / 130))


def test_sbr_closing_lines_equal_kaggle_and_readme_ats(real):
    """The README: Kaggle's lines are SBR's closing lines in all 6,470 games; home ATS 3149/3206/114."""
    assert ats(real["sbr-nba"], "sbr") == (3149, 3206, 114)
    cols = ["game_id", "market", "line", "price_first", "price_second"]
    both = (
        closing(real["sbr-nba"], "sbr")
        .select(cols)
        .join(closing(real["kaggle-nba"], "kaggle").select(cols), on=["game_id", "market"])
    )
    assert both.height == 3 * 6470 - 2  # SBR misses one closing spread and total
    assert (both["line"].eq_missing(both["line_right"])).all()
    for side in ("price_first", "price_second"):
        assert ((both[side] - both[f"{side}_right"]).abs() < 1e-12).all()


def test_sbr_raw_sheets_match_the_joined_file(real):
    raw, joined = real["sbr-nba-raw"], real["sbr-nba"]
    assert raw.frames["game_results"].sort("game_id").equals(joined.frames["game_results"].sort("game_id"))
    keys = ["game_id", "bookmaker", "market", "snapshot_time"]
    extra = raw.frames["odds_snapshots"].join(joined.frames["odds_snapshots"], on=keys, how="anti")
    assert joined.frames["odds_snapshots"].join(raw.frames["odds_snapshots"], on=keys, how="anti").is_empty()
    # Where one row of a pair is garbled or blank, the joined file dropped both lines; the raw parser
    # keeps the readable total (e.g. raw/sbr_nba_odds_2019-20.csv lines 686-687: 216 / 1105).
    assert sorted(zip(extra["game_id"], extra["line"], strict=True)) == [
        ("nba_20191209_LAC_IND", 216.0),
        ("nba_20191209_OKC_UTA", 212.5),
        ("nba_20191219_HOU_LAC", 235.5),
    ]
    same = raw.frames["odds_snapshots"].join(joined.frames["odds_snapshots"], on=keys)
    assert same.height == joined.lines
    assert same["line"].eq_missing(same["line_right"]).all()


# --- nba-team-box -----------------------------------------------------------------------------------


def test_team_box_hand_checked_games(real):
    batch = real["nba-team-box"]
    box = batch.frames["team_box"]
    stats = [
        "pts",
        "reb",
        "ast",
        "fgm",
        "fga",
        "fg3m",
        "fg3a",
        "ftm",
        "fta",
        "tov",
        "stl",
        "blk",
        "plus_minus",
    ]
    # line 2: 2018,2017-10-17,...,cle,bos,...,0021700001,...,CLE,102,50,19,38,83,5,22,21,25,17,3,4,3,
    #         BOS,99,46,24,36,88,8,32,19,25,12,11,4,-3,3
    home = one(box, game_id="nba_20171017_BOS_CLE", team="CLE")
    away = one(box, game_id="nba_20171017_BOS_CLE", team="BOS")
    assert (home["opponent"], home["is_home"], away["opponent"], away["is_home"]) == (
        "BOS",
        True,
        "CLE",
        False,
    )
    assert [home[s] for s in stats] == [102, 50, 19, 38, 83, 5, 22, 21, 25, 17, 3, 4, 3]
    assert [away[s] for s in stats] == [99, 46, 24, 36, 88, 8, 32, 19, 25, 12, 11, 4, -3]
    assert home["oreb"] is None and home["minutes"] is None
    g = one(batch.frames["game_results"], game_id="nba_20171017_BOS_CLE")
    assert (g["home_score"], g["away_score"], g["source_event_id"], g["season"]) == (
        102,
        99,
        "0021700001",
        "2017-18",
    )
    # line 9520: 2025,2025-04-13,...,no,okc,...,0022401196,...,NOP,100,47,22,35,91,7,38,23,30,13,6,4,-15,
    #            OKC,115,54,16,41,98,9,47,24,27,10,8,4,15,-15   ("home" = NOP in this file's columns)
    nop = one(box, game_id="nba_20250413_OKC_NOP", team="NOP")
    okc = one(box, game_id="nba_20250413_OKC_NOP", team="OKC")
    assert nop["is_home"] and not okc["is_home"]
    assert [nop[s] for s in stats] == [100, 47, 22, 35, 91, 7, 38, 23, 30, 13, 6, 4, -15]
    assert [okc[s] for s in stats] == [115, 54, 16, 41, 98, 9, 47, 24, 27, 10, 8, 4, 15]


def test_team_box_games_are_kaggle_games(real):
    tb, kaggle = real["nba-team-box"].frames["game_results"], real["kaggle-nba"].frames["game_results"]
    assert tb.join(kaggle, on="game_id", how="anti").is_empty()
    differ = tb.join(kaggle, on="game_id").filter(pl.col("home_score") != pl.col("home_score_right"))
    assert differ.height <= 1  # the README: points match Kaggle in 99.99% of games


# --- nba-player-logs --------------------------------------------------------------------------------


def test_player_logs_hand_checked_rows(real):
    box = real["nba-player-logs"].frames["player_box"]
    stats = [
        "minutes",
        "pts",
        "fgm",
        "fga",
        "fg3m",
        "fg3a",
        "ftm",
        "fta",
        "oreb",
        "dreb",
        "reb",
        "ast",
        "stl",
        "blk",
        "tov",
        "pf",
        "plus_minus",
    ]
    # line 2: 22024,1628389,22400065,2024-10-23,MIA vs. ORL,L,26,1,5,0.2,0,2,0.0,7,10,0.7,3,2,5,1,0,0,0,1,9,
    #         -30,...,Bam Adebayo
    row = one(box, game_id="nba_20241023_ORL_MIA", player_id="1628389")
    assert (row["team"], row["opponent"], row["player_name"]) == ("MIA", "ORL", "Bam Adebayo")
    assert [row[s] for s in stats] == [26, 9, 1, 5, 0, 2, 7, 10, 3, 2, 5, 1, 0, 0, 0, 1, -30]
    # line 3: 22024,1628389,22400088,2024-10-26,MIA @ CHA,W,33,6,17,...,12,0,...
    row = one(box, game_id="nba_20241026_MIA_CHA", player_id="1628389")
    assert (row["team"], row["opponent"], row["minutes"], row["pts"]) == ("MIA", "CHA", 33, 12)
    # line 7006: 22024,203500,0022400109,2024-10-28 00:00:00,HOU @ SAS,W,14,3,3,1.0,0,0,0.0,0,1,0.0,
    #            1,2,3,0,0,0,1,3,6,11,...,Steven Adams   (the file's second date and id style)
    row = one(box, game_id="nba_20241028_HOU_SAS", player_id="203500")
    assert row["game_date"] == dt.date(2024, 10, 28) and (row["team"], row["opponent"]) == ("HOU", "SAS")
    assert [row[s] for s in stats] == [14, 6, 3, 3, 0, 0, 0, 1, 1, 2, 3, 0, 0, 0, 1, 3, 11]


def test_player_log_games_are_kaggle_games(real):
    games = real["nba-player-logs"].frames["player_box"].select("game_id").unique()
    assert games.join(real["kaggle-nba"].frames["game_results"], on="game_id", how="anti").is_empty()


# --- nfl-lines --------------------------------------------------------------------------------------


def test_nfl_hand_checked_games(real):
    batch = real["nfl-lines"]
    games = batch.frames["game_results"]
    # line 2: 1999_01_ARI_PHI,1999-09-12,1999,1,False,False,PHI,ARI,...,24,25,3.0,37.0,ARI,-3.0,37.0,
    #         3.0,,,3.0,,,,,,37.0,,,...   (no opener before 2007, no prices)
    g = one(games, game_id="nfl_19990912_ARI_PHI")
    assert (g["home_score"], g["away_score"], g["season"], g["neutral"]) == (24, 25, "1999", False)
    assert g["commence_time"] == dt.datetime(1999, 9, 12, 17, 0, tzinfo=UTC)  # 13:00 EDT
    assert g["source_event_id"] == "1999_01_ARI_PHI"
    odds = batch.frames["odds_snapshots"].filter(game_id=g["game_id"])
    assert sorted(zip(odds["bookmaker"], odds["market"], odds["line"], strict=True)) == [
        ("nfelo", "spreads", 3.0),
        ("nfelo", "totals", 37.0),
        ("spreadspoke", "spreads", 3.0),
        ("spreadspoke", "totals", 37.0),
    ]
    assert odds["priced_by_assumption"].all()

    # line 6371: 2022_16_OAK_PIT,2022-12-24,...,PIT,OAK,Pittsburgh Steelers,Las Vegas Raiders,13,10,-2.0,38.0,
    #   PIT,-2.0,38.0,-1.5,-110.0,-110.0,-2.5,-112.0,-108.0,,,,38.5,-110.0,-102.0,...  (OAK -> LV)
    g = one(games, game_id="nfl_20221224_LV_PIT")
    assert (g["home_team"], g["away_team"], g["home_score"], g["away_score"]) == ("PIT", "LV", 13, 10)
    opening = snapshot(batch, g["game_id"], "nfelo", "spreads", closing=False)
    assert opening["line"] == -1.5 and not opening["priced_by_assumption"]
    assert opening["snapshot_time"] == dt.datetime(2022, 12, 23, 18, 0, tzinfo=UTC)  # 13:00 EST - 1 day
    closing = snapshot(batch, g["game_id"], "nfelo", "spreads")
    assert closing["line"] == -2.5
    assert (closing["price_first"], closing["price_second"]) == pytest.approx((1 + 100 / 112, 1 + 100 / 108))
    total = snapshot(batch, g["game_id"], "nfelo", "totals")
    assert total["line"] == 38.5 and not total["priced_by_assumption"]
    assert (total["price_first"], total["price_second"]) == pytest.approx(
        (1 + 100 / 102, ASSUMED)
    )  # over -102
    assert snapshot(batch, g["game_id"], "spreadspoke", "spreads")["line"] == -2.0
    assert snapshot(batch, g["game_id"], "spreadspoke", "totals")["line"] == 38.0

    # line 6422: 2022_22_KC_PHI,2023-02-12,2022,22,True,True,PHI,KC,...,35,38,-1.0,51.0,...,-1.0,,,-1.0,,,
    #   ,,,51.0,-104.0,-108.0,...  (Super Bowl LVII: neutral, season 2022)
    g = one(games, game_id="nfl_20230212_KC_PHI")
    assert (g["home_score"], g["away_score"], g["neutral"], g["season"]) == (35, 38, True, "2022")
    closing = snapshot(batch, g["game_id"], "nfelo", "spreads")
    assert closing["line"] == -1.0 and closing["priced_by_assumption"]
    assert closing["snapshot_time"] == dt.datetime(2023, 2, 12, 17, 59, tzinfo=UTC)
    total = snapshot(batch, g["game_id"], "nfelo", "totals")
    assert (total["line"], total["price_first"], total["price_second"]) == pytest.approx(
        (51.0, 1 + 100 / 108, 1 + 100 / 104)
    )


def test_nfl_readme_ats_and_swapped_games(real):
    batch = real["nfl-lines"]
    assert ats(batch, "nfelo") == (3051, 3180, 190)  # the README's home ATS against the nfelo close
    # Super Bowl XXXIV (lines_home_away_swapped=True in the file): Rams favoured by 7 at "home".
    assert snapshot(batch, "nfl_20000130_TEN_LAR", "nfelo", "spreads")["line"] == -7.0
    assert batch.frames["game_results"]["neutral"].sum() == 76


# --- teams ------------------------------------------------------------------------------------------


def test_team_aliases_point_at_canonical_codes():
    for sport in SPORTS.values():
        assert set(sport.aliases.values()) == set(sport.teams)


@pytest.mark.parametrize(
    ("sport", "names", "codes"),
    [
        (
            "basketball_nba",
            [
                "NJN",
                "New Jersey Nets",
                "SEA",
                "Seattle SuperSonics",
                "NOH",
                "NOK",
                "no",
                "CHH",
                "Charlotte Bobcats",
                "gs",
                "sa",
                "ny",
                "utah",
                "wsh",
                "bkn",
                "L.A. Clippers",
                "LALakers",
                "GoldenState",
                "PHO",
                "xyz",
            ],
            [
                "BKN",
                "BKN",
                "OKC",
                "OKC",
                "NOP",
                "NOP",
                "NOP",
                "CHA",
                "CHA",
                "GSW",
                "SAS",
                "NYK",
                "UTA",
                "WAS",
                "BKN",
                "LAC",
                "LAL",
                "GSW",
                "PHX",
                None,
            ],
        ),
        (
            "americanfootball_nfl",
            [
                "STL",
                "St. Louis Rams",
                "SD",
                "San Diego Chargers",
                "OAK",
                "Oakland Raiders",
                "LVR",
                "WSH",
                "Washington Redskins",
                "Washington Football Team",
                "JAC",
                "LA",
                "Houston Texans",
                "Dallas",
            ],
            ["LAR", "LAR", "LAC", "LAC", "LV", "LV", "LV", "WAS", "WAS", "WAS", "JAX", "LAR", "HOU", None],
        ),
    ],
)
def test_team_code_expr(sport, names, codes):
    got = pl.DataFrame({"n": names}).select(sport_info(sport).team_code_expr(pl.col("n")))["n"].to_list()
    assert got == codes


# --- bad input --------------------------------------------------------------------------------------

SAMPLES: dict[str, tuple[str, str]] = {
    "kaggle-nba": (
        "nba.csv",
        """\
season,date,regular,playoffs,away,home,score_away,score_home,whos_favored,spread,total,moneyline_away,moneyline_home
2008,10/30/07,TRUE,FALSE,por,sa,97,106,home,13,189.5,900,-1400
2008,10/30/07,TRUE,FALSE,hou,lal,95,93,away,5,199,-230,190
""",
    ),
    "sbr-nba": (
        "sbr_nba_odds_2016-17.csv",
        """\
Date,Rot,VH,Team,1st,2nd,3rd,4th,Final,Open,Close,ML,2H
1025,501,V,NewYork,18,27,19,24,88,205.5,206,355,103.5
1025,502,H,Cleveland,28,20,34,35,117,9.5,9,-450,5
1025,503,V,Utah,26,20,37,21,104,194,192,195,99.5
1025,504,H,Portland,26,28,23,36,113,6,5.5,-235,pk
""",
    ),
    "nba-team-box": (
        "box.csv",
        """\
season,date,home_abbr,away_abbr,GAME_ID,SEASON_TYPE,home_pts,home_reb,home_ast,home_fgm,home_fga,home_fg3m,\
home_fg3a,home_ftm,home_fta,home_tov,home_stl,home_blk,home_plus_minus,away_pts,away_reb,away_ast,away_fgm,\
away_fga,away_fg3m,away_fg3a,away_ftm,away_fta,away_tov,away_stl,away_blk,away_plus_minus
2018,2017-10-17,CLE,BOS,0021700001,Regular Season,102,50,19,38,83,5,22,21,25,17,3,4,3,\
99,46,24,36,88,8,32,19,25,12,11,4,-3
2018,2017-10-17,GSW,HOU,0021700002,Regular Season,121,41,34,43,80,16,30,19,21,17,5,9,-1,\
122,43,28,47,97,15,41,13,19,13,9,5,1
""",
    ),
    "nba-player-logs": (
        "logs.csv",
        """\
SEASON_ID,Player_ID,Game_ID,GAME_DATE,MATCHUP,WL,MIN,FGM,FGA,FG3M,FG3A,FTM,FTA,OREB,DREB,REB,AST,STL,BLK,TOV,PF,\
PTS,PLUS_MINUS,PLAYER_NAME
22024,1628389,22400065,2024-10-23,MIA vs. ORL,L,26,1,5,0,2,7,10,3,2,5,1,0,0,0,1,9,-30,Bam Adebayo
22024,1628389,22400088,2024-10-26,MIA @ CHA,W,33,6,17,0,2,0,1,4,7,11,3,1,1,1,1,12,0,Bam Adebayo
""",
    ),
    "nfl-lines": (
        "nfl.csv",
        """\
game_id,schedule_date,season,home_team,away_team,home_score,away_score,neutral_site,ss_home_spread,ss_total,\
home_line_open,home_line_open_price,away_line_open_price,home_line_close,home_line_close_price,\
away_line_close_price,total_line_open,under_price_open,over_price_open,total_line_close,under_price_close,\
over_price_close
1999_01_ARI_PHI,1999-09-12,1999,PHI,ARI,24,25,False,3.0,37.0,3.0,,,3.0,,,,,,37.0,,
2022_16_OAK_PIT,2022-12-24,2022,PIT,OAK,13,10,False,-2.0,38.0,-1.5,-110,-110,-2.5,-112,-108,,,,38.5,-110,-102
""",
    ),
}

# Per format: a number column, a team column, a required column, and what a bad number reads like.
BAD = {
    "kaggle-nba": ("spread", "home", "score_home", "is not a number"),
    "sbr-nba": ("Close", "Team", "Final", "is not a number, pk or NL"),
    "nba-team-box": ("away_fga", "home_abbr", "home_pts", "is not a number"),
    "nba-player-logs": ("PTS", "MATCHUP", "MIN", "is not a number"),
    "nfl-lines": ("home_line_close_price", "away_team", "home_score", "is not a number"),
}


def write(tmp_path: Path, fmt: str, edit=None) -> Path:
    """The format's sample file in ``tmp_path``, after ``edit(frame)`` if given."""
    name, text = SAMPLES[fmt]
    path = tmp_path / name
    path.write_text(text)
    if edit is not None:
        edit(pl.read_csv(path, infer_schema=False)).write_csv(path)
    return path


def set_cell(row: int, col: str, value: str):
    """An edit that sets data row ``row`` (0-based; file line row + 2) of ``col`` to ``value``."""
    return lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(col)).alias(col)
    )


@pytest.mark.parametrize("fmt", SAMPLES)
def test_samples_import(tmp_path, fmt):
    batch = read_history(fmt, [write(tmp_path, fmt)])
    assert batch.games == 2 and batch.warnings == []


@pytest.mark.parametrize("fmt", SAMPLES)
def test_bad_number_names_file_line_and_column(tmp_path, fmt):
    col, _, _, says = BAD[fmt]
    path = write(tmp_path, fmt, set_cell(1, col, "abc"))
    with pytest.raises(HistoryImportError) as err:
        read_history(fmt, [path])
    assert str(err.value) == f"{path.name} line 3, column '{col}': 'abc' {says}"


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf"])
def test_non_finite_numbers_are_not_numbers(tmp_path, value):
    path = write(tmp_path, "kaggle-nba", set_cell(0, "total", value))
    with pytest.raises(
        HistoryImportError, match=rf"^nba\.csv line 2, column 'total': '{value}' is not a number$"
    ):
        read_history("kaggle-nba", [path])


@pytest.mark.parametrize("fmt", SAMPLES)
def test_unknown_team_names_file_line_and_column(tmp_path, fmt):
    _, col, _, _ = BAD[fmt]
    path = write(tmp_path, fmt, set_cell(1, col, "MIA @ Gotham" if col == "MATCHUP" else "Gotham"))
    with pytest.raises(HistoryImportError) as err:
        read_history(fmt, [path])
    title = "NFL" if fmt == "nfl-lines" else "NBA"
    assert str(err.value) == f"{path.name} line 3, column '{col}': 'Gotham' is not a known {title} team"


def test_bad_matchup_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "nba-player-logs", set_cell(0, "MATCHUP", "MIA v ORL"))
    with pytest.raises(
        HistoryImportError, match=r"^logs\.csv line 2, column 'MATCHUP': 'MIA v ORL' is not like"
    ):
        read_history("nba-player-logs", [path])


@pytest.mark.parametrize("fmt", SAMPLES)
def test_missing_column_names_file_line_and_column(tmp_path, fmt):
    _, _, col, _ = BAD[fmt]
    path = write(tmp_path, fmt, lambda df: df.drop(col))
    with pytest.raises(HistoryImportError) as err:
        read_history(fmt, [path])
    assert str(err.value) == f"{path.name} line 1, column '{col}': missing from the header"


@pytest.mark.parametrize("fmt", SAMPLES)
def test_missing_required_value_names_file_line_and_column(tmp_path, fmt):
    _, _, col, _ = BAD[fmt]
    path = write(tmp_path, fmt, set_cell(1, col, ""))
    with pytest.raises(HistoryImportError) as err:
        read_history(fmt, [path])
    assert str(err.value) == f"{path.name} line 3, column '{col}': value is missing"


@pytest.mark.parametrize("fmt", SAMPLES)
def test_empty_file_and_header_only(tmp_path, fmt):
    name, text = SAMPLES[fmt]
    path = tmp_path / name
    path.write_text("")
    with pytest.raises(HistoryImportError, match=rf"^{path.name} line 1: the file is empty"):
        read_history(fmt, [path])
    path.write_text(
        text.split("\n")[0] + "\n" if fmt != "nba-team-box" else text[: text.index("\n2018")] + "\n"
    )
    with pytest.raises(HistoryImportError, match=rf"^{path.name} line 2: no data rows after the header$"):
        read_history(fmt, [path])


def test_duplicate_game_names_both_lines(tmp_path):
    path = write(tmp_path, "kaggle-nba", lambda df: pl.concat([df, df.head(1)]))
    with pytest.raises(HistoryImportError) as err:
        read_history("kaggle-nba", [path])
    assert (
        str(err.value)
        == "nba.csv line 4, column 'date': game nba_20071030_POR_SAS is already listed at line 2"
    )


def test_sbr_raw_needs_season_in_name_and_paired_rows(tmp_path):
    good = write(tmp_path, "sbr-nba")
    nameless = good.rename(tmp_path / "odds.csv")
    with pytest.raises(HistoryImportError, match=r"^odds\.csv line 1, column 'Date': .*file name must carry"):
        read_history("sbr-nba", [nameless])
    path = write(tmp_path, "sbr-nba", lambda df: df.head(3))
    with pytest.raises(
        HistoryImportError, match=r"^sbr_nba_odds_2016-17\.csv line 4, column 'VH': odd row count"
    ):
        read_history("sbr-nba", [path])
    path = write(tmp_path, "sbr-nba", set_cell(1, "VH", "V"))
    with pytest.raises(
        HistoryImportError, match=r"^sbr_nba_odds_2016-17\.csv line 3, column 'VH': 'V' does not"
    ):
        read_history("sbr-nba", [path])


def test_sbr_raw_sample_lines_and_pickem(tmp_path):
    """Favourite's row holds the spread, the other the total; 'pk' is a spread of 0."""
    path = write(tmp_path, "sbr-nba", set_cell(3, "Close", "pk"))
    odds = read_history("sbr-nba", [path]).frames["odds_snapshots"].sort("game_id", "market", "snapshot_time")
    got = list(zip(odds["game_id"], odds["market"], odds["line"], strict=True))
    assert got == [
        ("nba_20161025_NYK_CLE", "h2h", None),
        ("nba_20161025_NYK_CLE", "spreads", -9.5),
        ("nba_20161025_NYK_CLE", "spreads", -9.0),
        ("nba_20161025_NYK_CLE", "totals", 205.5),
        ("nba_20161025_NYK_CLE", "totals", 206.0),
        ("nba_20161025_UTA_POR", "h2h", None),
        ("nba_20161025_UTA_POR", "spreads", -6.0),
        ("nba_20161025_UTA_POR", "spreads", 0.0),
        ("nba_20161025_UTA_POR", "totals", 194.0),
        ("nba_20161025_UTA_POR", "totals", 192.0),
    ]


def test_several_files_make_one_batch_and_unknown_format_is_refused(tmp_path):
    first = write(tmp_path, "kaggle-nba")
    second = tmp_path / "nba2.csv"
    second.write_text(SAMPLES["kaggle-nba"][1].replace("10/30/07", "11/2/07"))
    batch = read_history("kaggle-nba", [first, second])
    assert batch.games == 4 and batch.lines == 12
    with pytest.raises(ValueError, match="unknown history format 'espn'"):
        read_history("espn", [first])
