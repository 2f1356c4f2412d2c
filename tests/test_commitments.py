"""Pick commitments (SPEC 9): the worked example's every digest, and Merkle paths on hand-made trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.compliance.commitments import (
    ZERO_CHAIN,
    Pick,
    batch_digest,
    day_root,
    inclusion_path,
    merkle_root,
    next_chain,
    root_from_path,
    sha256_hex,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "commitments" / "worked_example.json"


@pytest.fixture(scope="module")
def example() -> dict:
    if not EXAMPLE.exists():
        pytest.skip(f"the worked example is not beside the clone ({EXAMPLE} is absent)")
    return json.loads(EXAMPLE.read_text())


def check_model(model: dict) -> None:
    leaves = []
    for entry in model["picks"]:
        pick = Pick.from_fields(entry["pick"])
        assert pick.canonical() == entry["canonical"]
        assert pick.leaf() == entry["leaf"]
        leaves.append(pick.leaf())
    assert merkle_root(leaves) == model["root"]
    assert next_chain(model["previous_chain"], model["root"]) == model["chain"]
    for leaf in leaves:
        assert root_from_path(leaf, inclusion_path(leaves, leaf)) == model["root"]


def test_the_worked_example_reproduces_every_digest(example: dict) -> None:
    batch = example["batch"]
    for model in batch["models"].values():
        assert model["previous_chain"] == ZERO_CHAIN
        check_model(model)
    assert batch_digest(batch["object"]) == batch["digest"]
    second = example["second_batch"]
    check_model({**second, "picks": [{k: second[k] for k in ("pick", "canonical", "leaf")}]})
    assert second["previous_chain"] == batch["models"]["bob--rotation-strength-8aa5b6"]["chain"]
    assert batch_digest(second["object"]) == second["digest"]
    day = example["day"]
    assert [batch["digest"], second["digest"]] == day["batch_digests"]
    assert day_root(day["batch_digests"]) == day["root"]


def digest(n: int) -> str:
    return sha256_hex(str(n).encode())


def pair(left: str, right: str) -> str:
    return sha256_hex(bytes.fromhex(left) + bytes.fromhex(right))


def test_an_odd_node_is_promoted_unchanged_and_leaves_are_sorted_first() -> None:
    a, b, c = sorted(digest(n) for n in range(3))
    assert merkle_root([c, a, b]) == pair(pair(a, b), c)
    assert merkle_root([a]) == a
    assert inclusion_path([a, b, c], c)[0].sibling == pair(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_leaf_has_a_path_to_the_root_and_a_changed_leaf_has_none(n: int) -> None:
    leaves = [digest(i) for i in range(n)]
    root = merkle_root(leaves)
    for leaf in leaves:
        path = inclusion_path(leaves, leaf)
        assert root_from_path(leaf, path) == root
        assert root_from_path(digest(99), path) != root


def test_a_pick_commits_exactly_its_fields_with_line_null_for_h2h() -> None:
    import datetime as dt

    pick = Pick("m", 1, "g", "b", "h2h", "home", 1.5, 1.35, 0.7, dt.datetime(2025, 1, 1, 1, tzinfo=dt.UTC))
    assert pick.fields()["line"] is None
    assert pick.fields()["cut_off"] == "2025-01-01T01:00:00Z"
    with pytest.raises(ValueError, match="exactly the fields"):
        Pick.from_fields(pick.fields() | {"extra": 1})
