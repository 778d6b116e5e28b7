"""Table-driven planner scenarios: (spec, state, observed) -> actions and reasons."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.plan.hashing import HASH_VERSION
from asbx.plan.model import Action, PlanOptions, Reason
from asbx.render.plan_json import plan_to_json
from asbx.render.plan_text import render_plan_text
from asbx.runtime.base import LABEL_HASH, LABEL_PRIVILEGES, Capabilities, ContainerState
from asbx.state.records import StateSnapshot
from tests.unit.plan.world import EMPTY_STATE, World, actions, spec

BASE = """
version: 1
images:
  base:
    ref: localhost/asbx/busybox:latest
volumes:
  cache: {}
sandboxes:
  web:
    image: base
    memory: 1G
    volumes: ["cache:/cache"]
  worker:
    image: base
    depends_on: [web]
snapshots:
  snap:
    sandbox: web
"""


def converged(world_of, text: str = BASE) -> World:  # type: ignore[no-untyped-def]
    world = world_of(text)
    world.apply(world.plan())
    assert world.plan().pending == ()
    return world


def test_first_plan_creates_everything_in_dependency_order(world_of) -> None:  # type: ignore[no-untyped-def]
    result = world_of(BASE).plan()
    assert actions(result) == {
        "image.base": ("create", "new"),
        "volume.cache": ("create", "new"),
        "sandbox.web": ("create", "new"),
        "sandbox.worker": ("create", "new"),
        "snapshot.snap": ("create", "new"),
    }
    order = [str(c.address) for c in result.changes]
    assert order.index("image.base") < order.index("sandbox.web") < order.index("snapshot.snap")
    assert order.index("sandbox.web") < order.index("sandbox.worker")
    assert result.summary() == "Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy."


def test_nothing_changed_is_empty(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    assert world.plan().pending == ()
    assert world.plan().summary() == "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy."


def test_memory_change_forces_replacement_with_field_diff(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(BASE.replace("memory: 1G", "memory: 2G"), tmp_path)
    result = world.plan()
    assert actions(result)["sandbox.web"] == ("replace", "spec_changed")
    change = next(c for c in result.changes if str(c.address) == "sandbox.web")
    assert [(f.path, f.before, f.after, f.forces_replacement) for f in change.fields] == [
        ("memory", "1G", "2G", True)
    ]
    # the snapshot of web is recaptured because its source is recreated; worker is untouched
    assert actions(result)["snapshot.snap"] == ("create", "dependency_replaced")
    assert "sandbox.worker" not in actions(result)


def test_each_sandbox_field_replaces_or_updates(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "cpus: 2": "replace",
        "command: [sleep, '100']": "replace",
        "env: {A: b}": "replace",
        "workdir: /srv": "replace",
        "user: '1000'": "replace",
        "network: open": "replace",
        "labels: {team: x}": "replace",
        "setup: [echo hi]": "replace",
        "cap_add: [NET_RAW]": "replace",
        "lifecycle: {idle_timeout: 30m}": "update",
        "workspace: {from: .}": "update",
    }
    for line, expected in cases.items():
        world = converged(world_of)
        world.loaded = spec(
            BASE.replace("    memory: 1G\n", f"    memory: 1G\n    {line}\n"), tmp_path
        )
        result = world.plan()
        assert actions(result)["sandbox.web"][0] == expected, line
        if expected == "update":
            change = next(c for c in result.changes if str(c.address) == "sandbox.web")
            assert change.record_only
            assert change.fields


def test_setup_and_command_changes_show_the_lines_as_written(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = "    setup:\n      - echo one\n      - [touch, /a]\n    command: sleep 100\n"
    after = "    setup:\n      - echo one\n      - [touch, /b]\n      - make test\n" \
            "    command: [sleep, '200']\n"
    world = converged(world_of, BASE.replace("    memory: 1G\n", "    memory: 1G\n" + before))
    world.loaded = spec(BASE.replace("    memory: 1G\n", "    memory: 1G\n" + after), tmp_path)
    web = next(c for c in world.plan().changes if str(c.address) == "sandbox.web")
    assert [(f.path, f.before, f.after) for f in web.fields] == [
        ("command", "sleep 100", ["sleep", "200"]),
        ("setup[1]", ["touch", "/a"], ["touch", "/b"]),
        ("setup[2]", None, "make test"),
    ]
    text = render_plan_text(plan_to_json(world.plan()), color=False)
    assert '      ~ setup[2]: (none) -> "make test"   # forces replacement' in text
    assert '/bin/sh' not in text


# (edit of BASE, with image.other declared too) -> every change it plans: what each field of
# each kind does, and which changes would lose data
FIELD_EDITS = {
    "sandbox image": (
        ("    image: base\n    memory: 1G", "    image: other\n    memory: 1G"),
        {"sandbox.web": ("replace", "spec_changed"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "sandbox mount target": (
        ('volumes: ["cache:/cache"]', 'volumes: ["cache:/elsewhere"]'),
        {"sandbox.web": ("replace", "spec_changed"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "sandbox mount read-only": (
        ('volumes: ["cache:/cache"]', 'volumes: ["cache:/cache:ro"]'),
        {"sandbox.web": ("replace", "spec_changed"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "sandbox ports": (
        ("    memory: 1G\n",
         "    memory: 1G\n    network: open\n    ports: ['127.0.0.1:8080:80']\n"),
        {"sandbox.web": ("replace", "spec_changed"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "sandbox depends_on": (
        ("    depends_on: [web]\n", ""),
        {"sandbox.worker": ("update", "spec_changed")}),
    "image ref": (
        ("ref: localhost/asbx/busybox:latest", "ref: localhost/asbx/busybox:1"),
        {"image.base": ("create", "spec_changed"),
         "sandbox.web": ("replace", "dependency_replaced"),
         "sandbox.worker": ("replace", "dependency_replaced"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "image platform": (
        ("    ref: localhost/asbx/busybox:latest\n",
         "    ref: localhost/asbx/busybox:latest\n    platform: linux/arm64\n"),
        {"image.base": ("create", "spec_changed"),
         "sandbox.web": ("replace", "dependency_replaced"),
         "sandbox.worker": ("replace", "dependency_replaced"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "volume labels": (
        ("  cache: {}\n", "  cache: {labels: {a: b}}\n"),
        {"volume.cache": ("replace", "spec_changed"),
         "sandbox.web": ("replace", "dependency_replaced"),
         "snapshot.snap": ("create", "dependency_replaced")}),
    "snapshot labels": (
        ("    sandbox: web\n", "    sandbox: web\n    labels: {a: b}\n"),
        {"snapshot.snap": ("create", "spec_changed")}),
    "snapshot source": (
        ("  snap:\n    sandbox: web\n", "  snap:\n    sandbox: worker\n"),
        {"snapshot.snap": ("create", "spec_changed")}),
}
WITH_OTHER = BASE.replace("images:\n", "images:\n  other:\n    ref: localhost/other:1\n")


@pytest.mark.parametrize("edit", sorted(FIELD_EDITS))
def test_each_field_of_each_kind(world_of, tmp_path: Path, edit: str) -> None:  # type: ignore[no-untyped-def]
    (old, new), expected = FIELD_EDITS[edit]
    world = converged(world_of, WITH_OTHER)
    assert old in WITH_OTHER
    world.loaded = spec(WITH_OTHER.replace(old, new), tmp_path)
    result = world.plan()
    assert actions(result) == expected
    holds = {str(c.address) for c in result.pending if c.holds_data}
    assert holds == ({"volume.cache"} if edit == "volume labels" else set())


def test_env_values_are_sensitive_in_diffs(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    env: {TOKEN: s3cr3t-one}\n")
    world = converged(world_of, text)
    world.loaded = spec(text.replace("TOKEN: s3cr3t-one", "TOKEN: s3cr3t-two"), tmp_path)
    change = next(c for c in world.plan().changes if str(c.address) == "sandbox.web")
    assert change.action is Action.REPLACE
    assert [(f.path, f.sensitive) for f in change.fields] == [("env.TOKEN", True)]
    assert "s3cr3t" not in repr(world.state.records)
    assert "s3cr3t" not in repr(change)


def test_image_change_cascades_to_sandboxes(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(BASE.replace("busybox:latest", "busybox:1.36"), tmp_path)
    result = actions(world.plan())
    assert result["image.base"] == ("create", "spec_changed")
    assert result["sandbox.web"] == ("replace", "dependency_replaced")
    assert result["sandbox.worker"] == ("replace", "dependency_replaced")


def test_build_context_digest_change_cascades(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    ref: localhost/asbx/busybox:latest", "    build: {context: ctx}")
    world = world_of(text, files=["ctx/Dockerfile"])
    world.apply(world.plan(context_digests={"base": "sha256:aaa"}))
    assert world.plan(context_digests={"base": "sha256:aaa"}).pending == ()
    result = world.plan(
        context_digests={"base": "sha256:bbb"},
        context_details={"base": "context changed: 1 file changed (app.py)"},
    )
    change = next(c for c in result.changes if str(c.address) == "image.base")
    assert (change.action, change.verb, change.detail) == (
        Action.CREATE,
        "build",
        "context changed: 1 file changed (app.py)",
    )
    assert actions(result)["sandbox.web"] == ("replace", "dependency_replaced")


def test_resource_added_and_removed(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(
        BASE.replace(
            "  worker:\n    image: base\n    depends_on: [web]\n", "  extra:\n    image: base\n"
        ),
        tmp_path,
    )
    result = world.plan()
    assert actions(result)["sandbox.extra"] == ("create", "new")
    assert actions(result)["sandbox.worker"] == ("delete", "not_in_spec")
    order = [str(c.address) for c in result.changes if c.action.mutates]
    assert order[0] == "sandbox.worker", "deletes run before creates"


def test_container_deleted_out_of_band_is_recreated(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    del world.containers[Address.parse("sandbox.worker")]
    assert actions(world.plan()) == {"sandbox.worker": ("create", "missing")}


def test_stopped_container_is_started(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    address = Address.parse("sandbox.worker")
    world.containers[address] = dataclasses.replace(
        world.containers[address], state=ContainerState.STOPPED
    )
    result = world.plan()
    assert actions(result) == {"sandbox.worker": ("start", "stopped")}
    assert result.changes[-1].action.symbol == ">" or any(
        c.action.symbol == ">" for c in result.changes
    )


def test_labels_edited_out_of_band_mean_drift(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    address = Address.parse("sandbox.web")
    live = world.containers[address]
    world.containers[address] = dataclasses.replace(
        live, labels={**live.labels, LABEL_HASH: "sha256:someone-else"}
    )
    assert actions(world.plan())["sandbox.web"] == ("replace", "drifted")


def test_cap_add_change_is_shown_and_forces_replacement(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    edited = BASE.replace("    memory: 1G\n", "    memory: 1G\n    cap_add: [cap_net_raw]\n")
    world.loaded = spec(edited, tmp_path)
    result = world.plan()
    change = next(c for c in result.changes if str(c.address) == "sandbox.web")
    assert (change.action, change.reason) == (Action.REPLACE, Reason.SPEC_CHANGED)
    assert [(f.path, f.before, f.after, f.forces_replacement) for f in change.fields] == [
        ("cap_add[0]", None, "NET_RAW", True)
    ]


def test_an_empty_cap_add_changes_nothing(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(BASE.replace("    memory: 1G\n", "    memory: 1G\n    cap_add: []\n"),
                        tmp_path)
    assert world.plan().pending == ()


def test_a_container_made_before_least_privilege_is_replaced_with_the_reason(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    address = Address.parse("sandbox.web")
    live = world.containers[address]
    world.containers[address] = dataclasses.replace(
        live, labels={k: v for k, v in live.labels.items() if k != LABEL_PRIVILEGES})
    result = world.plan()
    assert actions(result)["sandbox.web"] == ("replace", "privileges")
    change = next(c for c in result.changes if c.address == address)
    assert any("NET_RAW" in note and "/workspace is kept" in note for note in change.notes)
    assert not change.holds_data
    world.apply(result)
    assert world.plan().pending == ()
    # Apple's sandboxes are VMs that asbx gives no capability set: nothing to replace there
    world.containers[address] = dataclasses.replace(live, labels={
        k: v for k, v in live.labels.items() if k != LABEL_PRIVILEGES})
    apple = world.plan(caps=Capabilities(sets_capabilities=False))
    assert "sandbox.web" not in actions(apple)


def test_orphans_are_warned_and_removed_only_when_asked(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    stray = Address.parse("sandbox.stray")
    world.containers[stray] = dataclasses.replace(
        world.containers[Address.parse("sandbox.web")],
        name="proj-stray",
        labels={"dev.asbx.project": "proj", "dev.asbx.address": "sandbox.stray"},
    )
    plain = world.plan()
    assert "sandbox.stray" not in actions(plain)
    assert any("sandbox.stray" in w and "--remove-orphans" in w for w in plain.warnings)
    removing = world.plan(PlanOptions(remove_orphans=True))
    assert actions(removing)["sandbox.stray"] == ("delete", "orphan")


def test_state_lost_adopts_instead_of_recreating(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.state = StateSnapshot(EMPTY_STATE.meta, {})
    world.archives.clear()
    result = world.plan()
    acts = actions(result)
    assert acts["sandbox.web"] == ("update", "adopted")
    assert acts["volume.cache"] == ("update", "adopted")
    assert acts["image.base"] == ("create", "new") or acts["image.base"][1] == "adopted"
    assert all(
        not c.runtime_change
        for c in result.changes
        if c.address.kind.value in ("sandbox", "volume")
    )
    world.apply(result)
    assert all(c.reason is not Reason.ADOPTED for c in world.plan().changes)


def test_hash_version_upgrade_refreshes_records_without_replacing(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    old = {
        a: dataclasses.replace(r, config_hash="sha256:old-scheme", hash_version=HASH_VERSION - 1)
        for a, r in world.state.records.items()
    }
    for address, container in list(world.containers.items()):
        world.containers[address] = dataclasses.replace(
            container, labels={**container.labels, LABEL_HASH: "sha256:old-scheme"}
        )
    world.state = StateSnapshot(world.state.meta, old)
    result = world.plan()
    assert not result.has_runtime_changes
    assert result.pending == ()
    assert result.state_only == len(old)


def test_volume_changes_and_deletes_hold_data(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(BASE.replace("  cache: {}", "  cache: {labels: {a: b}}"), tmp_path)
    result = world.plan()
    volume = next(c for c in result.changes if str(c.address) == "volume.cache")
    assert (volume.action, volume.holds_data) == (Action.REPLACE, True)
    assert actions(result)["sandbox.web"] == ("replace", "dependency_replaced")
    assert [str(c.address) for c in result.data_loss()] == ["volume.cache"]


def test_destroy_keeps_volumes_and_snapshots_unless_asked(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    plain = actions(world.plan(PlanOptions(destroy=True)))
    assert set(plain) == {"sandbox.web", "sandbox.worker", "image.base"}
    full = actions(
        world.plan(PlanOptions(destroy=True, destroy_volumes=True, destroy_snapshots=True))
    )
    assert {"volume.cache", "snapshot.snap"} <= set(full)
    order = [
        str(c.address) for c in world.plan(PlanOptions(destroy=True)).changes if c.action.mutates
    ]
    assert order.index("sandbox.worker") < order.index("sandbox.web")


def test_destroy_says_which_volumes_and_snapshots_it_keeps_and_the_flag(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    plain = world.plan(PlanOptions(destroy=True))
    notes = {str(c.address): c.notes for c in plain.changes if not c.action.mutates and c.notes}
    assert notes == {
        "volume.cache": ("kept with its data (destroy --volumes deletes it)",),
        "snapshot.snap": ("kept with its data (destroy --snapshots deletes it)",),
    }
    web = next(c for c in plain.changes if str(c.address) == "sandbox.web")
    assert web.notes == ("its workspace is kept (delete it with --workspaces)",)
    text = render_plan_text(plan_to_json(plain), color=False)
    assert "note: volume.cache: kept with its data (destroy --volumes deletes it)" in text
    full = world.plan(PlanOptions(destroy=True, destroy_volumes=True, destroy_snapshots=True))
    assert not any("kept" in note for c in full.changes for note in c.notes
                   if c.address.kind is not ResourceKind.SANDBOX)


def test_target_limits_to_dependencies(world_of) -> None:  # type: ignore[no-untyped-def]
    result = world_of(BASE).plan(PlanOptions(targets=frozenset({Address.parse("sandbox.web")})))
    assert set(actions(result)) == {"image.base", "volume.cache", "sandbox.web"}


def test_destroy_target_takes_what_depends_on_it_and_keeps_data_unless_asked(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    web = frozenset({Address.parse("sandbox.web")})
    assert actions(world.plan(PlanOptions(destroy=True, targets=web))) == {
        "sandbox.web": ("delete", "destroy"),
        "sandbox.worker": ("delete", "destroy"),  # depends_on web
    }  # snapshot.snap (captured from web) and the volume are data: kept
    cache = frozenset({Address.parse("volume.cache")})
    assert actions(world.plan(PlanOptions(destroy=True, destroy_volumes=True, targets=cache))) == {
        "sandbox.web": ("delete", "destroy"),  # mounts it
        "sandbox.worker": ("delete", "destroy"),
        "volume.cache": ("delete", "destroy"),
    }


def test_replace_request_and_taint(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    web = Address.parse("sandbox.web")
    forced = world.plan(PlanOptions(replace=frozenset({web})))
    assert actions(forced)["sandbox.web"] == ("replace", "requested")
    world.state = StateSnapshot(
        world.state.meta,
        {
            **world.state.records,
            web: dataclasses.replace(world.state.records[web], status="tainted"),
        },
    )
    assert actions(world.plan())["sandbox.web"] == ("replace", "tainted")


def test_a_sandbox_deleted_by_reap_is_created_again_with_that_reason(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    web = Address.parse("sandbox.web")
    records = {a: r for a, r in world.state.records.items() if a != web}
    world.containers.pop(web)
    world.state = StateSnapshot(world.state.meta, records, reaped={web: "past max_lifetime 1h"})
    change = next(c for c in world.plan().changes if c.address == web)
    assert (change.action, change.reason) == (Action.CREATE, Reason.REAPED)
    assert change.notes == ("deleted by asbx reap: past max_lifetime 1h",)


def test_expired_sandbox_is_replaced(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    lifecycle: {max_lifetime: 1h}\n")
    world = converged(world_of, text)
    world.now += 3601
    assert actions(world.plan())["sandbox.web"] == ("replace", "expired")


def test_snapshot_retaken_marks_restored_sandboxes_outdated(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE + "  clone:\n    image: base\n    workspace: {snapshot: snap}\n"
    text = (
        text.replace("snapshots:\n  snap:\n    sandbox: web\n", "")
        + "snapshots:\n  snap:\n    sandbox: web\n"
    )
    world = converged(world_of, text)
    world.loaded = spec(text.replace("memory: 1G", "memory: 2G"), tmp_path)
    result = world.plan()
    clone = next(c for c in result.changes if str(c.address) == "sandbox.clone")
    assert clone.action is Action.NOOP
    assert any("outdated" in n for n in clone.notes)


def test_replace_with_data_loss_gives_one_workspace_note(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("snapshots:\n  snap:\n    sandbox: web\n", "") + (
        "  clone:\n    image: base\n    workspace: {snapshot: snap}\n"
        "snapshots:\n  snap:\n    sandbox: web\n")
    world = converged(world_of, text)
    world.loaded = spec(text.replace("memory: 1G", "memory: 2G"), tmp_path)
    clone = Address.parse("sandbox.clone")

    def notes(**options: object) -> tuple[str, ...]:
        plan = world.plan(PlanOptions(replace=frozenset({clone}), **options))  # type: ignore[arg-type]
        return next(c for c in plan.changes if c.address == clone).notes

    assert notes(allow_data_loss=True) == (
        "its workspace is removed and seeded again from snapshot.snap (--allow-data-loss)",)
    kept = notes()
    assert len(kept) == 1
    assert "the workspace keeps its data" in kept[0]


def test_a_seeding_plan_says_which_secret_files_stay_out(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    workspace: {from: .}\n")
    skipped = {"web": (".env", "keys/id_rsa")}
    first = world_of(text).plan(seed_secrets=skipped)
    web = next(c for c in first.changes if str(c.address) == "sandbox.web")
    assert web.notes == ("left out 2 secret files of the workspace source: .env, keys/id_rsa "
                         "(list them under workspace.include to copy them)",)
    world = converged(world_of, text)
    kept = next(c for c in world.plan(seed_secrets=skipped).changes
                if str(c.address) == "sandbox.web")
    assert kept.notes == ()  # nothing is seeded: nothing to say


def test_capabilities_become_plan_errors(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace(
        "  worker:\n    image: base\n",
        '  worker:\n    image: base\n    volumes: ["cache:/c"]\n    cpus: 0.5\n    memory: 100M\n',
    )
    apple = Capabilities(
        fractional_cpus=False,
        min_memory=200 << 20,
        shared_volumes=False,
        internal_networks_isolate=False,
    )
    result = world_of(text).plan(caps=apple, runtime="apple")
    assert (
        "volume.cache is mounted by sandbox.web, sandbox.worker, but apple attaches a named "
        'volume to one container at a time; mount a host directory instead (volumes: '
        '["./cache:/cache"]) or give the volume to one sandbox'
    ) in result.errors
    assert any("memory must be at least 200M" in e for e in result.errors)
    assert any("rounded up to 1" in w for w in result.warnings)


def test_cap_add_is_a_warning_where_the_runtime_sets_no_capabilities(world_of) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    cap_add: [SYS_PTRACE]\n")
    result = world_of(text).plan(caps=Capabilities(sets_capabilities=False), runtime="apple")
    assert any(w.startswith("sandbox.web: cap_add is ignored on apple") for w in result.warnings)
    assert world_of(text).plan().warnings == ()


def test_allowlist_rejected_until_supported(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    network: {allow: [pypi.org]}\n")
    result = world_of(text).plan(allowlist_supported=False)
    assert any("allowlists cannot be enforced" in e for e in result.errors)


def _import_into(world: World, name: str, digest: str) -> None:
    """What `asbx snapshot import` leaves: the snapshot's record, marked imported."""
    from asbx.state.records import SnapshotOutputs

    address = Address.parse(f"snapshot.{name}")
    record = world.state.records[address]
    outputs = SnapshotOutputs(digest, source="import shared.tar.zst", origin="import")
    world.archives.add(digest)
    records = {**world.state.records, address: dataclasses.replace(
        record, outputs=outputs.to_outputs(), config_hash="sha256:stale")}
    world.state = StateSnapshot(world.state.meta, records)


