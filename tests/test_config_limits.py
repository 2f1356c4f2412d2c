"""Formulas and size checked whenever a model config is parsed (issue 12, item 3): ``POST`` and ``PUT
/models`` answer 422 naming the field and store nothing; backtests and the CLI refuse alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from cli.main import main
from domain.datasets.formula import check_formula
from domain.models.config import MAX_CONFIG_BYTES, ConfigError, ModelConfig, parse_model_config
from stores.datasets import DatasetStore
from stores.lake import Lake
from tests.test_api import SECRET, serve, settings_for
from tests.test_datasets_pipeline import games_csv, put_version, run_pipeline
from tests.test_models_registry import config_body

USER = "carol"
SOURCE = "data_sources.weather"


def with_weather(dataset_id: str, **source: Any) -> dict[str, Any]:
    """A valid body plus a custom source over ``dataset_id`` (a formula over its field ``value``)."""
    body = config_body()
    weather = {"weight": 0.3, "dataset_id": dataset_id, "transformation": "custom_formula"}
    body["data_sources"]["weather"] = weather | {"formula": "(value - 48) / 4"} | source
    return body


def nested(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = body
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return body


HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, source settings, field path, phrase of the message)
    ("os.system", {"formula": "__import__('os').system('id')"}, f"{SOURCE}.formula", "is not allowed"),
    ("dunder call", {"formula": "__import__('os')"}, f"{SOURCE}.formula", "'__import__' is not available"),
    ("power tower", {"formula": "9**9**9"}, f"{SOURCE}.formula", "power tower"),
    ("over 500 characters", {"formula": "value + " * 70 + "1"}, f"{SOURCE}.formula", "the limit is 500"),
    ("1 MB formula", {"formula": "1" * 1_000_000}, "", "the limit is 65,536 bytes (64 KiB)"),
    ("unknown field", {"formula": "humidity * 2"}, f"{SOURCE}.formula", "unknown name 'humidity'"),
    (
        "unused but stored",
        {"transformation": "linear", "field": "value", "min_value": 0, "max_value": 1, "formula": "a.b"},
        f"{SOURCE}.formula",
        "attribute access",
    ),
    ("unknown source setting", {"colour": "red"}, f"{SOURCE}.colour", "unknown setting 'colour'"),
]
UNKNOWN_KEYS = [
    ("colour", "allowed: model_id, name"),
    ("sharing.colour", "allowed: public, price_per_month"),
    ("data_sources.team_stats.colour", "allowed: enabled, weight"),
]


# ---- the domain: parse time, whatever the path ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path", "phrase"),
    [h[1:] for h in HOSTILE if h[0] != "unknown field"],
    ids=[h[0] for h in HOSTILE if h[0] != "unknown field"],
)
def test_parsing_refuses_hostile_sources_without_any_dataset(
    source: dict[str, Any], path: str, phrase: str
) -> None:
    body = with_weather("carol--ds-000001", **source) | {"model_id": "m", "creator_user_id": USER}
    with pytest.raises(ConfigError) as info:
        parse_model_config(body)
    problems = {p.path: p.message for p in info.value.problems}
    assert phrase in problems[path], problems
    with pytest.raises(ValueError):  # stored configs (backtests) alike
        ModelConfig.model_validate(body)


def test_the_size_limit_names_the_largest_text() -> None:
    body = with_weather("carol--ds-000001", formula="1" * MAX_CONFIG_BYTES) | {
        "model_id": "m",
        "creator_user_id": USER,
    }
    with pytest.raises(ConfigError) as info:
        parse_model_config(body)
    [problem] = info.value.problems
    assert problem.path == ""
    assert f"its longest text is {SOURCE}.formula (65,536 characters)" in problem.message
    # Just under the limit, the config is judged on its merits.
    body["data_sources"]["weather"]["formula"] = "value"
    body["description"] = "x" * 2000
    assert len(json.dumps(body, separators=(",", ":"))) < MAX_CONFIG_BYTES
    assert parse_model_config(body).description == "x" * 2000


def test_the_grammar_alone_accepts_any_field_name() -> None:
    assert check_formula("(temp - 32) * wind", None).fields == ("temp", "wind")
    for bad in ("__class__", "abs", "a.b"):
        with pytest.raises(ValueError):
            check_formula(bad, None)


def test_the_cli_refuses_a_hostile_formula(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(with_weather("local--ds-000001", formula="9**9**9")))
    code = main(
        ["backtest", str(model), "--sport", "basketball_nba", "--from", "2024-01-01", "--to", "2024-01-02"]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"{SOURCE}.formula: a power tower" in err and "Traceback" not in err


# ---- the API: POST and PUT ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Lake, str]]:
    """A served app whose lake holds a usable dataset of carol's (field ``value``)."""
    tmp = tmp_path_factory.mktemp("config_limits")
    lake = Lake(root=str(tmp / "lake"))
    dataset_id = put_version(DatasetStore(lake, tmp / "warehouse"), USER, games_csv(40))
    run_pipeline(lake, tmp / "warehouse")
    headers = {"Authorization": f"Bearer {mint_token(USER, SECRET)}"}
    with (
        serve(create_app(settings_for(tmp / "warehouse"), lake=lake)) as url,
        httpx.Client(base_url=url, headers=headers, timeout=30) as client,
    ):
        yield client, lake, dataset_id


@pytest.fixture(scope="module")
def model_id(api: tuple[httpx.Client, Lake, str]) -> str:
    """A model of carol's with a valid formula: the grammar leaves good formulas alone."""
    client, _, dataset_id = api
    created = client.post("/models", json=with_weather(dataset_id))
    assert created.status_code == 201, created.text
    assert created.json()["data_sources"]["weather"]["formula"] == "(value - 48) / 4"
    updated = client.put(
        f"/models/{created.json()['model_id']}", json=with_weather(dataset_id, formula="value")
    )
    assert updated.status_code == 200, updated.text
    return created.json()["model_id"]


def _refused(response: httpx.Response, path: str, phrase: str) -> None:
    assert response.status_code == 422, response.text
    details = {d["field"]: d["message"] for d in response.json()["error"]["details"]}
    field = f"body.{path}" if path else "body"
    assert field in details, details
    assert phrase in details[field]
    assert len(response.content) < 4096  # a 1 MB input is not echoed back


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(("source", "path", "phrase"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_sources_get_422_naming_the_field_and_nothing_is_stored(
    api: tuple[httpx.Client, Lake, str],
    model_id: str,
    method: str,
    source: dict[str, Any],
    path: str,
    phrase: str,
) -> None:
    client, lake, dataset_id = api
    before = list(lake.list_keys(f"inbox/models/{USER}/"))
    url = "/models" if method == "POST" else f"/models/{model_id}"
    _refused(client.request(method, url, json=with_weather(dataset_id, **source)), path, phrase)
    assert list(lake.list_keys(f"inbox/models/{USER}/")) == before


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(("path", "phrase"), UNKNOWN_KEYS, ids=[k[0] for k in UNKNOWN_KEYS])
def test_unknown_keys_at_every_level_get_422(
    api: tuple[httpx.Client, Lake, str], model_id: str, method: str, path: str, phrase: str
) -> None:
    client, lake, dataset_id = api
    before = list(lake.list_keys(f"inbox/models/{USER}/"))
    url = "/models" if method == "POST" else f"/models/{model_id}"
    _refused(client.request(method, url, json=nested(with_weather(dataset_id), path, 1)), path, phrase)
    assert list(lake.list_keys(f"inbox/models/{USER}/")) == before
