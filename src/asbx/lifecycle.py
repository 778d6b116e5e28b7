"""Lifecycle timers (idle_timeout, max_lifetime, auto_delete): a pure decision per sandbox.

Nothing here touches the runtime, the store or the clock: `asbx reap` gathers the facts, asks
`decide` what is due at `now`, and carries it out; `asbx status` shows the same deadlines.

Rules (times are unix seconds):
- idle: a *running* sandbox whose last activity (an `asbx exec`/`shell`, or the container's
  start, whichever is later) is `idle_timeout` old is stopped;
- max_lifetime: a sandbox created (by apply) `max_lifetime` ago is deleted;
- auto_delete: a sandbox *stopped* for `auto_delete` is deleted.
A delete removes the container, the state record and the workspace. The workspace holds user
data, so a delete happens only if `lifecycle.delete_workspace` is true or a snapshot of the spec
captured the workspace after its last activity; otherwise the sandbox is only stopped ("held"),
and the decision says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from asbx.addresses import Address, ResourceKind
from asbx.runtime.base import ContainerState, ObservedContainer
from asbx.spec.model import LifecycleSpec, Spec
from asbx.state.records import ResourceRecord


class Timer(Enum):
    """Which lifecycle rule a decision comes from (the spec's key)."""

    IDLE = "idle_timeout"
    LIFETIME = "max_lifetime"
    AUTO_DELETE = "auto_delete"


class Verdict(Enum):
    """What reap does to one sandbox."""

    KEEP = "keep"  # nothing is due (or a held sandbox is already stopped)
    STOP = "stop"  # stop the container; a held delete is a STOP too
    DELETE = "delete"  # remove container, workspace and state record


@dataclass(frozen=True)
class StopMark:
    """When asbx first knew a container to be stopped (runtimes do not all report it).

    A mark is valid only for the container and start it was taken for: a container started
    again (new `started_at`) or re-created (new id) starts a new stopped period.
    """

    container_id: str
    started_at: float | None
    since: float


@dataclass(frozen=True)
class SandboxFacts:
    """What is known about one managed sandbox (one with a state record)."""

    address: Address
    lifecycle: LifecycleSpec | None
    created_at: float | None
    state: ContainerState | None  # None: no container in the runtime
    started_at: float | None = None
    last_activity: float | None = None
    stopped_since: float | None = None
    snapshot: str | None = None  # a snapshot that captured the workspace after its last use

    @property
    def active_at(self) -> float | None:
        """The later of the last exec/shell and the container's start (else its creation)."""
        known = [t for t in (self.last_activity, self.started_at) if t is not None]
        if known:
            return max(known)
        return self.created_at


@dataclass(frozen=True)
class Deadlines:
    """When each timer of one sandbox falls due (None: not set, or not applicable now)."""

    idle_stop_at: float | None = None
    expires_at: float | None = None
    auto_delete_at: float | None = None

    @property
    def delete_at(self) -> float | None:
        due = [t for t in (self.expires_at, self.auto_delete_at) if t is not None]
        return min(due) if due else None

    @property
    def delete_timer(self) -> Timer | None:
        if self.delete_at is None:
            return None
        return Timer.LIFETIME if self.delete_at == self.expires_at else Timer.AUTO_DELETE


@dataclass(frozen=True)
class Decision:
    """One sandbox's verdict at `now`, the rule behind it, and words for the user.

    `held` is set when a delete was due but the workspace is not safe to remove: the sandbox
    is stopped instead (or kept, when already stopped) and `held` says why and how to allow it.
    """

    address: Address
    verdict: Verdict
    timer: Timer | None
    deadlines: Deadlines
    reason: str = ""
    remove_workspace: bool = False
    held: str = ""


def deadlines(facts: SandboxFacts) -> Deadlines:
    """The due times of a sandbox's timers given its current state."""
    rules = facts.lifecycle
    if rules is None or facts.state is None:
        return Deadlines()
    idle_at = expires_at = auto_at = None
    active = facts.active_at
    if rules.idle_timeout and facts.state is ContainerState.RUNNING and active is not None:
        idle_at = active + rules.idle_timeout
    if rules.max_lifetime and facts.created_at:
        expires_at = facts.created_at + rules.max_lifetime
    stopped = facts.state is ContainerState.STOPPED
    if rules.auto_delete and stopped and facts.stopped_since is not None:
        auto_at = facts.stopped_since + rules.auto_delete
    return Deadlines(idle_at, expires_at, auto_at)


def decide(facts: SandboxFacts, now: float) -> Decision:
    """What is due for one sandbox at `now`: a delete beats an idle stop."""
    due = deadlines(facts)
    keep = Decision(facts.address, Verdict.KEEP, None, due)
    if facts.lifecycle is None or facts.state is None:
        return keep
    timer = due.delete_timer
    delete_at = due.delete_at
    if timer is not None and delete_at is not None and delete_at <= now:
        return _delete_or_hold(facts, due, timer, now - delete_at)
    if due.idle_stop_at is not None and due.idle_stop_at <= now:
        idle = format_duration(now - (facts.active_at or now))
        return Decision(facts.address, Verdict.STOP, Timer.IDLE, due, f"idle for {idle}")
    return keep


def _delete_or_hold(facts: SandboxFacts, due: Deadlines, timer: Timer, late: float) -> Decision:
    rules = facts.lifecycle
    assert rules is not None
    if timer is Timer.LIFETIME:
        reason = f"past max_lifetime {format_duration(rules.max_lifetime or 0)}"
    else:
        reason = f"stopped for more than auto_delete {format_duration(rules.auto_delete or 0)}"
    if rules.delete_workspace:
        return Decision(facts.address, Verdict.DELETE, timer, due, reason, remove_workspace=True)
    if facts.snapshot is not None:
        reason += f"; its workspace is captured by {facts.snapshot}"
        return Decision(facts.address, Verdict.DELETE, timer, due, reason, remove_workspace=True)
    held = (
        "its workspace holds data no snapshot has captured since it was last used; "
        "set lifecycle.delete_workspace: true to let reap delete it"
    )
    running = facts.state is ContainerState.RUNNING
    verdict = Verdict.STOP if running else Verdict.KEEP
    return Decision(facts.address, verdict, timer, due, reason, held=held)


def capturing_snapshot(
    spec: Spec,
    sandbox: str,
    records: Mapping[Address, ResourceRecord],
    last_activity: float | None,
) -> str | None:
    """A spec snapshot of `sandbox` captured after the sandbox's last exec/shell, if any.

    A capture older than the last activity does not count: the workspace may have changed.
    """
    for name, snap in spec.snapshots.items():
        if snap.sandbox != sandbox:
            continue
        record = records.get(Address(ResourceKind.SNAPSHOT, name))
        if record is None or not record.outputs.get("digest"):
            continue
        captured = record.updated_at or record.created_at
        if last_activity is None or captured >= last_activity:
            return f"snapshot.{name}"
    return None


def refresh_stop_marks(
    marks: Mapping[Address, StopMark],
    containers: Mapping[Address, ObservedContainer],
    now: float,
) -> dict[Address, StopMark]:
    """Keep valid marks of stopped containers, start new ones at `now`, drop the rest."""
    fresh: dict[Address, StopMark] = {}
    for address, container in containers.items():
        if container.state is not ContainerState.STOPPED:
            continue
        started = timestamp(container.started_at)
        mark = marks.get(address)
        if mark is not None and mark.container_id == container.id and mark.started_at == started:
            fresh[address] = mark
        else:
            fresh[address] = StopMark(container.id, started, now)
    return fresh


def sandbox_facts(
    spec: Spec,
    records: Mapping[Address, ResourceRecord],
    activity: Mapping[Address, float],
    containers: Mapping[Address, ObservedContainer],
    marks: Mapping[Address, StopMark],
) -> list[SandboxFacts]:
    """Facts for every sandbox that is both in the spec and in state (asbx manages it)."""
    out: list[SandboxFacts] = []
    for name, box in spec.sandboxes.items():
        address = Address(ResourceKind.SANDBOX, name)
        record = records.get(address)
        if record is None:
            continue
        container = containers.get(address)
        mark = marks.get(address)
        last = activity.get(address)
        created = record.created_at or (timestamp(container.created_at) if container else None)
        out.append(
            SandboxFacts(
                address=address,
                lifecycle=box.lifecycle,
                created_at=created,
                state=container.state if container else None,
                started_at=timestamp(container.started_at) if container else None,
                last_activity=last,
                stopped_since=mark.since if mark else None,
                snapshot=capturing_snapshot(spec, name, records, last),
            )
        )
    return out


def decide_all(facts: Iterable[SandboxFacts], now: float) -> list[Decision]:
    return [decide(f, now) for f in facts]


def timestamp(value: object) -> float | None:
    """A datetime as unix seconds (None stays None)."""
    from datetime import datetime

    return value.timestamp() if isinstance(value, datetime) else None


def format_duration(seconds: float) -> str:
    """90 -> "1m30s", 7200 -> "2h", 93784 -> "1d2h": at most two units, for tables and messages."""
    total = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts[:2])
