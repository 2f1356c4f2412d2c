"""The model builder's catalogue: everything a form needs to build a valid config for one sport.

Generated from the definitions the validator itself uses, never kept by hand: the settings and
their ranges are the JSON Schema of the config's own models (:class:`ModelConfig`, :class:`Sharing`
and each source kind's parameters model), the kinds are :data:`KINDS` (those available for the
sport), the fields the sport's catalogue with the aliases the validator accepts, the
transformations :data:`TRANSFORMATIONS`, and the limits the constants the validator checks against,
with the tier limits of :data:`MODEL_QUOTAS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from domain.datasets import formula
from domain.models.catalogue import FIELD_ALIASES, fields_of
from domain.models.config import (
    DEFAULT_TRIAL_DAYS,
    MAX_CONFIG_BYTES,
    MAX_ENABLED_SOURCES,
    MIN_DATASET_QUALITY,
    ModelConfig,
    Sharing,
)
from domain.models.registry import SERVER_FIELDS
from domain.models.sources import KINDS, SELECTED_BY, SourceBase
from domain.models.sources.custom import TRANSFORMATIONS
from domain.models.tiers import MODEL_QUOTAS
from domain.money.pricing import CREATOR_SHARE_PERCENT, PRICE_TIERS
from domain.sports import sport_info
from domain.sports.fields import FieldKind, FieldSpec

OTHER_SOURCE_NAMES = "letters, digits and _ (1 to 64); any name other than a built-in kind's, with a {}"
"""How custom and model sources are named (``domain.models.config``'s rule, for the form's help text)."""

_SECTIONS = ("data_sources", "sharing")
"""Config settings described by their own parts of the catalogue rather than as plain settings."""


class Setting(BaseModel):
    """One setting of a config, a source or the sharing block, as its JSON Schema states it."""

    name: str
    type: str = Field(description="JSON type: boolean, integer, number, string or array.")
    required: bool
    nullable: bool = Field(description="null is accepted (and means: not set).")
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: list[Any] | None = Field(default=None, description="The only values allowed, if listed.")
    description: str = ""


class CatalogueField(BaseModel):
    """One statistic a team_stats or player_stats source may name."""

    name: str
    description: str
    unit: str
    better: Literal["higher", "lower"] = Field(description="Which values are better for a team.")
    totals_lean: Literal["over", "under", "none"] = Field(
        description="Which way a high raw value leans a game's total."
    )
    aliases: list[str] = Field(description="Other spellings accepted (names are case-insensitive).")


class Transformation(BaseModel):
    name: str
    description: str
    needs: list[str] = Field(description="The custom source's settings this transformation requires.")


class SourceKindInfo(BaseModel):
    """A kind of data source and its settings."""

    name: str
    builtin: bool = Field(
        description="Configured under its own name; else under any other name, selected by a setting "
        "(custom sources by `dataset_id`, model sources by `model_id`)."
    )
    naming: str = Field(description="The source names that select this kind.")
    description: str
    field_kind: FieldKind | None = Field(
        default=None, description="Its `fields` setting names this sport's team or player fields."
    )
    parameters: list[Setting]


class PriceTierInfo(BaseModel):
    name: str
    min_cents: int
    max_cents: int


class TierLimits(BaseModel):
    max_active_models: int | None = Field(description="null: unlimited. Archived models do not count.")
    max_public_models: int | None = Field(description="null: unlimited.")


class FormulaLimits(BaseModel):
    max_length: int
    max_depth: int
    max_exponent: float
    max_int_digits: int
    functions: list[str]


class Limits(BaseModel):
    max_enabled_sources: int
    max_config_bytes: int = Field(description="The whole config as compact UTF-8 JSON.")
    min_dataset_quality: float = Field(description="A custom source's dataset must score above it.")
    formula: FormulaLimits
    default_paid_trial_days: int
    creator_share: float
    price_tiers: list[PriceTierInfo] = Field(description="price_per_month is 0 or inside one of them.")
    tiers: dict[str, TierLimits] = Field(
        description="Model limits per account tier (the token's tier claim)."
    )


class BuilderCatalogue(BaseModel):
    """Everything a model-builder form needs for one sport."""

    sport: str
    title: str
    settings: list[Setting] = Field(description="The config's own settings (the server sets the others).")
    sharing: list[Setting]
    source_kinds: list[SourceKindInfo]
    fields: dict[str, list[CatalogueField]] = Field(description="Team and player fields by kind.")
    transformations: list[Transformation]
    limits: Limits


def builder_catalogue(sport: str) -> BuilderCatalogue:
    """The catalogue for ``sport``; an unknown sport raises ValueError listing the supported ones."""
    info = sport_info(sport)
    settings = {k: v for k, v in _settings(ModelConfig).items() if k not in (*SERVER_FIELDS, *_SECTIONS)}
    return BuilderCatalogue(
        sport=info.key,
        title=info.title,
        settings=list(settings.values()),
        sharing=list(_settings(Sharing).values()),
        source_kinds=[
            _kind(kind.parameters, kind.builtin) for kind in KINDS if kind.parameters.available_for(sport)
        ],
        fields={kind: _fields(sport, kind) for kind in get_args(FieldKind) if fields_of(sport, kind)},
        transformations=[
            Transformation(name=n, description=t.description, needs=list(t.needs))
            for n, t in TRANSFORMATIONS.items()
        ],
        limits=_limits(),
    )


def _settings(model: type[BaseModel]) -> dict[str, Setting]:
    """The scalar and list settings of ``model`` by name, from its validation JSON Schema."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    return {
        name: _setting(name, prop, name in required)
        for name, prop in schema["properties"].items()
        if _plain(prop) is not None
    }


