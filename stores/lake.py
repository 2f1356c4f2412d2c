"""The lake: Parquet objects under one root, a local folder or ``s3://bucket/prefix``.

Each partition is one object written atomically (temp file + ``os.replace`` locally, a single PUT on
S3), so a reader sees the old or the new version of a partition, never a torn one. The keys, and
what lives under them, are :mod:`stores.layout`'s.

S3 credentials, region and endpoint come from the standard AWS variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...): boto3 resolves them here, and dagster-aws's ``S3Resource`` in the
pipeline (``resources/lake.py``). A plain class, so that the API and the CLI use the lake without
importing Dagster.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from stores.layout import (
    CLUSTER_COLUMNS,
    TABLES,
    PeriodKey,
    effective_keys,
    is_temp_name,
    month_of,
    parse_period_key,
    partition_column,
    raw_prefix,
    table_prefix,
)

DEFAULT_ROOT = "data/lake"
S3_MAX_ATTEMPTS = 5
"""Attempts per S3 call in boto3's ``standard`` retry mode (what ``S3Resource`` defaults to)."""
STAMP_SETTLE_SECONDS = 1
"""How long a folder must have stayed unchanged before :meth:`Lake.folder_stamp` vouches for it."""
READ_ATTEMPTS = 3
"""Listings a daily-table read may take when an object it listed vanished (compaction deleted it)."""
SHADOW_GRACE_SECONDS = 3600
"""How long day objects outlive the month object that replaces them: a reader (an analyst's views)
that listed them before the month object existed keeps finding them for that long."""
MONTH_DAYS_METADATA = "oddsforge.days"
"""The Parquet footer entry of a month object listing the days it holds rows of (ISO dates, comma
separated): the serving manifest names each day's object without reading a month's rows."""
STALE_TEMP_SECONDS = 3600
"""How long a temporary file must have stayed untouched before housekeeping removes it. A live write
touches its file as it goes and ends within seconds (minutes for a DuckDB build), so an hour-old one
was left by a killed process."""


