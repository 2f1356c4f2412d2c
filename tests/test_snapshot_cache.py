"""Answers cached per serving snapshot: computed once, forgotten when the snapshot changes."""

from __future__ import annotations

from api.snapshot_cache import SnapshotCache


def test_computed_once_per_snapshot_and_key_then_bounded() -> None:
    calls: list[str] = []
    cache: SnapshotCache[str] = SnapshotCache(max_entries=2)

    def compute(tag: str):
        return lambda: calls.append(tag) or tag

    assert cache.get_or_compute("s1", "a", compute("a1")) == "a1"
    assert cache.get_or_compute("s1", "a", compute("a1-again")) == "a1"
    assert calls == ["a1"]
    # A new snapshot makes every answer stale.
    assert cache.get_or_compute("s2", "a", compute("a2")) == "a2"
    assert calls == ["a1", "a2"]
    # Bounded: the least recently used key goes first.
    cache.get_or_compute("s2", "b", compute("b2"))
    cache.get_or_compute("s2", "a", compute("unused"))
    cache.get_or_compute("s2", "c", compute("c2"))
    cache.get_or_compute("s2", "b", compute("b2-again"))
    assert calls == ["a1", "a2", "b2", "c2", "b2-again"]
