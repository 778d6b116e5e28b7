"""The removal coalescer: concurrent submits share one bulk call; errors reach every caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from asbx.apply.batching import Coalescer


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