def _plain(prop: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of a value that is not an object: the first option that is not null (``anyOf
    [x, null]`` gives ``x``; a decimal's number comes before its string form), else None."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    if not options or options[0].get("type") in (None, "object"):
        return None
    return options[0]


def _setting(name: str, prop: Mapping[str, Any], required: bool) -> Setting:
    value = _plain(prop) or {}
    return Setting(
        name=name,
        type=value["type"],
        required=required,
        nullable=any(o.get("type") == "null" for o in prop.get("anyOf", ())),
        default=prop.get("default"),
        minimum=value.get("minimum", value.get("exclusiveMinimum")),
        maximum=value.get("maximum", value.get("exclusiveMaximum")),
        min_items=value.get("minItems"),
        max_length=value.get("maxLength"),
        pattern=value.get("pattern"),
        enum=value.get("enum", [value["const"]] if "const" in value else None),
        description=prop.get("description", ""),
    )


def _kind(parameters: type[SourceBase], builtin: bool) -> SourceKindInfo:
    return SourceKindInfo(
        name=parameters.kind,
        builtin=builtin,
        naming=parameters.kind if builtin else OTHER_SOURCE_NAMES.format(SELECTED_BY[parameters.kind]),
        description=(parameters.__doc__ or "").strip(),
        field_kind=parameters.field_kind,
        parameters=list(_settings(parameters).values()),
    )


def _fields(sport: str, kind: FieldKind) -> list[CatalogueField]:
    return [_field(spec) for spec in fields_of(sport, kind).values()]


def _field(spec: FieldSpec) -> CatalogueField:
    lean = {1: "over", -1: "under", 0: "none"}[spec.total_orientation]
    return CatalogueField(
        name=spec.name,
        description=spec.description,
        unit=spec.unit,
        better="lower" if spec.lower_is_better else "higher",
        totals_lean=lean,  # type: ignore[arg-type]
        aliases=[alias for alias, name in FIELD_ALIASES.items() if name == spec.name],
    )


def _limits() -> Limits:
    return Limits(
        max_enabled_sources=MAX_ENABLED_SOURCES,
        max_config_bytes=MAX_CONFIG_BYTES,
        min_dataset_quality=MIN_DATASET_QUALITY,
        formula=FormulaLimits(
            max_length=formula.MAX_LENGTH,
            max_depth=formula.MAX_DEPTH,
            max_exponent=formula.MAX_EXPONENT,
            max_int_digits=formula.MAX_INT_DIGITS,
            functions=list(formula.FUNCTIONS),
        ),
        default_paid_trial_days=DEFAULT_TRIAL_DAYS,
        creator_share=CREATOR_SHARE_PERCENT / 100,
        price_tiers=[
            PriceTierInfo(name=t.name, min_cents=t.min_cents, max_cents=t.max_cents) for t in PRICE_TIERS
        ],
        tiers={
            tier: TierLimits(max_active_models=q.max_active, max_public_models=q.max_public)
            for tier, q in MODEL_QUOTAS.items()
        },
    )
