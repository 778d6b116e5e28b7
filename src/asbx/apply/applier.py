"""Apply a plan: refuse data loss unless allowed, order the phases, run them, report outcomes."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from asbx.addresses import Address, ResourceKind
from asbx.apply.executor import Outcome, Status, run_graph
from asbx.apply.hooks import ApplyHooks, NullApplyHooks
from asbx.apply.steps import StepContext, run_create, run_destroy
from asbx.errors import PlanError
from asbx.plan.model import Action, Change, Plan

Node = tuple[Address, str]  # (address, "destroy" | "create")


@dataclass(frozen=True)
class ApplyResult:
    outcomes: Mapping[Node, Outcome[Node]]
    changes: Mapping[Address, Change]

    @property
    def failed(self) -> list[Outcome[Node]]:
        return [o for o in self.outcomes.values() if o.status is Status.FAILED]

    @property
    def skipped(self) -> list[Outcome[Node]]:
        return [o for o in self.outcomes.values() if o.status in (Status.SKIPPED, Status.CANCELLED)]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def done(self, action: Action) -> int:
        """How many changes of `action` completed (every phase OK)."""
        count = 0
        for address, change in self.changes.items():
            phases = [o for (a, _), o in self.outcomes.items() if a == address]
            if change.action is action and phases and all(o.status is Status.OK for o in phases):
                count += not change.record_only
        return count


def check_applicable(plan: Plan) -> None:
    """Raise PlanError for plan errors and for data loss the options do not allow."""
    if plan.errors:
        raise PlanError(plan.errors, hint="change the spec or pick another runtime with --runtime")
    opts = plan.options
    refused = [
        c
        for c in plan.data_loss()
        if not (opts.allow_data_loss or c.address in opts.replace or opts.destroy)
    ]
    if refused:
        lines = [
            f"refusing to {'destroy' if c.action is Action.DELETE else 'replace'} "
            f"{c.address}: it holds data ({c.reason.value})"
            for c in refused
        ]
        flags = " ".join(f"--replace {c.address}" for c in refused if c.action is Action.REPLACE)
        hint = "re-run with --allow-data-loss" + (f" (or {flags})" if flags else "")
        raise PlanError(lines, hint=hint)


Deps = Mapping[Address, tuple[Address, ...]]


def phases(plan: Plan, deps: Deps, applied_deps: Deps | None = None
           ) -> tuple[list[Node], dict[Node, set[Node]]]:
    """Executor nodes for the plan's mutating changes, with the edges between phases.

    `deps` are the spec's dependencies (what a create needs); `applied_deps` those each
    resource was applied with (what its runtime object uses now), which order the destroys:
    a sandbox that mounted a volume the new spec drops must be removed before that volume.
    """
    nodes: list[Node] = []
    for change in plan.changes:
        if not change.action.mutates:
            continue
        if change.action in (Action.DELETE, Action.REPLACE):
            nodes.append((change.address, "destroy"))
        if change.action is not Action.DELETE:
            nodes.append((change.address, "create"))
    edges = _edges(nodes, deps, applied_deps or {})
    replaced = [c.address for c in plan.changes if c.action is Action.REPLACE]
    return nodes, _build_before_replacing(edges, replaced)


def _build_before_replacing(edges: dict[Node, set[Node]], replaced: list[Address]
                            ) -> dict[Node, set[Node]]:
    """A replaced resource's old object is removed only once every create its replacement
    waits for (builds, pulls, captures, other sandboxes) has succeeded, so a failure there
    leaves the old one in place. A create that itself waits for this removal (a dependency
    replaced too, which must outlive its users) cannot be waited for and is left out."""
    for address in replaced:
        destroy, create = (address, "destroy"), (address, "create")
        if destroy not in edges or create not in edges:
            continue
        for needed in sorted(_ancestors(edges, create), key=str):
            if needed[1] == "create" and destroy not in _ancestors(edges, needed):
                edges[destroy].add(needed)
    return edges


def _ancestors(edges: Mapping[Node, set[Node]], node: Node) -> set[Node]:
    """Every node `node` waits for, directly or not."""
    seen: set[Node] = set()
    stack = list(edges.get(node, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, ()))
    return seen


def _edges(nodes: list[Node], deps_of: Deps, applied_deps_of: Deps) -> dict[Node, set[Node]]:
    """create after its dependencies' create/destroy; destroy before its dependencies' destroy
    (the dependencies it was applied with, else the spec's)."""
    present = set(nodes)
    edges: dict[Node, set[Node]] = {n: set() for n in nodes}
    for address, phase in nodes:
        if phase == "destroy":
            for dep in applied_deps_of.get(address, deps_of.get(address, ())):
                if (dep, "destroy") in present:
                    edges[(dep, "destroy")].add((address, "destroy"))
            continue
        for dep in deps_of.get(address, ()):
            if (dep, "create") in present:
                edges[(address, "create")].add((dep, "create"))
            if (dep, "destroy") in present:
                edges[(address, "create")].add((dep, "destroy"))
        if phase == "create" and (address, "destroy") in present:
            edges[(address, "create")].add((address, "destroy"))
    return edges


def apply_plan(
    plan: Plan,
    ctx: StepContext,
    deps: Deps,
    *,
    parallelism: int = 8,
    hooks: ApplyHooks | None = None,
    cancel: threading.Event | None = None,
) -> ApplyResult:
    """Run the plan's phases through the executor; every finished step is already recorded."""
    check_applicable(plan)
    progress: ApplyHooks = hooks or NullApplyHooks()
    applied_deps = {address: record.dependencies for address, record in ctx.records.items()}
    nodes, edges = phases(plan, deps, applied_deps)
    changes = {c.address: c for c in plan.changes if c.action.mutates}

    def run(node: Node) -> None:
        address, phase = node
        change = changes[address]
        progress.step_started(change, phase)

        def output(stream: str, text: str) -> None:
            progress.step_output(change, stream, text)

        (run_destroy if phase == "destroy" else run_create)(ctx, change, output)

    class _Relay:
        def started(self, node: Node) -> None:
            pass

        def finished(self, outcome: Outcome[Node]) -> None:
            address, phase = outcome.node
            change = changes[address]
            progress.step_finished(change, phase, outcome)
            detail = str(outcome.error) if outcome.error else ""
            ctx.store.journal(
                ctx.project,
                "apply",
                address,
                f"{change.action.value}:{phase}",
                outcome.status.value,
                detail,
            )

    def batched(node: Node) -> bool:
        """Destroy phases whose runtime work is one batched removal wait, not work."""
        address, phase = node
        record = ctx.records.get(address)
        allowlisted = record is not None and isinstance(record.applied.get("network"), dict)
        return (phase == "destroy" and not changes[address].record_only and not allowlisted
                and address.kind in (ResourceKind.SANDBOX, ResourceKind.VOLUME))

    outcomes = run_graph(nodes, edges, run, limit=parallelism, hooks=_Relay(), cancel=cancel,
                         free=batched)
    return ApplyResult(outcomes, changes)
