"""The reaper over a fake runtime and a real state store: actions, dry run, locks, bad projects."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.data.workspaces import workspace_path
from asbx.reap import (
    ACTIVE_SESSION_ENV,
    ReapEvent,
    ReapOptions,
    load_marks,
    mark_stopped,
    reap,
    summary,
)
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_HASH,
    LABEL_PROJECT,
    ContainerRequest,
    ContainerState,
    ExecResult,
)
from asbx.state.records import ResourceRecord
from asbx.state.store import StateStore, open_store
from tests.fakes.runtime import ExecCall, FakeRuntime

WEB = Address(ResourceKind.SANDBOX, "web")
NOW = time.time()


@dataclass
class World:
    home: Path
    store: StateStore
    runtime: FakeRuntime
    busy: set[str]

    def project(self, name: str, lifecycle: str | None, *, snapshot: bool = False) -> Path:
        """A project dir with a spec, a state record and a running container for `web`."""
        root = self.home.parent / name
        root.mkdir()
        text = "version: 1\nsandboxes:\n  web:\n    image: busybox\n"
        if lifecycle:
            text += f"    lifecycle: {lifecycle}\n"
        if snapshot:
            text += "snapshots:\n  deps: { sandbox: web }\n"
        spec = root / "sandboxes.yaml"
        spec.write_text(text)
        self.store.project(name, str(spec))
        self.store.put(name, ResourceRecord(WEB, "h1", 1, created_at=NOW - 3600))
        container = f"{name}-web"
        labels = {LABEL_PROJECT: name, LABEL_ADDRESS: str(WEB), LABEL_HASH: "h1"}
        self.runtime.create_container(ContainerRequest(container, "busybox", ("sleep",),
                                                       labels=labels))
        self.runtime.start_container(container)
        self.runtime.containers[container].started_at = datetime.fromtimestamp(NOW - 3600, UTC)
        workspace = workspace_path(self.home, name, "web")
        workspace.mkdir(parents=True)
        (workspace / "notes.txt").write_text("work in progress")
        return spec

    def state(self, name: str) -> ContainerState | None:
        found = self.runtime.containers.get(f"{name}-web")
        return found.state if found else None

    def reap(self, **kw: object) -> list[ReapEvent]:
        options = ReapOptions(**{"now": NOW, **kw})  # type: ignore[arg-type]
        return reap(self.store, self.runtime, self.home, options, lambda event: None)


@pytest.fixture
def world(tmp_path: Path) -> World:
    home = tmp_path / "home"
    busy: set[str] = set()

    def on_exec(call: ExecCall) -> ExecResult:
        marker = call.argv[-1] if call.argv[:2] == ("sh", "-c") else ""
        assert marker == f"{ACTIVE_SESSION_ENV}=", call.argv
        return ExecResult(0 if call.container.name in busy else 1)

    runtime = FakeRuntime(exec_handler=on_exec)
    runtime.add_image("busybox")
    return World(home, open_store(home), runtime, busy)


def outcomes(events: list[ReapEvent]) -> list[tuple[str, str, str]]:
    return [(e.project, e.subject, e.outcome) for e in events]


def test_an_idle_sandbox_is_stopped_and_marked(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    events = world.reap()
    assert outcomes(events) == [("alpha", "sandbox.web", "stopped")]
    assert world.state("alpha") is ContainerState.STOPPED
    assert WEB in load_marks(world.home, "alpha")
    assert world.store.journal_entries("alpha")[-1][1:5] == ("reap", "sandbox.web", "stop", "ok")
    assert outcomes(world.reap()) == []  # idempotent
    assert summary(events) == "reap: 1 stopped"


def test_recent_activity_keeps_it_running(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.store.touch("alpha", WEB, NOW - 30)
    container = world.runtime.containers["alpha-web"]
    container.started_at = None
    assert world.reap() == []
    assert world.state("alpha") is ContainerState.RUNNING


def test_a_running_exec_keeps_an_idle_sandbox_and_counts_as_activity(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.busy.add("alpha-web")
    assert outcomes(world.reap()) == [("alpha", "sandbox.web", "busy")]
    assert world.state("alpha") is ContainerState.RUNNING
    assert world.store.snapshot("alpha").activity[WEB] == NOW


def test_past_max_lifetime_with_opt_in_deletes_container_workspace_and_record(
    world: World,
) -> None:
    world.project("alpha", "{ max_lifetime: 1800, delete_workspace: true }")
    events = world.reap()
    assert outcomes(events) == [("alpha", "sandbox.web", "deleted")]
    assert world.state("alpha") is None
    assert not workspace_path(world.home, "alpha", "web").exists()
    assert WEB not in world.store.snapshot("alpha").records
    reaped = world.store.snapshot("alpha").reaped
    assert list(reaped) == [WEB]
    assert "max_lifetime" in reaped[WEB]


def test_a_reaped_sandbox_is_reaped_only_until_something_else_touches_it(world: World) -> None:
    world.project("alpha", "{ max_lifetime: 1800, delete_workspace: true }")
    world.reap()
    assert WEB in world.store.snapshot("alpha").reaped
    world.store.put("alpha", ResourceRecord(WEB, "h2", 1, created_at=NOW))  # apply re-created it
    world.store.journal("alpha", "apply", WEB, "create:create", "ok")
    assert world.store.snapshot("alpha").reaped == {}
    world.store.delete("alpha", WEB)  # then destroyed: it is not "reaped" any more
    world.store.journal("alpha", "apply", WEB, "delete:destroy", "ok")
    assert world.store.snapshot("alpha").reaped == {}


def test_past_max_lifetime_with_a_fresh_snapshot_deletes(world: World) -> None:
    world.project("alpha", "{ max_lifetime: 1800 }", snapshot=True)
    snap = Address(ResourceKind.SNAPSHOT, "deps")
    world.store.put("alpha", ResourceRecord(snap, "s", 1, outputs={"digest": "sha256:aa"}))
    assert outcomes(world.reap()) == [("alpha", "sandbox.web", "deleted")]


def test_past_max_lifetime_without_snapshot_is_stopped_and_data_kept(world: World) -> None:
    world.project("alpha", "{ max_lifetime: 1800 }")
    [event] = world.reap()
    assert event.outcome == "stopped"
    assert "delete_workspace: true" in event.detail
    assert world.state("alpha") is ContainerState.STOPPED
    assert (workspace_path(world.home, "alpha", "web") / "notes.txt").is_file()
    assert WEB in world.store.snapshot("alpha").records
    [again] = world.reap()
    assert (again.outcome, again.changed) == ("held", False)


def test_auto_delete_counts_from_when_asbx_stopped_it(world: World) -> None:
    world.project("alpha", "{ auto_delete: 600, delete_workspace: true }")
    world.runtime.stop_container("alpha-web")
    container = world.runtime.containers["alpha-web"].observed()
    mark_stopped(world.home, "alpha", WEB, container, at=NOW - 599)
    assert world.reap() == []
    assert outcomes(world.reap(now=NOW + 1)) == [("alpha", "sandbox.web", "deleted")]


def test_dry_run_changes_nothing(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.project("beta", "{ max_lifetime: 60, delete_workspace: true }")
    before = world.store.snapshot("beta")
    events = world.reap(dry_run=True)
    assert outcomes(events) == [("alpha", "sandbox.web", "would stop"),
                                ("beta", "sandbox.web", "would delete")]
    assert world.runtime.methods().count("stop_container") == 0
    assert world.runtime.methods().count("remove_container") == 0
    assert world.state("alpha") is world.state("beta") is ContainerState.RUNNING
    assert world.store.snapshot("beta").meta.serial == before.meta.serial
    assert world.store.journal_entries("alpha") == []
    assert not (world.home / "projects" / "alpha" / "lifecycle.json").exists()


def test_a_locked_project_is_skipped_and_the_others_reaped(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.project("beta", "{ idle_timeout: 60 }")
    world.store.acquire_lock("alpha", "apply")  # held by a live process (this one)
    events = world.reap(lock_timeout=0)
    assert outcomes(events) == [("alpha", "", "skipped"), ("beta", "sandbox.web", "stopped")]
    assert "locked" in events[0].detail
    assert world.state("alpha") is ContainerState.RUNNING


def test_missing_or_broken_specs_are_skipped_without_stopping_the_run(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }").unlink()
    world.project("beta", "{ idle_timeout: 60 }").write_text("version: 1\nsandboxes: [oops]\n")
    world.project("gamma", "{ idle_timeout: 60 }")
    events = world.reap()
    assert outcomes(events) == [("alpha", "", "skipped"), ("beta", "", "skipped"),
                                ("gamma", "sandbox.web", "stopped")]
    assert "is gone" in events[0].detail
    assert "does not load" in events[1].detail


def test_a_failing_runtime_call_is_reported_per_sandbox(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.runtime.fail("stop_container")
    events = world.reap()
    assert outcomes(events) == [("alpha", "sandbox.web", "failed")]
    assert summary(events) == "reap: 1 failed"


def test_a_runtime_that_is_down_fails_one_project_only(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.runtime.fail("list_containers")
    events = world.reap()
    assert outcomes(events) == [("alpha", "", "failed")]


def test_one_listing_per_project_and_none_without_lifecycle(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 9999 }")
    world.project("plain", None)
    world.runtime.calls.clear()
    world.reap()
    assert world.runtime.methods() == ["list_containers"]


def test_only_the_chosen_project(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.project("beta", "{ idle_timeout: 60 }")
    events = world.reap(projects=("beta", "nope"))
    assert outcomes(events) == [("nope", "", "failed"), ("beta", "sandbox.web", "stopped")]
    assert world.state("alpha") is ContainerState.RUNNING


def test_stop_marks_file_is_plain_json(world: World) -> None:
    world.project("alpha", "{ idle_timeout: 60 }")
    world.reap()
    data = json.loads((world.home / "projects" / "alpha" / "lifecycle.json").read_text())
    assert set(data["stopped"]) == {"sandbox.web"}
