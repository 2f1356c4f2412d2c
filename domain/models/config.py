"""The model configuration: the seed's JSON schema plus ``market``, with SPEC section 3's rules.

A config is one immutable model *version*. Everything that can be checked from the config alone is
checked when it is parsed (:func:`parse_model_config`, or any ``model_validate``): its size
(:data:`MAX_CONFIG_BYTES`), unknown keys at every level, formulas against SPEC 7's grammar; rules that
need facts stored elsewhere (who owns a dataset, its quality score, the fields a formula may read)
are checked by :func:`validate_against`.
Both report every problem at once as a :class:`ConfigError` whose entries name the field path and say
what is allowed, so the API can answer 422 with messages a model builder can act on.

Data sources are keyed by name: a built-in kind's name (:data:`domain.models.sources.KINDS`) selects
that kind, with its parameters model; any other name is a custom source over a user dataset (it
carries a ``dataset_id``) or a model source over another model's p (it carries a ``model_id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    computed_field,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)

from domain.datasets.formula import check_formula
from domain.models.catalogue import CATALOGUES
from domain.models.config_base import ConfigError, ConfigProblem, Frozen, Identifier
from domain.models.sources import BUILTIN_SOURCES, KINDS, SourceBase, in_order, kind_name
from domain.models.sources.custom import CustomDataSource
from domain.models.sources.model import ModelSource, cycle_text, find_cycle
from domain.money.pricing import CREATOR_SHARE_PERCENT, describe_price_tiers, dollars_to_cents, price_tier
from domain.sports import SPORTS, sport_info

MAX_ENABLED_SOURCES = 5
MAX_CONFIG_BYTES = 64 * 1024
"""The largest config, as compact UTF-8 JSON, by whatever path it comes (API body, CLI file, inbox):
a real one is 1-3 kB, and the limit bounds what validation and its messages may echo."""
MIN_DATASET_QUALITY = 0.8
"""A dataset is usable in models only with a quality score *above* this (seed, SPEC section 7)."""

Market = Literal["spreads", "h2h", "totals"]

_SOURCE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def _join(prefix: str, path: str) -> str:
    if not prefix or not path:
        return prefix or path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


# ---- sources ------------------------------------------------------------------------------------


_OTHER_KINDS: dict[str, type[SourceBase]] = {
    CustomDataSource.kind: CustomDataSource,
    ModelSource.kind: ModelSource,
}
"""The kinds configured under any name other than a built-in one, by kind name."""

OtherSource = Annotated[
    Annotated[CustomDataSource, Tag(CustomDataSource.kind)] | Annotated[ModelSource, Tag(ModelSource.kind)],
    Discriminator(lambda source: kind_name("", source)),
]


class _SourcesByName(BaseModel):
    """Sources by name. Built-in names select their kind; every other name is a custom source (with a
    ``dataset_id``) or a model source (with a ``model_id``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, OtherSource] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _custom_source_names(cls, data: Any) -> Any:
        """Say what went wrong with a misspelt built-in name instead of 'dataset_id missing'."""
        if not isinstance(data, Mapping):
            return data
        problems = []
        for name, source in data.items():
            if name in BUILTIN_SOURCES:
                continue
            if not _SOURCE_NAME.fullmatch(name):
                problems.append(ConfigProblem(name, "source names use letters, digits and _ (1 to 64)"))
            elif not (isinstance(source, Mapping) and ("dataset_id" in source or "model_id" in source)):
                problems.append(
                    ConfigProblem(
                        name,
                        f"unknown source {name!r}: the built-in sources are {', '.join(BUILTIN_SOURCES)}; "
                        "any other name is a custom source and needs a dataset_id, or a model source "
                        "(an ensemble's member) and needs a model_id",
                    )
                )
        if problems:
            raise ConfigError(problems)
        return data

    def as_dict(self) -> dict[str, SourceBase]:
        """Every configured source by name, in the order of their kinds (custom sources as given)."""
        builtins = {name: getattr(self, name) for name in BUILTIN_SOURCES}
        sources = {name: s for name, s in builtins.items() if s is not None} | dict(self.__pydantic_extra__)
        return {name: sources[name] for name in in_order(sources)}


if TYPE_CHECKING:  # the built-in kinds' settings come from the registry: checkers see the base
    DataSources = _SourcesByName
