"""A change of only cpus/memory: set in the running container where the runtime can (`update`),
else a replacement that says why; setup is not run again and the next plan is a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.apply.hooks import NullApplyHooks
from asbx.plan.model import LIMITS_VERB, Action, Change, PlanOptions, Reason
from asbx.runtime.base import Capabilities
from asbx.spec.loader import load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, make_plan, run_apply
from tests.fakes.runtime import FakeRuntime

IMAGE = "localhost/asbx/busybox:latest"
SPEC = f"""
version: 1
name: limits
sandboxes:
  web:
    image: {IMAGE}
    memory: 64M
    setup:
      - echo built > /workspace/built.txt
"""
WEB = Address(ResourceKind.SANDBOX, "web")
CONTAINER = "limits-web"
CAN = Capabilities(limits_update_blocker="")


def _runtime(capabilities: Capabilities) -> FakeRuntime:
    fake = FakeRuntime(capabilities=capabilities)
    fake.publish(IMAGE)
    return fake


def _session(tmp_path: Path, runtime: FakeRuntime, spec: str, home: str = "home") -> Session:
    path = tmp_path / "sandboxes.yaml"
    path.write_text(spec)
    root = tmp_path / home
    return Session.create(load_spec(path), runtime, StateStore(root / "state.db"), root)


def _apply(session: Session) -> None:
    result = run_apply(session, make_plan(session, PlanOptions()), parallelism=2,
                       hooks=NullApplyHooks())
    assert not result.failed


def _web(session: Session) -> Change:
    changes = make_plan(session, PlanOptions()).plan.changes
    return next(c for c in changes if c.address == WEB)


def test_a_memory_change_is_set_in_place_keeping_the_container_and_its_setup(
    tmp_path: Path,
) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    first_id = runtime.containers[CONTAINER].id
    execs = runtime.count("exec")
    session = _session(tmp_path, runtime, SPEC.replace("64M", "128M"))
    change = _web(session)
    assert (change.action, change.reason, change.verb) == (
        Action.UPDATE, Reason.SPEC_CHANGED, LIMITS_VERB)
    assert not change.record_only
    assert [(f.path, f.before, f.after, f.forces_replacement) for f in change.fields] == [
        ("memory", "64M", "128M", False)]
    _apply(session)
    assert runtime.containers[CONTAINER].id == first_id
    assert runtime.container_limits(CONTAINER) == (None, 128 * 2**20)
    assert runtime.count("exec") == execs  # setup did not run again
    assert runtime.count("create_container") == 1
    assert not make_plan(session, PlanOptions()).plan.pending


def test_adding_cpus_is_in_place_too(tmp_path: Path) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    session = _session(tmp_path, runtime, SPEC.replace("memory: 64M", "memory: 64M\n    cpus: 1.5"))
    assert _web(session).verb == LIMITS_VERB
    _apply(session)
    assert runtime.container_limits(CONTAINER) == (1.5, 64 * 2**20)
    assert runtime.count("create_container") == 1
    assert not make_plan(session, PlanOptions()).plan.pending


def test_where_the_runtime_cannot_it_is_replaced_and_the_plan_says_why(tmp_path: Path) -> None:
    runtime = _runtime(Capabilities(limits_update_blocker="no update command here"))
    _apply(_session(tmp_path, runtime, SPEC))
    change = _web(_session(tmp_path, runtime, SPEC.replace("64M", "128M")))
    assert change.action is Action.REPLACE
    assert change.fields[0].forces_replacement
    assert "cpus/memory are not changed in place: no update command here" in change.notes


@pytest.mark.parametrize("edit", [
    ("    memory: 64M\n", ""),  # a limit lifted: not something `update` can do
    ("memory: 64M", "memory: 128M\n    env: {A: b}"),  # with another change
    ("echo built", "echo made"),  # setup changed as well
])
def test_limits_with_anything_else_still_replace(tmp_path: Path, edit: tuple[str, str]) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    change = _web(_session(tmp_path, runtime, SPEC.replace(*edit)))
    assert change.action is Action.REPLACE
    assert change.verb != LIMITS_VERB


def test_a_runtime_that_does_not_show_the_new_limit_fails_the_update(tmp_path: Path) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    runtime.update_limits = lambda *args: None  # type: ignore[method-assign]
    session = _session(tmp_path, runtime, SPEC.replace("64M", "128M"))
    result = run_apply(session, make_plan(session, PlanOptions()), parallelism=2,
                       hooks=NullApplyHooks())
    assert result.failed
    assert _web(session).verb == LIMITS_VERB  # not recorded: the next plan tries again


def test_after_a_lost_database_a_container_updated_in_place_is_adopted(tmp_path: Path) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    _apply(_session(tmp_path, runtime, SPEC.replace("64M", "128M")))
    first_id = runtime.containers[CONTAINER].id
    (tmp_path / "home" / "state.db").unlink()
    session = _session(tmp_path, runtime, SPEC.replace("64M", "128M"))
    change = _web(session)
    assert (change.action, change.reason) == (Action.UPDATE, Reason.ADOPTED)
    _apply(session)
    assert runtime.containers[CONTAINER].id == first_id
    assert not make_plan(session, PlanOptions()).plan.pending


def test_without_the_note_a_container_with_another_hash_is_still_replaced(
    tmp_path: Path,
) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SPEC))
    _apply(_session(tmp_path, runtime, SPEC.replace("64M", "128M")))
    (tmp_path / "home" / "state.db").unlink()
    note = next((tmp_path / "home").glob("projects/*/sandboxes/web/limits-set"))
    note.unlink()
    change = _web(_session(tmp_path, runtime, SPEC.replace("64M", "128M")))
    assert (change.action, change.reason) == (Action.REPLACE, Reason.DRIFTED)


SNAPSHOT_SPEC = SPEC + """  worker:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: deps}
snapshots:
  deps: {sandbox: web}
