"""The removal coalescer: concurrent submits share one bulk call; errors reach every caller."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import pytest

from asbx.apply.batching import Coalescer, remove_verified
from asbx.errors import AsbxError, NotFoundError


def run_together(coalescer: Coalescer, names: list[str]) -> dict[str, BaseException | None]:
    results: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(names))

    def call(name: str) -> None:
        start.wait()
        try:
            coalescer.submit(name)
            results[name] = None
        except BaseException as exc:
            results[name] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_concurrent_submits_become_one_bulk_call() -> None:
    calls: list[list[str]] = []
    coalescer = Coalescer(lambda names: calls.append(sorted(names)), window=0.1)
    results = run_together(coalescer, [f"c{i}" for i in range(8)])
    assert results == {f"c{i}": None for i in range(8)}
    assert calls == [sorted(f"c{i}" for i in range(8))]


def test_later_submits_start_a_new_batch() -> None:
    calls: list[Sequence[str]] = []
    coalescer = Coalescer(calls.append, window=0.01)
    coalescer.submit("a")
    coalescer.submit("b")
    assert calls == [["a"], ["b"]]


def test_a_failed_bulk_call_fails_every_caller_in_it() -> None:
    def bulk(names: Sequence[str]) -> None:
        raise RuntimeError(f"cannot remove {len(names)}")

    results = run_together(Coalescer(bulk, window=0.1), ["a", "b", "c"])
    assert {str(e) for e in results.values()} == {"cannot remove 3"}
    with pytest.raises(RuntimeError, match="cannot remove 1"):
        Coalescer(bulk, window=0.0).submit("d")


class QuirkyStore:
    """podman 4.3's `rm -f A B C`: exits 0 and removes nothing when one name is missing."""

    def __init__(self, names: set[str], stuck: frozenset[str] = frozenset()) -> None:
        self.names = names
        self.stuck = stuck
        self.listings = 0

    def bulk(self, names: Sequence[str]) -> None:
        if set(names) <= self.names:
            self.names -= set(names) - self.stuck

    def one(self, name: str) -> None:
        if name not in self.names:
            raise NotFoundError(name)
        if name not in self.stuck:
            self.names.discard(name)

    def present(self, wanted: Iterable[str]) -> set[str]:
        self.listings += 1
        return self.names & set(wanted)


def test_a_bulk_removal_that_removed_nothing_is_retried_one_by_one() -> None:
    store = QuirkyStore({"a", "c", "other"})
    failures = remove_verified(["a", "b", "c"], store.bulk, store.one, store.present, "container")
    assert failures == {}
    assert store.names == {"other"}


def test_a_removal_that_did_not_happen_is_an_error_for_that_name_only() -> None:
    store = QuirkyStore({"a", "b", "c"}, stuck=frozenset({"b"}))
    failures = remove_verified(["a", "b", "c"], store.bulk, store.one, store.present, "volume",
                               pauses=(0.0,))
    assert list(failures) == ["b"]
    assert "still there" in str(failures["b"])
    assert store.names == {"b"}


def test_a_clean_bulk_removal_costs_one_listing() -> None:
    store = QuirkyStore({"a", "b"})
    assert remove_verified(["a", "b"], store.bulk, store.one, store.present, "container") == {}
    assert store.listings == 1


def test_per_name_failures_reach_only_their_caller() -> None:
    coalescer = Coalescer(lambda names: {"b": RuntimeError("b stuck")}, window=0.1)
    results = run_together(coalescer, ["a", "b"])
    assert results["a"] is None
    assert str(results["b"]) == "b stuck"


def test_a_refused_removal_is_retried_after_a_pause() -> None:
    store = QuirkyStore({"a", "b"})
    refusals = iter([AsbxError("device or resource busy")])

    def one(name: str) -> None:
        error = next(refusals, None)
        if error is not None:
            raise error
        store.one(name)

    failures = remove_verified(["a"], lambda names: None, one, store.present, "container",
                               pauses=(0.0, 0.0))
    assert failures == {}
    assert store.names == {"b"}


def test_a_removal_refused_every_time_is_that_error() -> None:
    store = QuirkyStore({"a"})

    def one(name: str) -> None:
        raise AsbxError("device or resource busy")

    failures = remove_verified(["a"], lambda names: None, one, store.present, "container",
                               pauses=(0.0, 0.0))
    assert [str(e) for e in failures.values()] == ["device or resource busy"]
