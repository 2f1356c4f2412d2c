"""What the model config and the source kinds' parameter models share.

The config (:mod:`domain.models.config`) is assembled from the source kinds
(:mod:`domain.models.sources`), so the pieces both need live below either: the problem type every
validator raises, the strict frozen base model and the common field types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.errors import UserError

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@|:+-]{0,127}$"),
    Field(description="Letters, digits and _ . @ | : + - (no slashes: ids are parts of object keys)"),
]
Finite = Annotated[float, Field(allow_inf_nan=False)]


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    """Dotted field path, e.g. ``data_sources.team_stats.fields[1]``; empty for the whole config."""
    message: str


class ConfigError(UserError, ValueError):
    """Every problem found in a config. A ValueError, so pydantic validators may raise it; paths
    raised inside a nested model are relative to that model and made absolute by
    :func:`domain.models.config.parse_model_config`."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path or '<config>'}: {p.message}" for p in problems))

    def as_dicts(self) -> list[dict[str, str]]:
        """JSON-ready problems for an HTTP 422 body."""
        return [{"path": p.path, "message": p.message} for p in self.problems]


class Frozen(BaseModel):
    """Immutable, and unknown keys are errors (a misspelt option must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