else:
    DataSources = create_model(
        "DataSources",
        __base__=_SourcesByName,
        __doc__=_SourcesByName.__doc__,
        __module__=__name__,
        **{kind.name: (kind.parameters | None, None) for kind in KINDS if kind.builtin},
    )


# ---- sharing ------------------------------------------------------------------------------------


DEFAULT_TRIAL_DAYS = 7
"""A paid model's trial unless its creator sets 0-30 days (SPEC 6)."""


class Sharing(Frozen):
    """Marketplace settings. Prices are dollars in the JSON (as in the seed) and cents in code."""

    public: bool = False
    price_per_month: Annotated[
        Decimal,
        Field(
            ge=0,
            decimal_places=2,
            allow_inf_nan=False,
            description=f"Dollars per month: {describe_price_tiers()}. price_cents is accepted too.",
        ),
    ] = Decimal(0)
    revenue_share: Annotated[
        float, Field(description=f"The creator's share; must be {CREATOR_SHARE_PERCENT / 100}")
    ] = CREATOR_SHARE_PERCENT / 100
    trial_days: Annotated[
        int,
        Field(
            ge=0,
            le=30,
            description=f"Free days before a paid model's first invoice: 0-30, {DEFAULT_TRIAL_DAYS} unless "
            "given (free models: 0).",
        ),
    ] = 0

    @model_validator(mode="before")
    @classmethod
    def _default_trial(cls, data: Any) -> Any:
        """SPEC 6 (seed Q7): a paid model's trial is 7 days unless its creator says otherwise."""
        if not isinstance(data, Mapping) or "trial_days" in data:
            return data
        price = data.get("price_per_month", data.get("price_cents"))
        try:
            paid = price is not None and not isinstance(price, bool) and Decimal(str(price)) > 0
        except InvalidOperation:  # not a number: the price's own check names it
            return data
        return {**data, "trial_days": DEFAULT_TRIAL_DAYS if paid else 0}

    @model_validator(mode="before")
    @classmethod
    def _accept_cents(cls, data: Any) -> Any:
        """Accept ``price_cents`` (as this model dumps it) when it agrees with ``price_per_month``."""
        if not isinstance(data, Mapping) or "price_cents" not in data:
            return data
        data = dict(data)
        cents = data.pop("price_cents")
        if not isinstance(cents, int) or isinstance(cents, bool):
            raise ConfigError(
                [ConfigProblem("price_cents", f"must be a whole number of cents; got {cents!r}")]
            )
        dollars = Decimal(cents) / 100
        given = data.setdefault("price_per_month", dollars)
        if Decimal(str(given)) != dollars:
            raise ConfigError(
                [
                    ConfigProblem(
                        "price_cents",
                        f"{cents} cents disagrees with price_per_month {given}; give one of them",
                    )
                ]
            )
        return data

    @field_validator("price_per_month")
    @classmethod
    def _in_a_tier(cls, price: Decimal) -> Decimal:
        if price_tier(dollars_to_cents(price)) is None:
            raise ValueError(
                f"{price} is neither 0 nor inside a pricing tier; allowed: {describe_price_tiers()}"
            )
        return price

    @field_validator("revenue_share")
    @classmethod
    def _platform_share(cls, share: float) -> float:
        if Decimal(str(share)) * 100 != CREATOR_SHARE_PERCENT:
            raise ValueError(
                f"must be {CREATOR_SHARE_PERCENT / 100}: creators receive the platform's fixed "
                f"{CREATOR_SHARE_PERCENT}% share; got {share}"
            )
        return share

    @field_serializer("price_per_month", when_used="json")
    def _dollars_as_number(self, price: Decimal) -> float:
        return float(price)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def price_cents(self) -> int:
        """The monthly price in cents, exact (9.99 -> 999)."""
        return dollars_to_cents(self.price_per_month)


# ---- the model ----------------------------------------------------------------------------------


