"""Marketplace marts: the dbt project in ``dbt_project/`` built over the lake by dagster-dbt.

``dbt build`` makes staging views over the lake's Parquet, the ``leaderboard``, ``creator_summary``,
``model_subscribers`` and ``monthly_revenue`` tables and runs their tests (Dagster asset checks). Each
run builds into a new DuckDB file of the warehouse's marts folder (``Warehouse.marts``), passed to
dbt as the ``duckdb_path`` var; once dbt has succeeded the build is checked, renamed into place and
made current, as serving snapshots are. An analyst holding the current marts open therefore never
blocks a build, and nobody ever opens the file dbt is writing; a failed build (a dbt test included)
is removed and the previous one stays current. dbt's sources map to the upstream assets
``model_versions``, ``model_performance``, ``settled_picks``, ``subscriptions`` and ``ledger``.

The manifest is never committed (``target/`` is ignored): loading this module parses the project
when the manifest is missing or older than a project file (``dbt parse`` is offline and takes a few
seconds), so ``dagster definitions validate`` works on a fresh clone and ``dagster dev`` picks up
edited models on reload.

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from domain.marketplace.performance import MIN_GRADED, ROLLING_DAYS, WILSON_Z
from domain.money.subscriptions import PAST_DUE_GRACE
from stores.lake import Lake, httpfs_extension_path
from stores.layout import PERIOD_PATTERN
from stores.warehouse import MART_TABLES, Warehouse

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
_GENERATED = {"target", "logs"}

dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def manifest_stale(project: DbtProject) -> bool:
    """Whether the manifest is missing or older than a file of the project (models, macros, YAML)."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    return any(
        path.stat().st_mtime > built
        for path in project.project_dir.rglob("*")
        if path.is_file() and path.relative_to(project.project_dir).parts[0] not in _GENERATED
    )


def dbt_resource(project: DbtProject = dbt_project) -> DbtCliResource:
    """The ``dbt`` resource: the dbt executable of this interpreter's environment, so runs work
    whether or not the virtual environment is on ``PATH``."""
    return DbtCliResource(project_dir=project, dbt_executable=str(Path(sys.executable).parent / "dbt"))


def prepare_manifest(project: DbtProject) -> Path:
    """The project's ``manifest.json``, parsed first when missing or stale.

    Used instead of ``DbtProject.prepare_if_dev()``, which parses only under ``dagster dev`` (not for
    ``definitions validate`` on a fresh clone) and runs whichever ``dbt`` is on ``PATH`` (none when
    the virtual environment is not activated, as with ``.venv/bin/dagster``).
    """
    if manifest_stale(project):
        dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


def dbt_vars(lake: Lake, duckdb_path: Path) -> dict[str, Any]:
    """``--vars`` of every dbt run: absolute paths (dbt runs in ``dbt_project/``), the marketplace's
    constants from :mod:`domain.marketplace.performance` and the past_due grace (one source of
    truth), and for an S3 lake the packaged httpfs extension and the endpoint (credentials stay in
    the standard AWS variables)."""
    values: dict[str, Any] = {
        "lake_root": lake.root.rstrip("/") if lake.is_s3 else str(Path(lake.root).resolve()),
        "duckdb_path": str(duckdb_path),
        "rolling_days": ROLLING_DAYS,
        "min_graded": MIN_GRADED,
        "wilson_z": WILSON_Z,
        "past_due_grace_hours": PAST_DUE_GRACE // dt.timedelta(hours=1),
        "period_pattern": PERIOD_PATTERN,
    }
    if lake.is_s3:
        endpoint = lake.client.meta.endpoint_url
        host = endpoint.split("://", 1)[-1].rstrip("/")
        values |= {
            "httpfs_extension": httpfs_extension_path(),
            "s3_endpoint": host,
            "s3_url_style": "vhost" if host.endswith("amazonaws.com") else "path",
            "s3_use_ssl": str(endpoint.startswith("https://")).lower(),
        }
    return values


def dbt_build_args(lake: Lake, duckdb_path: Path) -> list[str]:
    """``dbt build`` with the vars and the profile target (``dev`` local, ``s3``) for ``lake``."""
    target = ["--target", "s3"] if lake.is_s3 else []
    return ["build", "--vars", json.dumps(dbt_vars(lake, duckdb_path)), *target]


class MartsTranslator(DagsterDbtTranslator):
    """dbt models become ``marts/<name>`` assets (so ``marts/leaderboard`` never clashes with a
    Python asset); sources keep the keys their ``meta.dagster.asset_key`` gives."""

    def get_asset_key(self, dbt_resource_props: dict[str, Any]) -> dg.AssetKey:
        key = super().get_asset_key(dbt_resource_props)
        return key if dbt_resource_props["resource_type"] == "source" else key.with_prefix("marts")


@dbt_assets(
    manifest=prepare_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=MartsTranslator(),
    name="marts",
)
def marts(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    lake: dg.ResourceParam[Lake],
    warehouse: dg.ResourceParam[Warehouse],
) -> Iterator[Any]:
    """Staging views over the lake and the marketplace marts, with their dbt tests as checks, in a
    new marts build made current once complete."""
    with warehouse.marts.build(dt.datetime.now(dt.UTC), MART_TABLES) as build:
        yield from dbt.cli(dbt_build_args(lake, build.file.resolve()), context=context).stream()


mart_assets = [marts]
