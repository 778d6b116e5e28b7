"""The pure lifecycle decision: which timer is due, and when a delete becomes a stop."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.lifecycle import (
    SandboxFacts,
    StopMark,
    Timer,
    Verdict,
    capturing_snapshot,
    deadlines,
    decide,
    format_duration,
    refresh_stop_marks,
    sandbox_facts,
)
from asbx.runtime.base import ContainerState, ObservedContainer
from asbx.spec.model import LifecycleSpec, Spec
from asbx.state.records import ResourceRecord

WEB = Address(ResourceKind.SANDBOX, "web")
RUNNING, STOPPED = ContainerState.RUNNING, ContainerState.STOPPED
NOW = 1_000_000.0


def facts(state: ContainerState | None = RUNNING, **kw: object) -> SandboxFacts:
    rules = kw.pop("rules", {"idle_timeout": 60})
    lifecycle = LifecycleSpec(**rules) if rules is not None else None  # type: ignore[arg-type]
    base: dict[str, object] = {"created_at": NOW - 3600, "started_at": NOW - 3600}
    base.update(kw)
    return SandboxFacts(WEB, lifecycle, state=state, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "verdict", "timer"),
    [
        (facts(last_activity=NOW - 61), Verdict.STOP, Timer.IDLE),
        (facts(last_activity=NOW - 59), Verdict.KEEP, None),
        # a restart counts as activity: started 10s ago, last exec long ago
        (facts(last_activity=NOW - 9999, started_at=NOW - 10), Verdict.KEEP, None),
        # never used: idle counts from the start
        (facts(last_activity=None, started_at=NOW - 61), Verdict.STOP, Timer.IDLE),
        # no start time known (docker ps): from creation
        (facts(last_activity=None, started_at=None, created_at=NOW - 61), Verdict.STOP,
         Timer.IDLE),
        # stopped or missing sandboxes are never idle-stopped
        (facts(STOPPED, last_activity=NOW - 9999), Verdict.KEEP, None),
        (facts(None, last_activity=NOW - 9999), Verdict.KEEP, None),
        # no lifecycle at all
        (facts(rules=None, last_activity=NOW - 9999), Verdict.KEEP, None),
    ],
)
def test_idle_timeout(case: SandboxFacts, verdict: Verdict, timer: Timer | None) -> None:
    decision = decide(case, NOW)
    assert (decision.verdict, decision.timer) == (verdict, timer)


def test_max_lifetime_deletes_with_its_workspace_when_allowed() -> None:
    case = facts(rules={"max_lifetime": 3000, "delete_workspace": True})
    decision = decide(case, NOW)
    assert decision.verdict is Verdict.DELETE
    assert decision.timer is Timer.LIFETIME
    assert decision.remove_workspace
    assert "max_lifetime 50m" in decision.reason


def test_max_lifetime_deletes_when_a_snapshot_captured_the_workspace() -> None:
    case = facts(rules={"max_lifetime": 3000}, snapshot="snapshot.deps")
    decision = decide(case, NOW)
    assert decision.verdict is Verdict.DELETE
    assert "snapshot.deps" in decision.reason
    assert decision.held == ""


def test_max_lifetime_without_snapshot_or_opt_in_stops_and_says_why() -> None:
    decision = decide(facts(rules={"max_lifetime": 3000}), NOW)
    assert decision.verdict is Verdict.STOP
    assert decision.timer is Timer.LIFETIME
    assert "delete_workspace: true" in decision.held
    assert not decision.remove_workspace


def test_a_held_sandbox_already_stopped_is_kept_with_the_reason() -> None:
    decision = decide(facts(STOPPED, rules={"max_lifetime": 3000}), NOW)
    assert decision.verdict is Verdict.KEEP
    assert decision.held


def test_max_lifetime_not_yet_due() -> None:
    decision = decide(facts(rules={"max_lifetime": 3601, "delete_workspace": True}), NOW)
    assert decision.verdict is Verdict.KEEP
    assert decision.deadlines.expires_at == NOW + 1


def test_auto_delete_counts_from_the_stop_mark() -> None:
    rules = {"auto_delete": 100, "delete_workspace": True}
    assert decide(facts(STOPPED, rules=rules, stopped_since=NOW - 99), NOW).verdict is Verdict.KEEP
    due = decide(facts(STOPPED, rules=rules, stopped_since=NOW - 100), NOW)
    assert (due.verdict, due.timer) == (Verdict.DELETE, Timer.AUTO_DELETE)


def test_auto_delete_needs_a_stopped_container_and_a_known_stop_time() -> None:
    rules = {"auto_delete": 100, "delete_workspace": True}
    assert decide(facts(RUNNING, rules=rules, stopped_since=NOW - 999), NOW).verdict is (
        Verdict.KEEP)
    assert decide(facts(STOPPED, rules=rules, stopped_since=None), NOW).verdict is Verdict.KEEP


def test_a_due_delete_wins_over_an_idle_stop() -> None:
    rules = {"idle_timeout": 10, "max_lifetime": 100, "delete_workspace": True}
    decision = decide(facts(rules=rules, last_activity=NOW - 50), NOW)
    assert decision.verdict is Verdict.DELETE


def test_deadlines_pick_the_earlier_delete_timer() -> None:
    rules = {"idle_timeout": 60, "max_lifetime": 7200, "auto_delete": 600}
    stopped = deadlines(facts(STOPPED, rules=rules, stopped_since=NOW - 10))
    assert stopped.idle_stop_at is None
    assert stopped.delete_at == NOW - 10 + 600
    assert stopped.delete_timer is Timer.AUTO_DELETE
    running = deadlines(facts(RUNNING, rules=rules, last_activity=NOW - 5))
    assert running.idle_stop_at == NOW - 5 + 60
    assert running.delete_at == NOW - 3600 + 7200
    assert running.delete_timer is Timer.LIFETIME


def container(state: ContainerState, started: float | None, cid: str = "c1") -> ObservedContainer:
    when = datetime.fromtimestamp(started, UTC) if started is not None else None
    return ObservedContainer(cid, "p-web", state, {}, started_at=when)


def test_stop_marks_start_when_first_seen_and_survive_while_stopped() -> None:
    first = refresh_stop_marks({}, {WEB: container(STOPPED, NOW - 500)}, NOW)
    assert first[WEB] == StopMark("c1", NOW - 500, NOW)
    later = refresh_stop_marks(first, {WEB: container(STOPPED, NOW - 500)}, NOW + 99)
    assert later[WEB].since == NOW


def test_stop_marks_reset_on_restart_or_recreation_and_drop_when_running() -> None:
    marks = {WEB: StopMark("c1", NOW - 500, NOW - 400)}
    restarted = refresh_stop_marks(marks, {WEB: container(STOPPED, NOW - 100)}, NOW)
    assert restarted[WEB].since == NOW
    recreated = refresh_stop_marks(marks, {WEB: container(STOPPED, NOW - 500, "c2")}, NOW)
    assert recreated[WEB].since == NOW
    assert refresh_stop_marks(marks, {WEB: container(RUNNING, NOW - 500)}, NOW) == {}
    assert refresh_stop_marks(marks, {}, NOW) == {}


def spec_with_snapshot() -> Spec:
    return Spec.model_validate({
        "version": 1,
        "sandboxes": {"web": {"image": "busybox"}, "db": {"image": "busybox"}},
        "snapshots": {"deps": {"sandbox": "web"}},
    })


def snap_record(captured: float, digest: str = "sha256:aa") -> ResourceRecord:
    outputs = {"digest": digest} if digest else {}
    return ResourceRecord(Address(ResourceKind.SNAPSHOT, "deps"), "h", 1, outputs=outputs,
                          created_at=captured, updated_at=captured)


def test_a_snapshot_counts_only_if_captured_after_the_last_activity() -> None:
    spec = spec_with_snapshot()
    records = {Address(ResourceKind.SNAPSHOT, "deps"): snap_record(NOW - 100)}
    assert capturing_snapshot(spec, "web", records, None) == "snapshot.deps"
    assert capturing_snapshot(spec, "web", records, NOW - 200) == "snapshot.deps"
    assert capturing_snapshot(spec, "web", records, NOW - 50) is None
    assert capturing_snapshot(spec, "db", records, None) is None
    uncaptured = {Address(ResourceKind.SNAPSHOT, "deps"): snap_record(NOW, digest="")}
    assert capturing_snapshot(spec, "web", uncaptured, None) is None


def test_sandbox_facts_cover_managed_sandboxes_only() -> None:
    spec = spec_with_snapshot()
    web_record = ResourceRecord(WEB, "h", 1, created_at=NOW - 10)
    found = sandbox_facts(spec, {WEB: web_record}, {WEB: NOW - 5},
                          {WEB: container(RUNNING, NOW - 8)}, {})
    assert [f.address for f in found] == [WEB]
    assert found[0].created_at == NOW - 10
    assert found[0].active_at == NOW - 5
    assert found[0].state is RUNNING


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.4, "59s"), (90, "1m30s"),
                                               (7200, "2h"), (93784, "1d2h")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
