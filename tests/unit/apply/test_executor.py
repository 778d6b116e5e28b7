"""The generic executor on plain values: order, the limit, failure isolation, skips, cancel."""

from __future__ import annotations

import random
import threading
import time

import pytest

from asbx.apply.executor import Outcome, Status, run_graph


class Tracker:
    """Records start/finish order and the peak number of nodes running at once."""

    def __init__(self, fail: set[int] = frozenset(), delay: float = 0.002) -> None:  # type: ignore[assignment]
        self.fail = fail
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.finished: list[int] = []
        self.started: list[int] = []

    def __call__(self, node: int) -> int:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.started.append(node)
        time.sleep(self.delay * random.random())
        with self.lock:
            self.active -= 1
            self.finished.append(node)
        if node in self.fail:
            raise RuntimeError(f"node {node} failed")
        return node * 10


def chain_deps(count: int, width: int) -> dict[int, set[int]]:
    """`width` independent chains: node n depends on n - width."""
    return {n: ({n - width} if n >= width else set()) for n in range(count)}


@pytest.mark.parametrize("run", range(50))
def test_dependencies_finish_before_dependents_and_limit_holds(run: int) -> None:
    deps = {n: {d for d in range(n) if random.random() < 0.2} for n in range(30)}
    tracker = Tracker()
    outcomes = run_graph(range(30), deps, tracker, limit=3)
    assert all(o.status is Status.OK for o in outcomes.values())
    assert tracker.peak <= 3
    for node, ds in deps.items():
        for dep in ds:
            assert tracker.finished.index(dep) < tracker.started.index(node)
    assert outcomes[7].result == 70


def test_parallelism_is_used_when_possible() -> None:
    tracker = Tracker(delay=0.05)
    run_graph(range(8), {}, tracker, limit=4)
    assert tracker.peak == 4


def test_failure_skips_dependents_and_independent_branches_finish() -> None:
    deps = chain_deps(12, 3)  # chains 0-3-6-9, 1-4-7-10, 2-5-8-11
    tracker = Tracker(fail={4})
    outcomes = run_graph(range(12), deps, tracker, limit=2)
    assert outcomes[4].status is Status.FAILED
    assert isinstance(outcomes[4].error, RuntimeError)
    assert [outcomes[n].status for n in (7, 10)] == [Status.SKIPPED, Status.SKIPPED]
    assert 7 not in tracker.started
    assert 10 not in tracker.started
    assert all(outcomes[n].status is Status.OK for n in (0, 3, 6, 9, 2, 5, 8, 11, 1))


def test_skips_propagate_transitively_through_diamonds() -> None:
    deps = {1: {0}, 2: {0}, 3: {1, 2}, 4: {3}, 5: set()}
    outcomes = run_graph(range(6), deps, Tracker(fail={0}), limit=4)
    assert outcomes[0].status is Status.FAILED
    assert {n for n, o in outcomes.items() if o.status is Status.SKIPPED} == {1, 2, 3, 4}
    assert outcomes[5].status is Status.OK


def test_cancel_stops_scheduling_but_lets_running_finish() -> None:
    cancel = threading.Event()

    def run(node: int) -> None:
        if node == 0:
            cancel.set()
            time.sleep(0.05)

    outcomes = run_graph(range(5), chain_deps(5, 1), run, limit=2, cancel=cancel)
    assert outcomes[0].status is Status.OK
    assert {outcomes[n].status for n in range(1, 5)} == {Status.CANCELLED}


def test_hooks_see_every_outcome_once() -> None:
    seen: list[Outcome[int]] = []

    class Hooks:
        def started(self, node: int) -> None:
            pass

        def finished(self, outcome: Outcome[int]) -> None:
            seen.append(outcome)

    run_graph(range(6), {3: {2}, 4: {3}}, Tracker(fail={2}), limit=2, hooks=Hooks())
    assert sorted(o.node for o in seen) == list(range(6))


def test_free_nodes_do_not_count_against_the_limit() -> None:
    tracker = Tracker(delay=0.05)
    outcomes = run_graph(range(10), {}, tracker, limit=1, free=lambda n: n < 6)
    assert all(o.status is Status.OK for o in outcomes.values())
    assert tracker.peak >= 6, "the six free nodes run side by side"

    paid = Tracker(delay=0.02)
    run_graph(range(6), {}, paid, limit=2, free=lambda n: False)
    assert paid.peak <= 2


def test_unknown_dependencies_and_self_edges_are_ignored() -> None:
    outcomes = run_graph([1, 2], {1: {99, 1}, 2: {1}}, lambda n: n, limit=1)
    assert [outcomes[n].status for n in (1, 2)] == [Status.OK, Status.OK]