class ModelConfig(Frozen):
    """One version of a user's betting model (seed "Model Configuration Schema", SPEC section 3)."""

    model_id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    creator_user_id: Identifier
    version: Annotated[int, Field(ge=1)] = 1
    sport: Annotated[str, Field(json_schema_extra={"enum": list(SPORTS)})]
    bet_type: Literal["game"] = Field(default="game", description="'player' (props) is not supported yet")
    market: Market = Field(default="spreads", description="The game market the model bets")
    data_sources: DataSources
    dynamic_weighting: bool = Field(
        default=False, description="Scale each source's weight by its recent hit rate; per-source override"
    )
    min_confidence: Annotated[float, Field(ge=0.5, le=1, description="Picks below it do not qualify")] = 0.5
    max_confidence: Annotated[float, Field(ge=0.5, le=1, description="Confidence is clamped to it")] = 1.0
    sharing: Sharing = Sharing()
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded_size(cls, data: Any) -> Any:
        """One size limit for the whole config, checked before anything else is."""
        if isinstance(data, Mapping) and (problem := _size_problem(data)) is not None:
            raise ConfigError([problem])
        return data

    @field_validator("sport")
    @classmethod
    def _known_sport(cls, sport: str) -> str:
        return sport_info(sport).key

    @field_validator("bet_type", mode="before")
    @classmethod
    def _no_props_yet(cls, bet_type: Any) -> Any:
        if bet_type == "player":
            raise ValueError("player props are not supported yet; bet_type must be 'game'")
        return bet_type

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ModelConfig:
        problems = _source_problems(self) + _sport_problems(self)
        if not self.min_confidence < self.max_confidence:
            problems.append(
                ConfigProblem(
                    "min_confidence",
                    f"min_confidence {self.min_confidence} must be below "
                    f"max_confidence {self.max_confidence}; "
                    "allowed: 0.5 <= min_confidence < max_confidence <= 1",
                )
            )
        if problems:
            raise ConfigError(problems)
        return self

    def to_payload(self) -> dict[str, Any]:
        """The config as seed-shaped JSON (absent options left out); parses back to an equal config."""
        return self.model_dump(mode="json", exclude_none=True)


def _size_problem(data: Mapping[str, Any]) -> ConfigProblem | None:
    """The config's size as compact JSON over :data:`MAX_CONFIG_BYTES`, naming its longest text."""
    size = len(json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":")).encode())
    if size <= MAX_CONFIG_BYTES:
        return None
    message = f"the config is {size:,} bytes as JSON; the limit is {MAX_CONFIG_BYTES:,} bytes (64 KiB)"
    path, length = max(_strings(data), key=lambda found: found[1], default=("", 0))
    if length:
        shown = path if len(path) <= 80 else path[:77] + "..."
        message += f"; its longest text is {shown} ({length:,} characters)"
    return ConfigProblem("", message)


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, int]]:
    """(dotted path, length) of every text value in a JSON document."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, _join(path, str(key)))
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, len(node)


def _source_problems(config: ModelConfig) -> list[ConfigProblem]:
    enabled = enabled_sources(config)
    if len(enabled) > MAX_ENABLED_SOURCES:
        return [
            ConfigProblem(
                "data_sources",
                f"{len(enabled)} sources are enabled ({', '.join(enabled)}); "
                f"at most {MAX_ENABLED_SOURCES} may be",
            )
        ]
    if not enabled:
        return [ConfigProblem("data_sources", "no source is enabled; enable at least one")]
    if sum(s.weight for s in enabled.values()) <= 0:
        return [
            ConfigProblem(
                "data_sources",
                f"the weights of the enabled sources ({', '.join(enabled)}) sum to 0; "
                "at least one must be > 0",
            )
        ]
    return []


def _sport_problems(config: ModelConfig) -> list[ConfigProblem]:
    """Every source's parameters must suit the sport (disabled sources too, so enabling one later is
    safe): e.g. fields from the sport's catalogue."""
    return [
        ConfigProblem(_join(f"data_sources.{name}", p.path), p.message)
        for name, source in config.data_sources.as_dict().items()
        for p in source.sport_problems(config.sport)
    ]


# ---- helpers ------------------------------------------------------------------------------------


def enabled_sources(config: ModelConfig) -> dict[str, SourceBase]:
    """The enabled sources by name, in config order."""
    return {name: s for name, s in config.data_sources.as_dict().items() if s.enabled}


def effective_dynamic_weighting(config: ModelConfig, source_name: str) -> bool:
    """The source's own ``dynamic_weighting`` when set, else the model's."""
    source = config.data_sources.as_dict()[source_name]
    return config.dynamic_weighting if source.dynamic_weighting is None else source.dynamic_weighting


def parse_model_config(payload: Mapping[str, Any]) -> ModelConfig:
    """Validate a config payload; every problem is raised together as a :class:`ConfigError`."""
    try:
        return ModelConfig.model_validate(payload)
    except ValidationError as exc:
        raise ConfigError([p for err in exc.errors() for p in _problems_of(err)]) from None


