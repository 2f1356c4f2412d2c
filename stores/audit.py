"""The audit log's store: one immutable JSON object per record under ``inbox/audit/`` (SPEC 9), and
the ``audit`` table analysts query, ``tables/audit/{YYYY-MM}.parquet`` (keys: ``stores/layout.py``).

:func:`append` writes a record create-if-absent under its id (a digest of the action's business key),
so an action retried or re-run leaves exactly one record, and nothing here can change or delete one.
Whoever acts appends: the API (terms, self-exclusion), the operator's command line (review decisions),
the pipeline (suspensions, refunds, payouts, account state changes). :func:`read_audit` gives the
records as the ``audit`` table's rows, oldest first, straight from the inbox (``oddsforge audit``
needs no pipeline run).

The table is kept per month of the records' time (UTC), as the ledger is, so folding new records
rewrites only the months they fall in; :func:`fold_records` adds the records a month lacks and never
drops or replaces one, so the table is the union of every record ever stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from domain.compliance.audit import AUDIT, AuditRecord, merge_records
from domain.tables.schemas import empty
from stores.lake import Lake
from stores.layout import AUDIT_INBOX, AUDIT_TABLE_PREFIX, audit_key, audit_table_key, parse_audit_key

READ_THREADS = 16
"""Records read at once: each is a small object, so a listing of many is bound by round trips."""


def append(lake: Lake, record: AuditRecord) -> bool:
    """Store ``record`` once; False when a record with its business key was already there."""
    row = record.row()
    body = json.dumps(row | {"acted_at": row["acted_at"].isoformat()}, sort_keys=True).encode()
    return lake.put_new(audit_key(record.record_id), body)


def audit_objects(lake: Lake) -> Iterator[tuple[str, float]]:
    """``(key, modification time)`` of every stored record: what the audit inbox sensor watches."""
    return ((k, t) for k, t in lake.list_objects(AUDIT_INBOX) if parse_audit_key(k) is not None)


def read_records(lake: Lake, keys: Iterable[str]) -> pl.DataFrame:
    """The records stored at ``keys``, as rows of :data:`AUDIT` in the order given."""
    with ThreadPoolExecutor(READ_THREADS) as pool:
        rows = [json.loads(blob) for blob in pool.map(lake.get_bytes, keys)]
    parsed = [row | {"acted_at": dt.datetime.fromisoformat(row["acted_at"])} for row in rows]
    return pl.DataFrame(parsed, schema=AUDIT)


def read_audit(lake: Lake, since: dt.datetime | None = None) -> pl.DataFrame:
    """Every record (or those at or after ``since``), oldest first, as rows of :data:`AUDIT`."""
    table = read_records(lake, (k for k, _ in audit_objects(lake)))
    if since is not None:
        table = table.filter(pl.col("acted_at") >= since.astimezone(dt.UTC))
    return table.sort("acted_at", "record_id")


def read_audit_table(lake: Lake) -> pl.DataFrame:
    """The ``audit`` table as the pipeline last wrote it, oldest first."""
    keys = [k for k in lake.list_keys(AUDIT_TABLE_PREFIX) if k.endswith(".parquet")]
    return lake.read_parquet(keys, AUDIT).sort("acted_at", "record_id")


@dataclass(frozen=True)
class Fold:
    """What :func:`fold_records` changed."""

    added: pl.DataFrame
    """The records the table lacked (:data:`AUDIT`)."""
    months: list[str]
    """The months whose object was rewritten, in order."""


def fold_records(lake: Lake, records: pl.DataFrame) -> Fold:
    """Add ``records`` (:data:`AUDIT`) to the table's month objects; a month that already holds all
    of its records is not rewritten."""
    month = pl.col("acted_at").dt.strftime("%Y-%m").alias("month")
    added, months = [], []
    for (name,), group in sorted(records.with_columns(month).partition_by("month", as_dict=True).items()):
        key = audit_table_key(name)
        existing = lake.read_parquet([key], AUDIT) if lake.exists(key) else empty(AUDIT)
        merged = merge_records(existing, group)
        if merged.height == existing.height:
            continue
        lake.write_parquet(key, merged)
        added.append(merged.join(existing.select("record_id"), on="record_id", how="anti"))
        months.append(name)
    return Fold(pl.concat(added) if added else empty(AUDIT), months)