def test_an_imported_snapshot_is_kept_until_replace(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    _import_into(world, "snap", "sha256:" + "ab" * 32)
    result = world.plan()
    assert result.pending == ()
    snap = next(c for c in result.changes if str(c.address) == "snapshot.snap")
    assert (snap.action, snap.reason) == (Action.NOOP, Reason.IMPORTED)
    assert snap.notes == ("imported from shared.tar.zst; kept until `--replace snapshot.snap` "
                          "retakes it",)
    world.loaded = spec(BASE.replace("memory: 1G", "memory: 2G"), tmp_path)
    assert "snapshot.snap" not in actions(world.plan()), "its sandbox's replacement keeps it"
    retake = world.plan(PlanOptions(replace=frozenset({Address.parse("snapshot.snap")})))
    assert actions(retake)["snapshot.snap"] == ("create", "requested")


ARCHIVE = """
version: 1
sandboxes:
  web:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: snap}
snapshots:
  snap: {archive: ./snap.tar.zst}
"""


def test_a_declared_archive_is_imported_when_its_digest_changes(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "snap.tar.zst").write_bytes(b"x")
    world = world_of(ARCHIVE)
    first = world.plan(archive_digests={"snap": "sha256:" + "1" * 64})
    change = next(c for c in first.changes if str(c.address) == "snapshot.snap")
    assert (change.action, change.verb, change.detail) == (Action.CREATE, "import",
                                                            "from ./snap.tar.zst")
    world.apply(first)
    _import_into(world, "snap", "sha256:" + "1" * 64)
    records = dict(world.state.records)
    address = Address.parse("snapshot.snap")
    outputs = {**records[address].outputs, "source": "./snap.tar.zst"}
    records[address] = dataclasses.replace(records[address], outputs=outputs)
    world.state = StateSnapshot(world.state.meta, records)
    assert world.plan(archive_digests={"snap": "sha256:" + "1" * 64}).pending == ()
    again = world.plan(archive_digests={"snap": "sha256:" + "2" * 64})
    change = next(c for c in again.changes if str(c.address) == "snapshot.snap")
    assert (change.action, change.verb, change.detail) == (Action.CREATE, "import",
                                                            "./snap.tar.zst changed")


def test_allowlist_refused_when_the_host_cannot_enforce_it(world_of) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("    memory: 1G\n", "    memory: 1G\n    network: {allow: [pypi.org]}\n")
    result = world_of(text).plan(allowlist_blocker="asbx is not root")
    assert any(
        "allowlists cannot be enforced" in e and "(asbx is not root)" in e for e in result.errors
    ), result.errors


def test_networking_leftovers_are_warned_about_with_their_reason(world_of) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from asbx.plan.observed import Leftover

    world = world_of(BASE)
    left = (Leftover("egress proxy", "gone", "pid 7 on 10.89.0.1:4000", "its network is gone"),)
    observed = replace(world.observed(), leftovers=left)
    world.observed = lambda: observed  # type: ignore[method-assign]
    result = world.plan()
    assert (
        "orphaned allowlist networking (asbx's leftovers): egress proxy of sandbox.gone (pid 7 on "
        "10.89.0.1:4000): its network is gone; apply or destroy removes them"
    ) in result.warnings
