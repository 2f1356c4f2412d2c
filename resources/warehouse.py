"""The warehouse as a Dagster resource: its folder and the DuckDB connection its publications use.

Assets take ``warehouse: dg.ResourceParam[Warehouse]`` and get the plain
:class:`stores.warehouse.Warehouse` that :meth:`WarehouseResource.create_resource` builds.
"""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from stores.warehouse import DEFAULT_DIR, Warehouse, directory_from_env


class WarehouseResource(dg.ConfigurableResource):
    """Serving snapshots under ``directory``. Each publication works in a connection from
    ``snapshots`` and attaches its new file to it (a new file per publication, so no configured path
    can name it): ``snapshots.database`` is that connection's own database, ``:memory:`` (it only holds
    the lake's views), and ``snapshots.connection_config`` sets DuckDB's options (``memory_limit``,
    ``threads``, ...) for every publication."""

    directory: str = DEFAULT_DIR
    snapshots: DuckDBResource

    @classmethod
    def from_env(cls) -> WarehouseResource:
        """The folder ``ODDSFORGE_WAREHOUSE_DIR`` names (default ``./data/warehouse``)."""
        return cls(directory=directory_from_env(), snapshots=DuckDBResource(database=":memory:"))

    def create_resource(self, context: dg.InitResourceContext) -> Warehouse:
        return Warehouse(directory=self.directory, connect=self.snapshots.get_connection)
