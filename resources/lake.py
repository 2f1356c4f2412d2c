"""The lake as a Dagster resource: configuration in the UI, the plain :class:`stores.lake.Lake` in code.

Assets, checks, sensors and schedules take ``lake: dg.ResourceParam[Lake]``; Dagster hands them what
:meth:`LakeResource.create_resource` builds; tests may pass a ``Lake`` directly.
"""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource

from stores.lake import DEFAULT_ROOT, Lake, root_from_env


class LakeResource(dg.ConfigurableResource):
    """The lake's root (a folder or ``s3://bucket/prefix``) and, for S3, dagster-aws's ``S3Resource``
    (endpoint, region, credentials; unset fields mean the standard AWS variables)."""

    root: str = DEFAULT_ROOT
    s3: S3Resource

    @classmethod
    def from_env(cls) -> LakeResource:
        """The lake that ``ODDSFORGE_LAKE`` names, S3 settings from the standard AWS variables."""
        return cls(root=root_from_env(), s3=S3Resource())

    def create_resource(self, context: dg.InitResourceContext) -> Lake:
        lake = Lake(root=self.root)
        if lake.is_s3:  # a local lake never needs a client
            lake = Lake(root=self.root, client=self.s3.get_client())
        return lake