def _problems_of(err: Any) -> list[ConfigProblem]:
    """Turn one pydantic error into problems with absolute paths and messages that say what is allowed."""
    loc, tag = _untagged(tuple(err["loc"]))
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return [ConfigProblem(_join(path, p.path), p.message) for p in cause.problems]
    if isinstance(cause, ValueError):
        return [ConfigProblem(path, str(cause))]
    if err["type"] == "extra_forbidden":
        allowed = ", ".join((_OTHER_KINDS[tag] if tag else _model_at(loc[:-1])).model_fields)
        return [ConfigProblem(path, f"unknown setting {loc[-1]!r}; allowed: {allowed}")]
    if err["type"] == "missing":
        return [ConfigProblem(path, "is required")]
    shown = repr(err["input"])
    return [ConfigProblem(path, f"{err['msg']}; got {shown if len(shown) <= 60 else shown[:57] + '...'}")]


def _untagged(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    """``loc`` without the kind pydantic names after a custom or model source's name, and that kind."""
    if len(loc) > 2 and loc[0] == "data_sources" and loc[1] not in BUILTIN_SOURCES and loc[2] in _OTHER_KINDS:
        return (*loc[:2], *loc[3:]), loc[2]
    return loc, None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model class that validates the object at ``loc`` (for listing its allowed keys)."""
    model: type[BaseModel] = ModelConfig
    for part in loc:
        info = model.model_fields.get(part)
        if info is None:  # a custom source: any other key under data_sources
            model = CustomDataSource
            continue
        model = next(
            a
            for a in (info.annotation, *get_args(info.annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        )
    return model


# ---- rules that need stored facts ----------------------------------------------------------------


DataType = Literal["game_level", "team_level", "player_level"]
FormulaChecker = Callable[[str, list[str]], object]
"""``check(formula, field_names)`` raises ValueError (or SyntaxError) when the formula is not allowed."""


@dataclass(frozen=True)
class DatasetInfo:
    """What config validation needs to know about a user dataset (its metadata lives outside)."""

    dataset_id: str
    owner_user_id: str
    quality_score: float
    fields: tuple[str, ...]
    """The numeric value fields a transformation may score (key columns excluded)."""
    sport: str | None
    data_type: DataType


@dataclass(frozen=True)
class MemberInfo:
    """What config validation needs to know about a model another model uses (an ensemble's member)."""

    model_id: str
    owner_user_id: str
    public: bool
    """Whether its latest version is shared publicly (anyone may then build on it)."""
    versions: tuple[int, ...]
    sport: str
    market: str
    members: tuple[str, ...]
    """The model ids its latest version uses (what a cycle runs through)."""


MemberLookup = Callable[[str], MemberInfo | None]
"""``lookup(model_id)``: the stored model, or None when there is none."""


def validate_against(
    config: ModelConfig,
    datasets: Mapping[str, DatasetInfo],
    formula_checker: FormulaChecker = check_formula,
    models: MemberLookup = lambda model_id: None,
) -> None:
    """Check custom sources against the datasets they name and model sources against the models
    they name (all sources, enabled or not).

    A dataset that does not exist and one owned by someone else get the same message, so a creator
    cannot probe other users' dataset ids; likewise a model that does not exist and another user's
    private model. Formulas are checked against the dataset's fields by ``formula_checker`` (the
    grammar's own checker unless a test stands in for it); members through ``models`` (without it,
    every model source is refused as naming no readable model). Raises :class:`ConfigError` listing
    every problem.
    """
    problems: list[ConfigProblem] = []
    for name, source in config.data_sources.as_dict().items():
        path = f"data_sources.{name}"
        if isinstance(source, ModelSource):
            problems.extend(_member_problems(config, source, models, path))
            continue
        if not isinstance(source, CustomDataSource):
            continue
        dataset = datasets.get(source.dataset_id)
        if dataset is None or dataset.owner_user_id != config.creator_user_id:
            problems.append(
                ConfigProblem(
                    f"{path}.dataset_id",
                    f"dataset {source.dataset_id!r} is not one of {config.creator_user_id}'s datasets; "
                    "a custom source must use a dataset its creator uploaded",
                )
            )
            continue
        problems.extend(_dataset_problems(config, source, dataset, path, formula_checker))
    if problems:
        raise ConfigError(problems)


def _member_problems(
    config: ModelConfig, source: ModelSource, models: MemberLookup, path: str
) -> list[ConfigProblem]:
    """A member must be readable by the creator (their own or public), of the same sport and market,
    have the pinned version, and not lead back to the model (a cycle, named model by model)."""
    member = None if source.model_id == config.model_id else models(source.model_id)
    at = f"{path}.model_id"
    if source.model_id == config.model_id:
        return [ConfigProblem(at, f"a model cannot use itself: {cycle_text([config.model_id] * 2)}")]
    if member is None or not (member.public or member.owner_user_id == config.creator_user_id):
        return [
            ConfigProblem(
                at,
                f"model {source.model_id!r} is neither one of {config.creator_user_id}'s models nor a "
                "public model; an ensemble may only use models its creator may read",
            )
        ]
    problems = []
    if (member.sport, member.market) != (config.sport, config.market):
        problems.append(
            ConfigProblem(
                at,
                f"model {source.model_id!r} bets {member.market} of {member.sport}; its p means nothing "
                f"to a model betting {config.market} of {config.sport}",
            )
        )
    if source.version is not None and source.version not in member.versions:
        problems.append(
            ConfigProblem(
                f"{path}.version",
                f"model {source.model_id!r} has no version {source.version}; "
                f"it has {', '.join(map(str, member.versions))}",
            )
        )
    own = tuple(_member_ids(config))

    def members_of(model_id: str) -> tuple[str, ...]:
        if model_id == config.model_id:
            return own
        found = models(model_id)
        return () if found is None else found.members

    cycle = find_cycle(config.model_id, members_of, start=source.model_id)
    if cycle is not None:
        problems.append(
            ConfigProblem(at, f"models may not depend on each other in a cycle: {cycle_text(cycle)}")
        )
    return problems


def _member_ids(config: ModelConfig) -> list[str]:
    """The model ids a config's model sources name (enabled or not)."""
    return [s.model_id for s in config.data_sources.as_dict().values() if isinstance(s, ModelSource)]


def _dataset_problems(
    config: ModelConfig,
    source: CustomDataSource,
    dataset: DatasetInfo,
    path: str,
    formula_checker: FormulaChecker,
) -> list[ConfigProblem]:
    problems = []
    if not dataset.quality_score > MIN_DATASET_QUALITY:
        problems.append(
            ConfigProblem(
                f"{path}.dataset_id",
                f"dataset {dataset.dataset_id!r} has quality score {dataset.quality_score:.3f}; models may "
                f"only use datasets scoring above {MIN_DATASET_QUALITY} (see its quality report)",
            )
        )
    if dataset.sport is not None and dataset.sport != config.sport:
        problems.append(
            ConfigProblem(
                f"{path}.dataset_id",
                f"dataset {dataset.dataset_id!r} is for {dataset.sport} but the model is for {config.sport}",
            )
        )
    if dataset.data_type == "player_level":
        problems.append(
            ConfigProblem(
                f"{path}.dataset_id",
                "player-level datasets are not supported yet; use a game_level or team_level dataset",
            )
        )
    if source.field is not None and source.field not in dataset.fields:
        problems.append(
            ConfigProblem(
                f"{path}.field",
                f"dataset {dataset.dataset_id!r} has no numeric field {source.field!r}; "
                f"allowed: {', '.join(dataset.fields)}",
            )
        )
    if source.transformation == "custom_formula" and source.formula:
        try:
            formula_checker(source.formula, list(dataset.fields))
        except (ValueError, SyntaxError) as exc:
            problems.append(ConfigProblem(f"{path}.formula", str(exc)))
    return problems


def export_json_schema() -> dict[str, Any]:
    """The JSON Schema of a config payload (committed as ``docs/model-config.schema.json``), with the
    field catalogue per sport under ``x-field-catalogue`` since allowed fields depend on the sport, and
    the size limit, which JSON Schema cannot express, under ``x-max-bytes``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "model-config.schema.json",
        **ModelConfig.model_json_schema(mode="validation"),
        "x-max-bytes": MAX_CONFIG_BYTES,
        "x-field-catalogue": {
            sport: {"team": list(cat.team), "player": list(cat.player)} for sport, cat in CATALOGUES.items()
        },
    }
