"""Planner after a lost state database: adoption by labels and host notes; leftover workspaces."""

from __future__ import annotations

from dataclasses import replace

from asbx.addresses import Address
from asbx.plan.model import PlanOptions
from asbx.plan.observed import Observed
from asbx.runtime.base import LABEL_PROJECT, LABEL_SALT, Capabilities, ObservedImage
from asbx.state.records import StateSnapshot
from tests.unit.plan.world import EMPTY_STATE, PROJECT, World, actions

SPEC = """
version: 1
images:
  app:
    build: { context: ., dockerfile: Dockerfile }
sandboxes:
  web:
    image: app
    setup: [echo hi]
  worker:
    image: app
snapshots:
  snap: { sandbox: web }
"""
WEB = Address.parse("sandbox.web")


def _lost(world: World, **observed: object) -> World:
    """The world after `rm state.db`, seeing `observed` extras (markers, workspaces)."""
    world.state = StateSnapshot(EMPTY_STATE.meta, {})
    base = world.observed
    world.observed = lambda: replace(base(), **observed)  # type: ignore[method-assign]
    return world


def _labelled_images(world: World) -> None:
    """Give the simulated built images the labels a real build puts on them."""
    record = world.state.records[Address.parse("image.app")]
    labels = {
        LABEL_PROJECT: PROJECT,
        "dev.asbx.address": "image.app",
        "dev.asbx.hash": record.config_hash,
    }
    world.images = [replace(i, labels=labels) for i in world.images]


def _applied(world_of) -> tuple[World, dict[str, tuple[str, str]]]:  # type: ignore[no-untyped-def]
    world = world_of(SPEC, files=["Dockerfile"])
    world.apply(world.plan())
    _labelled_images(world)
    digest = str(world.state.records[Address.parse("snapshot.snap")].outputs["digest"])
    snap_hash = world.state.records[Address.parse("snapshot.snap")].config_hash
    return world, {"snap": (digest, snap_hash)}


def test_everything_asbx_made_is_adopted(world_of) -> None:  # type: ignore[no-untyped-def]
    world, marks = _applied(world_of)
    container = world.containers[WEB].id
    result = _lost(world, setup_done={WEB: container}, snapshot_marks=marks).plan()
    assert actions(result) == {
        "image.app": ("update", "adopted"),
        "sandbox.web": ("update", "adopted"),
        "sandbox.worker": ("update", "adopted"),
        "snapshot.snap": ("update", "adopted"),
    }
    assert all(c.record_only for c in result.changes)


def test_a_built_image_of_another_hash_or_project_is_not_adopted(world_of) -> None:  # type: ignore[no-untyped-def]
    world, _ = _applied(world_of)
    world.images = [
        replace(i, labels={**i.labels, LABEL_PROJECT: "someone-else"}) for i in world.images
    ]
    assert actions(_lost(world).plan())["image.app"] == ("create", "new")


def test_setup_without_a_marker_for_this_container_is_tainted(world_of) -> None:  # type: ignore[no-untyped-def]
    world, marks = _applied(world_of)
    for done in ({}, {WEB: "id-of-an-earlier-container"}):
        result = _lost(world, setup_done=done, snapshot_marks=marks).plan()
        assert actions(result)["sandbox.web"] == ("replace", "tainted")
        assert actions(result)["snapshot.snap"] == ("create", "new")  # web is recreated
        assert actions(result)["sandbox.worker"] == ("update", "adopted")  # no setup


def test_snapshot_note_must_match_hash_and_archive(world_of) -> None:  # type: ignore[no-untyped-def]
    world, marks = _applied(world_of)
    done = {WEB: world.containers[WEB].id}
    stale = {"snap": (marks["snap"][0], "sha256:other")}
    assert actions(_lost(world, setup_done=done, snapshot_marks=stale).plan())[
        "snapshot.snap"
    ] == ("create", "new")
    world.archives.clear()
    assert actions(_lost(world, setup_done=done, snapshot_marks=marks).plan())[
        "snapshot.snap"
    ] == ("create", "new")


def test_destroy_workspaces_takes_workspaces_without_record_or_container(world_of) -> None:  # type: ignore[no-untyped-def]
    world, _ = _applied(world_of)
    world.apply(world.plan(PlanOptions(destroy=True)))
    assert world.containers == {}
    leftover = _lost(world, workspaces=frozenset({"web", "gone"}))
    assert actions(leftover.plan(PlanOptions(destroy=True))) == {}
    result = leftover.plan(PlanOptions(destroy=True, destroy_workspaces=True))
    assert actions(result) == {
        "sandbox.web": ("delete", "destroy"),
        "sandbox.gone": ("delete", "destroy"),
    }
    assert all(c.holds_data for c in result.changes if c.action.mutates)


def test_labelled_salt_comes_from_the_projects_own_objects() -> None:
    mine = ObservedImage("a", ("x",), labels={LABEL_PROJECT: PROJECT, LABEL_SALT: "s1"})
    theirs = ObservedImage("b", ("y",), labels={LABEL_PROJECT: "other", LABEL_SALT: "s2"})
    assert Observed(images=(theirs,)).labelled_salt(PROJECT) == ""
    assert Observed(images=(theirs, mine)).labelled_salt(PROJECT) == "s1"


def test_a_container_on_another_image_than_the_adopted_one_is_replaced(world_of) -> None:  # type: ignore[no-untyped-def]
    world, marks = _applied(world_of)
    (image,) = world.images
    done = {WEB: world.containers[WEB].id}
    world.containers = {
        a: replace(c, image_id=image.id if a == WEB else "an-older-image")
        for a, c in world.containers.items()
    }
    caps = Capabilities(container_image_ids=True)
    result = _lost(world, setup_done=done, snapshot_marks=marks).plan(caps=caps)
    assert actions(result)["sandbox.web"] == ("update", "adopted")
    assert actions(result)["sandbox.worker"] == ("replace", "dependency_replaced")
