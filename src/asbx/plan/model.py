"""The plan as data: actions and reasons as enums, field changes, changes, and the plan itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from asbx.addresses import Address

# The verb of a sandbox UPDATE that sets the running container's cpus/memory (`update`).
LIMITS_VERB = "update-limits"


class Action(Enum):
    """What apply will do to one resource; each value carries its plan symbol."""

    NOOP = "noop"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    START = "start"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def mutates(self) -> bool:
        return self is not Action.NOOP


_SYMBOLS = {
    Action.NOOP: "=",
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.START: ">",
}


class Reason(Enum):
    """Why a change is planned. For explaining the plan only; apply never branches on it."""

    NEW = "new"
    SPEC_CHANGED = "spec changed"
    MISSING = "missing in runtime"
    DRIFTED = "changed outside asbx"
    DEPENDENCY_REPLACED = "dependency replaced"
    NOT_IN_SPEC = "not in sandboxes.yaml"
    REQUESTED = "requested"
    EXPIRED = "expired"
    REAPED = "deleted by asbx reap"
    TAINTED = "tainted: its setup failed or did not finish"
    STOPPED = "stopped"
    ORPHAN = "orphan: unknown to spec and state"
    DESTROY = "destroy requested"
    ADOPTED = "found in runtime, not in state"
    PROXY_DOWN = "egress proxy not running"
    PRIVILEGES = "runs with more privileges than asbx now grants"
    GUARD_DOWN = "host firewall rules missing"
    SECRETS_CHANGED = "secret value changed"
    UNCHANGED = "unchanged"
    IMPORTED = "imported"


@dataclass(frozen=True)
class FieldChange:
    """One declared field that differs between what was applied and what the spec says now."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class Change:
    """One resource's planned change with its reason, field diff and data-loss mark.

    `verb` names what a create does for kinds where "create" is vague (build, pull, capture).
    `record_only` changes touch the state store but no runtime object (adoption, in-place
    fields such as lifecycle timers). `holds_data` marks deletes/replaces that would lose a
    volume's, a snapshot's or a workspace's contents: apply refuses them unless allowed.
    """

    address: Address
    action: Action
    reason: Reason
    verb: str = ""
    detail: str = ""
    fields: tuple[FieldChange, ...] = ()
    holds_data: bool = False
    config_hash: str = ""
    record_only: bool = False
    notes: tuple[str, ...] = ()
    # Replaced only because the runtime's capabilities say cpus/memory cannot change in place
    # (a runtime may know better after asking its version: see Runtime.probe_capabilities).
    limits_blocked: bool = False

    @property
    def runtime_change(self) -> bool:
        return self.action.mutates and not self.record_only

    @property
    def counts(self) -> bool:
        """Whether the plan summary counts it: runtime changes and in-place spec changes.

        Pure bookkeeping (adopting an object into state, refreshing a record after a hash
        scheme upgrade) is not counted and does not make `--detailed-exitcode` return 2.
        """
        return self.action.mutates and (not self.record_only or bool(self.fields))


@dataclass(frozen=True)
class PlanOptions:
    targets: frozenset[Address] = frozenset()
    replace: frozenset[Address] = frozenset()
    destroy: bool = False
    destroy_volumes: bool = False
    destroy_snapshots: bool = False
    destroy_workspaces: bool = False
    remove_orphans: bool = False
    allow_data_loss: bool = False
    refresh: bool = True
    pull: bool = False


@dataclass(frozen=True)
class BuildInputs:
    """A build context as a plan saw it: its digest and each kept file's fingerprint."""

    digest: str
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Every change for one project, in apply order, plus what was found wrong before anything ran.

    `errors` make the plan unappliable (a field the runtime cannot honour); `warnings` are shown.
    `state_serial`/`state_lineage`/`spec_digest`/`lock_digest`/`contexts` let a saved plan
    detect that it went stale, and say what changed (see `asbx.plan.staleness`).
    """

    project: str
    changes: tuple[Change, ...]
    options: PlanOptions = field(default_factory=PlanOptions)
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    state_serial: int = 0
    state_lineage: str = ""
    spec_digest: str = ""
    runtime: str = ""
    lock_digest: str | None = None  # sha256 of sandboxes.lock, "" without one, None: unknown
    contexts: Mapping[str, BuildInputs] = field(default_factory=dict)  # by image name

    @property
    def pending(self) -> tuple[Change, ...]:
        """Changes the summary counts (what `--detailed-exitcode` reports as 2)."""
        return tuple(c for c in self.changes if c.counts)

    @property
    def limits_blocked(self) -> bool:
        """Some sandbox is replaced only because its limits could not be changed in place."""
        return any(c.limits_blocked for c in self.changes)

    @property
    def has_runtime_changes(self) -> bool:
        return any(c.runtime_change for c in self.changes)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action and c.counts)

    @property
    def state_only(self) -> int:
        return sum(1 for c in self.changes if c.action.mutates and not c.counts)

    def summary(self) -> str:
        parts = [
            f"{self.count(Action.CREATE)} to add",
            f"{self.count(Action.UPDATE) + self.count(Action.START)} to change",
            f"{self.count(Action.REPLACE)} to replace",
            f"{self.count(Action.DELETE)} to destroy",
        ]
        text = "Plan: " + ", ".join(parts) + "."
        if self.state_only:
            text += f" {self.state_only} state-only update{'s' if self.state_only != 1 else ''}."
        return text

    def data_loss(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.holds_data and c.action.mutates)