"""


def test_snapshots_from_the_sandbox_are_not_retaken_nor_their_consumers_touched(
    tmp_path: Path,
) -> None:
    runtime = _runtime(CAN)
    _apply(_session(tmp_path, runtime, SNAPSHOT_SPEC))
    session = _session(tmp_path, runtime, SNAPSHOT_SPEC.replace("64M", "128M"))
    plan = make_plan(session, PlanOptions()).plan
    runtime_changes = {str(c.address): c.action for c in plan.changes if c.runtime_change}
    assert runtime_changes == {"sandbox.web": Action.UPDATE}
    creates = runtime.count("create_container")
    _apply(session)
    assert runtime.count("create_container") == creates
    assert not make_plan(session, PlanOptions()).plan.pending


def test_a_runtime_that_finds_it_can_after_asking_its_version_updates_in_place(
    tmp_path: Path,
) -> None:
    runtime = _runtime(Capabilities(limits_update_blocker="cannot, as far as is known"))
    runtime.probed_capabilities = CAN  # e.g. podman 5.1+ on SQLite
    _apply(_session(tmp_path, runtime, SPEC))
    assert runtime.count("probe_capabilities") == 0  # nothing depended on it
    first_id = runtime.containers[CONTAINER].id
    session = _session(tmp_path, runtime, SPEC.replace("64M", "128M"))
    change = _web(session)
    assert (change.action, change.verb) == (Action.UPDATE, LIMITS_VERB)
    assert not change.limits_blocked
    assert runtime.count("probe_capabilities") == 1
    _apply(session)
    assert runtime.containers[CONTAINER].id == first_id
    assert runtime.container_limits(CONTAINER) == (None, 128 * 2**20)
    probes = runtime.count("probe_capabilities")
    assert not make_plan(session, PlanOptions()).plan.pending
    assert runtime.count("probe_capabilities") == probes  # a no-op plan asks nothing


def test_a_probe_that_still_cannot_replaces_with_its_own_reason(tmp_path: Path) -> None:
    runtime = _runtime(Capabilities(limits_update_blocker="cannot, as far as is known"))
    runtime.probed_capabilities = Capabilities(limits_update_blocker="podman 4.3.1 cannot")
    _apply(_session(tmp_path, runtime, SPEC))
    change = _web(_session(tmp_path, runtime, SPEC.replace("64M", "128M")))
    assert change.action is Action.REPLACE
    assert change.limits_blocked
    assert "cpus/memory are not changed in place: podman 4.3.1 cannot" in change.notes
