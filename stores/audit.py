"""The audit log's store: one immutable JSON object per record under ``inbox/audit/`` (SPEC 9).

:func:`append` writes a record create-if-absent under its id (a digest of the action's business key),
so an action retried or re-run leaves exactly one record, and nothing here can change or delete one.
Whoever acts appends: the API (terms, self-exclusion), the operator's command line (review decisions),
the pipeline (suspensions, refunds, payouts, account state changes). :func:`read_audit` gives the
records as the ``audit`` table's rows, oldest first.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from domain.compliance.audit import AUDIT, AuditRecord
from stores.lake import Lake
from stores.layout import AUDIT_INBOX, audit_key


def append(lake: Lake, record: AuditRecord) -> bool:
    """Store ``record`` once; False when a record with its business key was already there."""
    row = record.row()
    body = json.dumps(row | {"at": row["at"].isoformat()}, sort_keys=True).encode()
    return lake.put_new(audit_key(record.record_id), body)


def read_audit(lake: Lake, since: dt.datetime | None = None) -> pl.DataFrame:
    """Every record (or those at or after ``since``), oldest first, as rows of :data:`AUDIT`."""
    rows = []
    for key in lake.list_keys(AUDIT_INBOX):
        if key.endswith(".json"):
            row = json.loads(lake.get_bytes(key))
            rows.append(row | {"at": dt.datetime.fromisoformat(row["at"])})
    table = pl.DataFrame(rows, schema=AUDIT)
    if since is not None:
        table = table.filter(pl.col("at") >= since.astimezone(dt.UTC))
    return table.sort("at", "record_id")