class Lake:
    """Object store for the lake; usable in assets, the CLI and the API alike."""

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
    ) -> None:
        """``endpoint_url`` and ``region_name`` unset mean boto3's own resolution (``AWS_ENDPOINT_URL``,
        ``AWS_REGION`` or AWS). ``client`` is an S3 client to use instead of building one (the
        pipeline's, from ``S3Resource``); a local lake never builds one."""
        self.root = root
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._client = client

    @classmethod
    def from_env(cls) -> Lake:
        """The lake that ``ODDSFORGE_LAKE`` names (default ``./data/lake``)."""
        return cls(root=root_from_env())

    # -- addressing -------------------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    def _s3_key(self, key: str) -> str:
        prefix = self._bucket_prefix[1]
        return f"{prefix}/{key}" if prefix else key

    def _path(self, key: str) -> Path:
        return Path(self.root) / key

    def uri(self, key: str) -> str:
        """A location DuckDB and polars read directly (``s3://...`` or an absolute path)."""
        if self.is_s3:
            return f"s3://{self._bucket_prefix[0]}/{self._s3_key(key)}"
        return str(self._path(key).resolve())

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.endpoint_url, self.region_name)
        return self._client

    # -- bytes ------------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write one object atomically: readers see the previous content or this one."""
        if self.is_s3:
            self.client.put_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key), Body=data)
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic against a crashed writer; no fsync: see docs/decisions.md
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_new(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if absent (inbox dedupe). Returns False when it already existed."""
        if self.is_s3:
            try:
                self.client.put_object(
                    Bucket=self._bucket_prefix[0], Key=self._s3_key(key), Body=data, IfNoneMatch="*"
                )
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
                    return False
                raise
            return True
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # link fails if the target exists: an atomic create-if-absent
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)
        return True

    def get_bytes(self, key: str) -> bytes:
        if self.is_s3:
            obj = self.client.get_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
            return obj["Body"].read()
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        if self.is_s3:
            try:
                self.client.head_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
            except self.client.exceptions.ClientError:
                return False
            return True
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        if self.is_s3:
            self.client.delete_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
        else:
            self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` (relative to the root), sorted; temp files are skipped."""
        if self.is_s3:
            bucket, _ = self._bucket_prefix
            strip = len(self._s3_key(""))
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=self._s3_key(prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    yield obj["Key"][strip:]
            return
        base = self._path(prefix)
        if base.is_file():
            yield prefix
            return
        if not base.exists():
            return
        # Sorted as strings, like S3's listing; os.walk keeps file names as plain strings (the API
        # lists a model's objects on every request).
        root, keys = Path(self.root), []
        for folder, _, files in os.walk(base):
            rel = Path(folder).relative_to(root).as_posix()
            lead = "" if rel == "." else f"{rel}/"
            keys.extend(lead + name for name in files if not name.startswith("."))
        yield from sorted(keys)

    def folder_stamp(self, prefix: str) -> tuple[int, int] | None:
        """A token that changes whenever an object is created, replaced or removed directly under the
        folder ``prefix``: a local directory's inode and modification time. None where there is no
        such token (S3, a missing folder) or it cannot be trusted yet: a directory changed within
        the last :data:`STAMP_SETTLE_SECONDS` may change again inside the file system's timestamp
        granularity without its time moving (as git treats a racily clean index)."""
        if self.is_s3:
            return None
        try:
            st = os.stat(self._path(prefix))
        except OSError:
            return None
        if time.time_ns() - st.st_mtime_ns < STAMP_SETTLE_SECONDS * 1_000_000_000:
            return None
        return st.st_ino, st.st_mtime_ns

    def list_objects(self, prefix: str) -> Iterator[tuple[str, float]]:
        """``(key, modification time in POSIX seconds)`` under ``prefix``, for sensors that track
        what is new; same order and temp-file rule as :meth:`list_keys`."""
        if not self.is_s3:
            for key in self.list_keys(prefix):
                yield key, self._path(key).stat().st_mtime
            return
        bucket, _ = self._bucket_prefix
        strip = len(self._s3_key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=self._s3_key(prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:], obj["LastModified"].timestamp()

    def sweep_temp_files(self, now: float, max_age: float = STALE_TEMP_SECONDS) -> list[tuple[str, int]]:
        """Remove the temporary files a killed writer left (a killed API's half-received upload, a
        killed run's partition): ``(key, bytes)`` of each. S3 has none, a write being one PUT."""
        if self.is_s3:
            return []
        root = Path(self.root)
        return [(p.relative_to(root).as_posix(), n) for p, n in remove_stale_temp(root, now, max_age)]

    # -- Parquet ----------------------------------------------------------------------------------
    def write_parquet(self, key: str, df: pl.DataFrame, metadata: dict[str, str] | None = None) -> int:
        """Write ``df`` as one Parquet object (``metadata`` in its footer), atomically. Returns the
        bytes written."""
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True, metadata=metadata)
        data = buf.getvalue()
        self.put_bytes(key, data)
        return len(data)

    def read_parquet(self, keys: Iterable[str], schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
        """Concatenate the given Parquet objects; an empty list gives an empty frame of ``schema``.

        polars reads the objects in parallel (local paths or ``s3://`` URIs alike).
        """
        listed = list(keys)
        return self.scan_parquet(listed).collect() if listed else pl.DataFrame(schema=schema or {})

    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame:
        """A lazy scan of the given Parquet objects (at least one): a filter on it is pushed into the
        scan, which skips the row groups its statistics rule out."""
        return pl.scan_parquet(
            [self.uri(k) for k in keys],
            storage_options=self.polars_storage_options(),
            missing_columns="insert",
            extra_columns="ignore",
        )

    def partition_keys(self, prefix: str, start: dt.date, end: dt.date) -> list[str]:
        """Parquet keys under ``prefix`` holding rows of dates in ``[start, end)``: day objects of
        those dates and month objects overlapping them, without the days a month object replaces."""
        return [
            k
            for k in effective_keys(self.list_keys(prefix))
            if (p := parse_period_key(k)) is not None and p.span[0] < end and start < p.span[1]
        ]

    def read_partitions(
        self, prefix: str, start: dt.date, end: dt.date, schema: dict[str, pl.DataType], date_col: str
    ) -> pl.DataFrame:
        """The rows of dates in ``[start, end)`` of the daily and month objects under ``prefix``.

        A reader that listed the days of a month just before compaction deleted them lists again:
        the month object it then finds holds the same rows."""
        for attempt in range(READ_ATTEMPTS):
            keys = self.partition_keys(prefix, start, end)
            try:
                df = self.read_parquet(keys, schema)
            except (FileNotFoundError, pl.exceptions.ComputeError):
                if attempt == READ_ATTEMPTS - 1 or all(self.exists(k) for k in keys):
                    raise
                continue
            months = [p for k in keys if (p := parse_period_key(k)) is not None and p.day is None]
            if not months:
                return df
            df = df.filter(pl.col(date_col).is_between(start, end, closed="left"))
            if months[0].family.startswith(TABLES) and months[0].table in CLUSTER_COLUMNS:
                # Day order, each day's rows in the order its day object kept them (model by model):
                # a reader's sums and firsts come out bit for bit as they did before compaction.
                df = df.sort(date_col, maintain_order=True)
            return df
        raise AssertionError("unreachable")

    def held_days(self, prefix: str) -> list[tuple[dt.date, str, float]]:
        """``(day, key, modified)`` for each day with rows under ``prefix``, in day order: a day
        object's day, or each day its month object holds (:meth:`month_days`), never both. What
        an index of days is built from (the serving manifest, the days a table has rows of)."""
        listed = dict(self.list_objects(prefix))
        held: list[tuple[dt.date, str, float]] = []
        for key in effective_keys(listed):
            if (p := parse_period_key(key)) is None:
                continue
            try:
                days = [p.day] if p.day is not None else self.month_days(key)
            except (FileNotFoundError, pl.exceptions.ComputeError):  # a month just left without rows
                continue
            held.extend((day, key, listed[key]) for day in days)
        return sorted(held)

    def month_days(self, month_key: str) -> list[dt.date]:
        """The days a month object holds rows of, sorted: from its footer (:data:`MONTH_DAYS_METADATA`),
        or its date column for a month object written without it."""
        uri, options = self.uri(month_key), self.polars_storage_options()
        days = pl.read_parquet_metadata(uri, storage_options=options).get(MONTH_DAYS_METADATA)
        if days is not None:
            return [dt.date.fromisoformat(d) for d in days.split(",") if d]
        target = parse_period_key(month_key)
        if target is None:
            raise ValueError(f"{month_key!r} is not a month object's key")
        col = target.date_column
        found = pl.scan_parquet(uri, storage_options=options).select(pl.col(col).unique()).collect()
        return sorted(found[col].to_list())

    def read_raw(
        self, table: str, sport: str, start: dt.date, end: dt.date, schema: dict[str, pl.DataType]
    ) -> pl.DataFrame:
        """Every source's raw rows of ``table`` for game dates in ``[start, end)``."""
        return self.read_partitions(raw_prefix(table, sport), start, end, schema, "game_date")

    def read_table(
        self, table: str, sport: str, start: dt.date, end: dt.date, schema: dict[str, pl.DataType]
    ) -> pl.DataFrame:
        """A tidy daily table's rows for game dates in ``[start, end)``."""
        prefix = table_prefix(table, sport)
        return self.read_partitions(prefix, start, end, schema, partition_column(table))

    def write_daily(
        self,
        df: pl.DataFrame,
        key_of: Any,
        days: Iterable[dt.date],
        date_col: str = "game_date",
    ) -> dict[dt.date, int]:
        """Write one object per day in ``days`` from ``df``'s rows of that day.

        ``key_of(day)`` names the object. A day without rows deletes its object, so re-running a
        range replaces it exactly (idempotent partitions). A day whose month has been compacted is
        merged into the month object instead (:meth:`write_months`). Returns rows written per day.
        """
        days = list(days)
        compacted = {
            month
            for month, first in {month_of(d): d for d in days}.items()
            if (p := parse_period_key(key_of(first))) is not None and self.exists(p.month_key)
        }
        counts: dict[dt.date, int] = {}
        if compacted:
            merged = [d for d in days if month_of(d) in compacted]
            counts.update(self.write_months(df, key_of, merged, date_col))
            days = [d for d in days if month_of(d) not in compacted]
        by_day = {key[0]: part for key, part in df.partition_by(date_col, as_dict=True).items()}
        for day in days:
            part = by_day.get(day)
            if part is None or part.is_empty():
                self.delete(key_of(day))
                counts[day] = 0
            else:
                self.write_parquet(key_of(day), part)
                counts[day] = part.height
        return counts

    def write_months(
        self, df: pl.DataFrame, key_of: Any, days: Iterable[dt.date], date_col: str = "game_date"
    ) -> dict[dt.date, int]:
        """Replace the rows of ``days`` with ``df``'s inside one object per month (the month object
        of ``key_of(day)``'s family), as :meth:`write_daily` does per day: each month object is
        rewritten with its other days' rows kept (from the month object, or the day objects it
        replaces: those of ``days`` are deleted, the others by :meth:`compact_month`). A month left
        without rows loses its object. Returns rows written per day."""
        days = sorted(set(days))
        counts = dict.fromkeys(days, 0)
        if not days:
            return counts
        first = parse_period_key(key_of(days[0]))
        if first is None:
            raise ValueError(f"{key_of(days[0])!r} is not a daily object's key")
        listing = [(k, p) for k in self.list_keys(first.folder) if (p := parse_period_key(k)) is not None]
        for key, count in df.group_by(date_col).len().iter_rows():
            if key in counts:
                counts[key] = count
        new = df.filter(pl.col(date_col).is_in(days))
        for month in sorted({month_of(d) for d in days}):
            covered = [d for d in days if month_of(d) == month]
            target = parse_period_key(key_of(covered[0]))
            members = [k for k, p in listing if p.same_month(target)]
            kept = self.read_parquet(effective_keys(members), dict(new.schema))
            if not kept.is_empty():
                kept = kept.filter(~pl.col(date_col).is_in(covered))
            rows = pl.concat([kept, new.filter(pl.col(date_col).is_in(covered))], how="diagonal_relaxed")
            self._put_month(target, rows)
            for key in members:  # replaced days: gone, as write_daily's empty days are
                if (p := parse_period_key(key)) is not None and p.day in covered:
                    self.delete(key)
        return counts

    def compact_month(
        self, month_key: str, now: float, grace: float = SHADOW_GRACE_SECONDS
    ) -> tuple[int, int]:
        """Fold the day objects of ``month_key``'s month into it; (day objects removed, rows written).

        The month object is written first and replaces its days at once for every reader that lists
        (:func:`stores.layout.effective_keys`); the days are deleted only once the month object is
        ``grace`` seconds old (a later run), so a reader that listed them just before never finds
        one gone. A day newer than the month object (a backfill racing an earlier compaction) is
        merged into it first."""
        target = parse_period_key(month_key)
        if target is None or target.day is not None:
            raise ValueError(f"{month_key!r} is not a month object's key")
        listed = {
            k: modified
            for k, modified in self.list_objects(target.folder)
            if (p := parse_period_key(k)) is not None and p.same_month(target)
        }
        month_at = listed.pop(month_key, None)
        newer = sorted(k for k, modified in listed.items() if month_at is None or modified > month_at)
        if newer:
            fresh = self.read_parquet(newer)
            if month_at is not None:
                col, replaced = target.date_column, [parse_period_key(k).day for k in newer]
                base = self.read_parquet([month_key])
                fresh = pl.concat([base.filter(~pl.col(col).is_in(replaced)), fresh], how="diagonal_relaxed")
            return 0, self._put_month(target, fresh)
        if month_at is None or now - month_at < grace:
            return 0, 0
        for key in sorted(listed):
            self.delete(key)
        return len(listed), 0

    def _put_month(self, target: PeriodKey, rows: pl.DataFrame) -> int:
        """Write (or, without rows, delete) ``target``'s month object, in date order and with each
        model's rows together where the table is stored clustered
        (:data:`stores.layout.CLUSTER_COLUMNS`: one model's read skips the row groups of the others,
        sized as the day objects' are), with the days it holds in its footer; the rows written."""
        if rows.is_empty():
            self.delete(target.month_key)
            return 0
        rows = rows.sort(target.date_column, maintain_order=True)
        days = ",".join(d.isoformat() for d in rows[target.date_column].drop_nulls().unique().sort())
        cluster = CLUSTER_COLUMNS.get(target.table) if target.family.startswith(TABLES) else None
        if cluster and all(c in rows.columns for c in cluster):
            rows = rows.sort(*cluster, maintain_order=True)
        self.write_parquet(target.month_key, rows, metadata={MONTH_DAYS_METADATA: days})
        return rows.height

    # -- engines over the lake -------------------------------------------------------------------
    def polars_storage_options(self) -> dict[str, str] | None:
        """Options for ``pl.read_parquet("s3://...")`` matching this lake's S3 settings."""
        if not self.is_s3:
            return None
        creds = self.client._request_signer._credentials.get_frozen_credentials()
        opts = {
            "aws_access_key_id": creds.access_key,
            "aws_secret_access_key": creds.secret_key,
            "aws_region": self.client.meta.region_name or "us-east-1",
            "aws_endpoint_url": self.client.meta.endpoint_url,
        }
        if creds.token:
            opts["aws_session_token"] = creds.token
        if opts["aws_endpoint_url"].startswith("http://"):
            opts["aws_allow_http"] = "true"
        return opts

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let ``con`` read this lake: load the packaged httpfs extension and an S3 secret."""
        if not self.is_s3:
            return
        con.execute(f"LOAD '{httpfs_extension_path()}'")
        creds = self.client._request_signer._credentials.get_frozen_credentials()
        endpoint = self.client.meta.endpoint_url
        host = endpoint.split("://", 1)[-1].rstrip("/")
        params = {
            "KEY_ID": creds.access_key,
            "SECRET": creds.secret_key,
            "REGION": self.client.meta.region_name or "us-east-1",
            "ENDPOINT": host,
            "URL_STYLE": "path" if not host.endswith("amazonaws.com") else "vhost",
            "USE_SSL": "true" if endpoint.startswith("https://") else "false",
        }
        if creds.token:
            params["SESSION_TOKEN"] = creds.token
        body = ", ".join(f"{k} '{v}'" if k not in {"USE_SSL"} else f"{k} {v}" for k, v in params.items())
        con.execute(f"CREATE OR REPLACE SECRET oddsforge_lake (TYPE s3, {body})")


def remove_stale_temp(root: Path, now: float, max_age: float = STALE_TEMP_SECONDS) -> list[tuple[Path, int]]:
    """Remove every temporary file or folder under ``root`` (``layout.is_temp_name``) whose newest
    modification is over ``max_age`` seconds before ``now`` (POSIX seconds); each one's path and
    bytes. Younger ones may belong to a live writer and stay."""
    removed: list[tuple[Path, int]] = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        names = [*dirs, *files]
        stale = [name for name in names if is_temp_name(name) and _idle_since(base / name) < now - max_age]
        for name in stale:
            if name in dirs:
                dirs.remove(name)
            removed.append((base / name, delete_path(base / name)))
    return removed


def delete_path(path: Path) -> int:
    """Delete a file, or a folder and everything in it; the bytes freed (0 if it was gone)."""
    try:
        size = sum(p.stat().st_size for p in [path, *path.rglob("*")] if p.is_file())
    except FileNotFoundError:
        size = 0
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


def _idle_since(path: Path) -> float:
    """The newest modification time of a file, or of a folder and everything in it."""
    try:
        times = [path.stat().st_mtime]
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*")]
    except FileNotFoundError:  # removed meanwhile by its writer
        return float("inf")
    return max(times)


def httpfs_extension_path() -> str:
    """The httpfs extension shipped by the ``duckdb-extension-httpfs`` package (no download)."""
    import duckdb_extension_httpfs

    base = Path(next(iter(duckdb_extension_httpfs.__path__)))
    found = sorted(base.glob("extensions/v*/httpfs.duckdb_extension"))
    if not found:
        raise RuntimeError(f"httpfs extension not found under {base}")
    return str(found[-1])


def root_from_env() -> str:
    """The lake root in ``ODDSFORGE_LAKE`` (default ``./data/lake``), for the lake and its resource."""
    return os.environ.get("ODDSFORGE_LAKE", DEFAULT_ROOT)


def s3_client(endpoint_url: str | None = None, region_name: str | None = None) -> Any:
    """A boto3 S3 client built as dagster-aws's ``S3Resource`` builds one (default session and
    credential chain, standard retries), so the lake reaches the same bucket with or without Dagster.

    boto3 is imported here, not at the top: the API on a local lake never needs it.
    """
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region_name,
        config=Config(retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"}),
    )
