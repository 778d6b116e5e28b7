"""A present image is recorded from podman's `images` listing, the one the plan made, with
exactly what an `image inspect` would record — and no inspect is run for it."""

from __future__ import annotations

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.runtime.command import SubprocessRunner
from asbx.runtime.podman import PodmanRuntime
from asbx.state.store import StateStore
from tests.integration.conftest import BASE_IMAGE, Project

pytestmark = pytest.mark.integration


def test_a_present_image_is_recorded_from_the_listing_as_an_inspect_would(
        project: Project) -> None:
    project.write(f"version: 1\nname: {project.name}\nsandboxes:\n  one:\n"
                  f"    image: {BASE_IMAGE}\n")
    applied = project.asbx("-vv", "apply", "-y")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "image.busybox-latest: recording done" in applied.stdout + applied.stderr
    assert "$ podman image inspect" not in applied.stderr, applied.stderr
    record = StateStore(project.home / "state.db").snapshot(project.name).records[
        Address(ResourceKind.IMAGE, "busybox-latest")]
    inspected = PodmanRuntime(SubprocessRunner()).inspect_image(BASE_IMAGE)
    assert inspected is not None
    assert record.outputs["image_id"] == inspected.id
    assert record.outputs["digest"] == inspected.digest
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
