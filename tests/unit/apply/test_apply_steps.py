"""The real applier (workflow.run_apply -> apply/steps.py) on the fake runtime: records, taint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.apply.hooks import NullApplyHooks
from asbx.plan.model import Action, PlanOptions, Reason
from asbx.spec.loader import load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, make_plan, run_apply
from tests.fakes.runtime import FakeRuntime

IMAGE = "localhost/asbx/busybox:latest"
SPEC = f"""
version: 1
name: steps
sandboxes:
  web:
    image: {IMAGE}
    setup:
      - echo built > /workspace/built.txt
  solo:
    image: {IMAGE}
"""
WEB = Address(ResourceKind.SANDBOX, "web")


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    fake.publish(IMAGE)
    return fake


def _session(tmp_path: Path, runtime: FakeRuntime) -> Session:
    spec = tmp_path / "sandboxes.yaml"
    if not spec.exists():
        spec.write_text(SPEC)
    home = tmp_path / "home"
    return Session.create(load_spec(spec), runtime, StateStore(home / "state.db"), home)


def _apply(tmp_path: Path, runtime: FakeRuntime) -> list[str]:
    """Plan and apply once; the addresses whose step failed."""
    session = _session(tmp_path, runtime)
    result = run_apply(session, make_plan(session, PlanOptions()), parallelism=4,
                       hooks=NullApplyHooks())
    return sorted(str(o.node[0]) for o in result.failed)


def _pending(tmp_path: Path, runtime: FakeRuntime) -> dict[str, tuple[str, str]]:
    plan = make_plan(_session(tmp_path, runtime), PlanOptions()).plan
    return {str(c.address): (c.action.value, c.reason.name) for c in plan.pending}


def test_a_setup_cut_short_leaves_a_tainted_record_and_the_next_plan_replaces_it(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    runtime.fail("exec")  # the runtime itself fails mid-setup (not a step exiting non-zero)
    assert _apply(tmp_path, runtime) == ["sandbox.web"]
    record = _session(tmp_path, runtime).store.snapshot("steps").records[WEB]
    assert record.tainted
    assert record.outputs["setup"] == "pending"
    assert "steps-web" in runtime.containers  # the container exists, labelled as ours
    assert _pending(tmp_path, runtime) == {"sandbox.web": (Action.REPLACE.value, "TAINTED")}
    assert _apply(tmp_path, runtime) == []
    record = _session(tmp_path, runtime).store.snapshot("steps").records[WEB]
    assert (record.status, record.outputs["setup"]) == ("ok", "done")
    assert _pending(tmp_path, runtime) == {}


def test_setup_runs_again_after_the_replacement_of_a_tainted_sandbox(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    runtime.fail("exec")
    _apply(tmp_path, runtime)
    execs_before = runtime.methods().count("exec")
    _apply(tmp_path, runtime)
    assert runtime.methods().count("exec") == execs_before + 1  # the one setup step, once


def test_a_sandbox_without_setup_is_recorded_only_once_created(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    runtime.fail("create_container", when=lambda args: args[0].name == "steps-solo")
    assert _apply(tmp_path, runtime) == ["sandbox.solo"]
    records = _session(tmp_path, runtime).store.snapshot("steps").records
    assert Address(ResourceKind.SANDBOX, "solo") not in records
    assert records[WEB].status == "ok"
    assert _pending(tmp_path, runtime) == {"sandbox.solo": (Action.CREATE.value, "NEW")}


def test_a_failing_setup_step_is_tainted_with_its_exit_code(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    runtime.exec_handler = lambda call: 7
    assert _apply(tmp_path, runtime) == ["sandbox.web"]
    record = _session(tmp_path, runtime).store.snapshot("steps").records[WEB]
    assert (record.status, record.outputs["setup"]) == ("tainted", "failed")
    assert Reason.TAINTED.value.startswith("tainted")


SNAPSHOT_SPEC = f"""
version: 1
name: seeds
sandboxes:
  builder:
    image: {IMAGE}
    workspace: {{from: ./src}}
  worker:
    image: {IMAGE}
    workspace: {{snapshot: deps}}
snapshots:
  deps: {{sandbox: builder}}
"""
WORKER = Address(ResourceKind.SANDBOX, "worker")
BUILDER = Address(ResourceKind.SANDBOX, "builder")


def _apply_with(tmp_path: Path, runtime: FakeRuntime, options: PlanOptions) -> None:
    session = _session(tmp_path, runtime)
    result = run_apply(session, make_plan(session, options), parallelism=4,
                       hooks=NullApplyHooks())
    assert result.ok, [o.error for o in result.failed]


def _applied_snapshot_project(tmp_path: Path, runtime: FakeRuntime) -> None:
    """SNAPSHOT_SPEC applied: builder seeded with src/v.txt ("one"), deps captured, worker
    restored from it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "v.txt").write_text("one\n")
    (tmp_path / "sandboxes.yaml").write_text(SNAPSHOT_SPEC)
    _apply_with(tmp_path, runtime, PlanOptions())


