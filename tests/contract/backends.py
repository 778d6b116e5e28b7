"""The runtimes the contract suite runs against (name -> factory + availability) and cleanup.

Adding a backend is one entry in BACKENDS, e.g.
    BACKENDS["apple-fake"] = Backend(make_apple_fake, real=False, executes=False)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from asbx.errors import AsbxError, RuntimeUnavailableError
from asbx.runtime.apple import AppleRuntime
from asbx.runtime.base import OutputCallback, Runtime
from asbx.runtime.command import CommandRequest, CommandResult, SubprocessRunner
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.podman import PodmanRuntime
from tests.fakes.runtime import FakeRuntime


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(reason: str) -> NoReturn:
    """A prerequisite is missing: in CI (CI=true) the test fails, elsewhere it is skipped."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class Backend:
    """How to get a runtime for the contract suite."""

    factory: Callable[[], Runtime]
    unavailable: Callable[[], str | None] = _always_available
    """Why the backend cannot run here (None when it can); checked once per session."""
    real: bool = True
    """Drives a real daemon: the tests get the `integration` mark and need the base image."""
    executes: bool = True
    """`exec` really runs the command, so tests may look inside the container."""


def checked_by_version(factory: Callable[[], Runtime]) -> Callable[[], str | None]:
    """An availability check that runs the runtime's own `check()` once."""

    @functools.cache
    def unavailable() -> str | None:
        try:
            factory().check()
        except RuntimeUnavailableError as exc:
            return f"{exc.message}: {exc.hint}" if exc.hint else exc.message
        return None

    return unavailable


def _podman() -> Runtime:
    return PodmanRuntime(SubprocessRunner())


def _docker() -> Runtime:
    return DockerRuntime(SubprocessRunner())


class _FakeContainerRunner:
    """Runs tests/fakes/container (Apple's CLI, faked) with a private state dir; the images the
    suite uses are in its registry catalog, so nothing is fetched."""

    def __init__(self, version: str) -> None:
        state_dir = tempfile.mkdtemp(prefix="asbx-apple-fake-")
        weakref.finalize(self, shutil.rmtree, state_dir, True)  # removed along with the runtime
        base = os.environ.get("ASBX_TEST_BASE_IMAGE", "localhost/asbx/busybox:latest")
        self._env = {"ASBX_FAKE_CONTAINER_STATE": f"{state_dir}/state.json",
                     "ASBX_FAKE_CONTAINER_VERSION": version,
                     "ASBX_FAKE_CONTAINER_REGISTRY_IMAGES":
                         f"{base},registry.fake.test:5000/asbx/busybox:latest"}
        self._inner = SubprocessRunner()

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        env = {**request.env, **self._env}
        return self._inner(dataclasses.replace(request, env=env), on_output)


def _apple_fake(version: str) -> Callable[[], Runtime]:
    fake = str(Path(__file__).parents[1] / "fakes" / "container")
    return lambda: AppleRuntime(_FakeContainerRunner(version), fake, warn=lambda _: None)


BACKENDS: dict[str, Backend] = {
    "fake": Backend(FakeRuntime, real=False, executes=False),
    "apple-fake": Backend(_apple_fake("1.2.2"), real=False, executes=False),
    "podman": Backend(_podman, checked_by_version(_podman)),
    "docker": Backend(_docker, checked_by_version(_docker)),
}


def remove_labelled(runtime: Runtime, labels: Mapping[str, str]) -> None:
    """Remove every container, volume, network and image carrying all of `labels`."""
    for container in runtime.list_containers(labels):
        with contextlib.suppress(AsbxError):
            runtime.remove_container(container.id, force=True)
    for volume in runtime.list_volumes(labels):
        with contextlib.suppress(AsbxError):
            runtime.remove_volume(volume.name)
    for network in runtime.list_networks(labels):
        with contextlib.suppress(AsbxError):
            runtime.remove_network(network.name)
    for image in runtime.list_images():
        if labels.items() <= image.labels.items():
            with contextlib.suppress(AsbxError):
                runtime.remove_image(image.id)
