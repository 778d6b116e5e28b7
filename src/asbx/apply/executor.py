"""A generic DAG executor: bounded parallelism, dependency-gated, failures skip dependents.

It knows nothing about containers: nodes are hashable values, `run` is any function. A node runs
once all its dependencies succeeded; a failed node's dependents are `SKIPPED` and never run;
independent branches finish. Outcomes are returned, never the first exception raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

N = TypeVar("N", bound=Hashable)


class Status(Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped (upstream failed)"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome(Generic[N]):
    node: N
    status: Status
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class ExecutorHooks(Protocol[N]):
    def started(self, node: N) -> None: ...

    def finished(self, outcome: Outcome[N]) -> None: ...


class NullHooks:
    def started(self, node: Any) -> None:
        pass

    def finished(self, outcome: Outcome[Any]) -> None:
        pass


def run_graph(
    nodes: Iterable[N],
    deps: Mapping[N, Iterable[N]],
    run: Callable[[N], Any],
    *,
    limit: int = 8,
    hooks: ExecutorHooks[N] | None = None,
    cancel: threading.Event | None = None,
    free: Callable[[N], bool] | None = None,
) -> dict[N, Outcome[N]]:
    """Run every node after its dependencies, at most `limit` at once; return all outcomes.

    `deps` entries naming nodes outside `nodes` are ignored. When `cancel` is set, no new node
    starts; running ones finish; the rest are CANCELLED. Nodes for which `free` is true do not
    count against `limit` (they mostly wait, e.g. for a batched runtime call).
    """
    order = list(dict.fromkeys(nodes))
    members = set(order)
    waiting = {n: {d for d in deps.get(n, ()) if d in members and d != n} for n in order}
    users: dict[N, list[N]] = {n: [] for n in order}
    for node, ds in waiting.items():
        for dep in ds:
            users[dep].append(node)
    hooks = hooks or NullHooks()
    outcomes: dict[N, Outcome[N]] = {}
    running: dict[Future[Any], tuple[N, float]] = {}
    is_free = free or (lambda _node: False)
    workers = max(1, limit) + sum(1 for n in order if is_free(n))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while len(outcomes) < len(order):
            if cancel is None or not cancel.is_set():
                busy = sum(1 for n, _ in running.values() if not is_free(n))
                for node in _ready(order, waiting, outcomes, running):
                    if not is_free(node):
                        if busy >= limit:
                            continue
                        busy += 1
                    hooks.started(node)
                    running[pool.submit(run, node)] = (node, time.monotonic())
            if not running:
                _close_unreachable(order, outcomes, Status.CANCELLED, hooks)
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                node, started = running.pop(future)
                outcome = _outcome(node, future, time.monotonic() - started)
                outcomes[node] = outcome
                hooks.finished(outcome)
                if outcome.status is Status.OK:
                    for user in users[node]:
                        waiting[user].discard(node)
                else:
                    _skip_dependents(node, users, outcomes, hooks)
    return outcomes


def _ready(
    order: list[N],
    waiting: Mapping[N, set[N]],
    outcomes: Mapping[N, Outcome[N]],
    running: Mapping[Future[Any], tuple[N, float]],
) -> list[N]:
    busy = {n for n, _ in running.values()}
    return [n for n in order if not waiting[n] and n not in outcomes and n not in busy]


def _outcome(node: N, future: Future[Any], seconds: float) -> Outcome[N]:
    error = future.exception()
    if error is not None:
        return Outcome(node, Status.FAILED, error=error, seconds=seconds)
    return Outcome(node, Status.OK, result=future.result(), seconds=seconds)


def _skip_dependents(
    node: N, users: Mapping[N, list[N]], outcomes: dict[N, Outcome[N]], hooks: ExecutorHooks[N]
) -> None:
    stack = list(users[node])
    while stack:
        user = stack.pop()
        if user in outcomes:
            continue
        outcomes[user] = Outcome(user, Status.SKIPPED)
        hooks.finished(outcomes[user])
        stack.extend(users[user])


def _close_unreachable(
    order: list[N], outcomes: dict[N, Outcome[N]], status: Status, hooks: ExecutorHooks[N]
) -> None:
    for node in order:
        if node not in outcomes:
            outcomes[node] = Outcome(node, status)
            hooks.finished(outcomes[node])
