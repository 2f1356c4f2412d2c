"""Compliance: the ``audit`` table (SPEC 9), every operator and money action as analysts query it.

Whoever acts appends an immutable record under ``inbox/audit/`` (``stores.audit.append``); the audit
inbox sensor (``pipelines/sensors.py``) asks for a run that folds exactly the new records into
``tables/audit/{YYYY-MM}.parquet``, so ``oddsforge sql "SELECT * FROM audit"`` follows the inbox
within a minute. A run adds the records a month lacks and never replaces or drops one, so a re-run,
or a full rebuild, leaves every record already in the table as it is.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` annotation unevaluated.
"""

import datetime as dt

import dagster as dg
from pydantic import Field

from assets.common import markdown_table
from domain.compliance.audit import id_problems
from services.commitments import publish_day_roots
from stores.audit import audit_objects, fold_records, read_audit_table, read_records
from stores.lake import Lake
from stores.layout import parse_audit_key


class AuditConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Audit records to fold into the table; empty folds every record in the inbox."""


@dg.asset(
    group_name="compliance",
    kinds={"polars", "parquet"},
    description="The append-only audit log (tables/audit/{YYYY-MM}.parquet): one row per operator or "
    "money action (review decisions, suspensions, refunds, payouts, account changes, terms, "
    "self-exclusions) with who, what, when, which object, and its state before and after as JSON. "
    "Records are added once, never changed or deleted.",
    check_specs=[
        dg.AssetCheckSpec(
            "record_ids",
            asset="audit",
            description="Every record id occurs once and is the digest of its record's business key.",
        )
    ],
)
def audit(
    context: dg.AssetExecutionContext, config: AuditConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    if bad := [k for k in config.keys if parse_audit_key(k) is None]:
        raise ValueError(f"not audit records: {', '.join(bad)}")
    keys = config.keys or [k for k, _ in audit_objects(lake)]
    fold = fold_records(lake, read_records(lake, keys))
    table = read_audit_table(lake)
    problems = id_problems(table)
    context.log.info(
        "read %d records, %d new, months rewritten: %s", len(keys), fold.added.height, fold.months
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full fold",
            "records_read": len(keys),
            "records_added": fold.added.height,
            "months_written": ", ".join(fold.months) or "none",
            "latest": dg.MetadataValue.md(
                markdown_table(
                    table.sort("acted_at", descending=True).select(
                        "acted_at", "actor", "action", "object_type", "object_id"
                    ),
                    rows=10,
                )
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="record_ids",
                passed=not problems,
                metadata={"problems": "; ".join(problems) or "none", "records": table.height},
            )
        ],
    )


@dg.asset(
    group_name="compliance",
    kinds={"python", "json"},
    description="Pick commitments' day roots (SPEC 9): for every game date with committed batches whose "
    "last game has started, the Merkle root over its batches' digests, published once under "
    "commitments/days/ (services/commitments.py).",
)
def commitment_day_roots(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    published = publish_day_roots(lake, dt.datetime.now(dt.UTC))
    return dg.MaterializeResult(
        metadata={
            "days_published": len(published),
            "days": ", ".join(d.isoformat() for d in published) or "none",
        }
    )


compliance_assets = [audit, commitment_day_roots]