def test_replace_with_data_loss_reseeds_a_restored_workspace_and_plain_replace_keeps_it(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    _applied_snapshot_project(tmp_path, runtime)
    home = tmp_path / "home" / "projects" / "seeds" / "sandboxes"
    worker_file = home / "worker" / "workspace" / "v.txt"
    assert worker_file.read_text() == "one\n"
    records = _session(tmp_path, runtime).store.snapshot("seeds").records
    snap = records[Address(ResourceKind.SNAPSHOT, "deps")].outputs
    assert snap["source"] == "sandbox.builder"
    assert snap["source_config_hash"] == records[BUILDER].config_hash
    assert (snap["files"], snap["content_bytes"]) == (1, 4)

    (home / "builder" / "workspace" / "v.txt").write_text("two\n")  # work done in the builder
    _apply_with(tmp_path, runtime, PlanOptions(replace=frozenset({BUILDER})))  # retakes deps
    plan = make_plan(_session(tmp_path, runtime), PlanOptions()).plan
    worker = next(c for c in plan.changes if c.address == WORKER)
    assert any(n.startswith("outdated: snapshot.deps was retaken") for n in worker.notes)

    _apply_with(tmp_path, runtime, PlanOptions(replace=frozenset({WORKER})))
    assert worker_file.read_text() == "one\n"  # replaced container, workspace kept
    plan = make_plan(_session(tmp_path, runtime), PlanOptions()).plan
    worker = next(c for c in plan.changes if c.address == WORKER)
    assert any(n.startswith("outdated:") for n in worker.notes)  # still says so

    reseed = PlanOptions(replace=frozenset({WORKER}), allow_data_loss=True)
    change = next(c for c in make_plan(_session(tmp_path, runtime), reseed).plan.changes
                  if c.address == WORKER)
    assert (change.action, change.holds_data) == (Action.REPLACE, True)
    _apply_with(tmp_path, runtime, reseed)
    assert worker_file.read_text() == "two\n"
    plan = make_plan(_session(tmp_path, runtime), PlanOptions()).plan
    assert plan.pending == ()
    worker = next(c for c in plan.changes if c.address == WORKER)
    assert not worker.notes


def test_a_dropped_volume_is_removed_after_the_sandbox_that_mounted_it(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    mounted = f"""
version: 1
name: vols
volumes:
  cache: {{}}
sandboxes:
  web:
    image: {IMAGE}
    volumes: ["cache:/cache"]
"""
    (tmp_path / "sandboxes.yaml").write_text(mounted)
    _apply_with(tmp_path, runtime, PlanOptions())
    (tmp_path / "sandboxes.yaml").write_text(mounted.replace(
        "volumes:\n  cache: {}\n", "").replace('    volumes: ["cache:/cache"]\n', ""))
    _apply_with(tmp_path, runtime, PlanOptions(allow_data_loss=True))  # the fake refuses
    # `volume rm` of a volume a container still uses, as podman does
    assert "vols-cache" not in runtime.volumes
    assert runtime.containers["vols-web"].request.mounts[1:] == ()


def test_after_apply_pull_brings_a_newer_image_the_sandboxes_on_it_are_replaced(
    tmp_path: Path,
) -> None:
    from asbx.runtime.base import Capabilities

    runtime = FakeRuntime(capabilities=Capabilities(container_image_ids=True))
    runtime.publish(IMAGE)
    (tmp_path / "sandboxes.yaml").write_text(SPEC)
    _apply_with(tmp_path, runtime, PlanOptions())
    old_id = runtime.containers["steps-web"].image_id
    assert _pending(tmp_path, runtime) == {}

    runtime.publish(IMAGE)  # the tag moved in the registry: nothing changes until --pull
    assert _pending(tmp_path, runtime) == {}
    _apply_with(tmp_path, runtime, PlanOptions(pull=True))
    plan = make_plan(_session(tmp_path, runtime), PlanOptions()).plan
    web = next(c for c in plan.changes if c.address == WEB)
    assert (web.action, web.reason) == (Action.REPLACE, Reason.DEPENDENCY_REPLACED)
    assert any("runs an older image than image." in n for n in web.notes)
    assert set(_pending(tmp_path, runtime)) == {"sandbox.web", "sandbox.solo"}
    _apply_with(tmp_path, runtime, PlanOptions())
    assert runtime.containers["steps-web"].image_id != old_id
    assert _pending(tmp_path, runtime) == {}

    unchanged = PlanOptions(pull=True)  # pulling an unmoved tag again replaces nothing
    _apply_with(tmp_path, runtime, unchanged)
    assert _pending(tmp_path, runtime) == {}


def test_a_snapshot_dropped_from_the_spec_is_kept_unless_data_loss_is_allowed(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    from asbx.apply.applier import check_applicable
    from asbx.errors import PlanError

    _applied_snapshot_project(tmp_path, runtime)
    archives = tmp_path / "home" / "snapshots" / "sha256"
    assert len(list(archives.glob("*.tar.zst"))) == 1
    (tmp_path / "sandboxes.yaml").write_text(SNAPSHOT_SPEC.replace(
        "    workspace: {snapshot: deps}\n", "").replace("snapshots:\n  deps: {sandbox: builder}\n",
                                                         ""))
    planned = make_plan(_session(tmp_path, runtime), PlanOptions())
    drop = next(c for c in planned.plan.changes if str(c.address) == "snapshot.deps")
    assert (drop.action, drop.holds_data) == (Action.DELETE, True)
    with pytest.raises(PlanError) as refused:
        check_applicable(planned.plan)
    assert refused.value.problems[0].startswith("refusing to destroy snapshot.deps: it holds data")
    assert refused.value.hint == "re-run with --allow-data-loss"
    assert len(list(archives.glob("*.tar.zst"))) == 1
    _apply_with(tmp_path, runtime, PlanOptions(allow_data_loss=True))
    assert list(archives.glob("*.tar.zst")) == []
    assert _pending(tmp_path, runtime) == {}


@pytest.mark.parametrize("same_hash", [True, False])
def test_a_container_that_took_the_name_after_the_plan_is_adopted_or_replaced(
    tmp_path: Path, runtime: FakeRuntime, same_hash: bool
) -> None:
    """A killed apply's `podman run` can finish after the next apply observed the runtime."""
    import dataclasses

    from asbx.runtime.base import LABEL_HASH

    wanted: list[Any] = []
    runtime.fail("create_container",
                 when=lambda args: args[0].name == "steps-web" and not wanted.append(args[0]))
    assert _apply(tmp_path, runtime) == ["sandbox.web"]  # the killed apply's request, kept

    request = wanted[0]
    if not same_hash:
        request = dataclasses.replace(request, labels={**request.labels, LABEL_HASH: "sha256:old"})
    late: list[str] = []

    def finish_late(args: tuple[Any, ...]) -> bool:
        """That `podman run` finishes just before this apply creates the container."""
        if not late and args[0].name == "steps-web":
            late.append("")
            late[0] = runtime.create_container(request)
        return False

    runtime.fail("create_container", times=99, when=finish_late)
    assert _apply(tmp_path, runtime) == []
    container = runtime.containers["steps-web"]
    assert (container.id == late[0]) is same_hash
    assert container.labels == dict(wanted[0].labels)
    assert container.state.value == "running"
    setups = [c for c in runtime.calls if c.method == "exec" and c.args[0] == "steps-web"]
    assert setups, "setup runs on an adopted container too"
    assert _pending(tmp_path, runtime) == {}


@pytest.mark.parametrize("from_listing", [True, False])
def test_a_local_image_is_recorded_from_the_plans_listing_where_that_says_enough(
        tmp_path: Path, from_listing: bool) -> None:
    """A present image not yet in state is recorded ("adopted"): from the images listing the
    plan already has where the runtime's listing carries what an inspect does (podman), with
    the same record; else with an inspect. Either way the next plan is a no-op."""
    from asbx.runtime.base import Capabilities

    fake = FakeRuntime(capabilities=Capabilities(listing_records_images=from_listing))
    fake.add_image(IMAGE, digest="sha256:" + "a" * 64)
    assert _apply(tmp_path, fake) == []
    assert fake.count("inspect_image") == (0 if from_listing else 1)
    record = StateStore(tmp_path / "home" / "state.db").snapshot("steps").records[
        Address(ResourceKind.IMAGE, "busybox-latest")]
    image = fake.inspect_image(IMAGE)
    assert image is not None
    assert dict(record.outputs) == {"ref": IMAGE, "image_id": image.id, "digest": image.digest,
                                    "built": False}
    assert _pending(tmp_path, fake) == {}


def test_leftover_egress_is_looked_for_after_apply_only_where_there_can_be_some(
        tmp_path: Path, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """No allowlist sandbox declared and none of the project's proxies or chains seen by the
    plan: the apply makes none, so the look after it (two iptables listings) is skipped; a
    leftover the plan saw is looked for (and removed) after the apply."""
    import dataclasses

    from asbx import workflow
    from asbx.plan.observed import Leftover

    looked: list[str] = []
    monkeypatch.setattr(workflow, "remove_egress_leftovers",
                        lambda session: looked.append(session.project) or 0)
    session = _session(tmp_path, runtime)
    planned = make_plan(session, PlanOptions())
    run_apply(session, planned, parallelism=4, hooks=NullApplyHooks())
    assert looked == []
    stale = Leftover("firewall chain", "old", "ASBX-0123456789AB", "not an allowlist sandbox")
    planned = make_plan(session, PlanOptions())
    planned = dataclasses.replace(
        planned, observed=dataclasses.replace(planned.observed, leftovers=(stale,)))
    run_apply(session, planned, parallelism=4, hooks=NullApplyHooks())
    assert looked == ["steps"]
