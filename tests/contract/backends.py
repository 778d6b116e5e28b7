"""The runtimes the contract suite runs against (name -> factory + availability) and cleanup.

Adding a backend is one entry in BACKENDS, e.g.
    BACKENDS["apple-fake"] = Backend(make_apple_fake, real=False, executes=False)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

import pytest

from asbx.errors import AsbxError, RuntimeUnavailableError
from asbx.runtime.base import Runtime
from asbx.runtime.command import SubprocessRunner
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


BACKENDS: dict[str, Backend] = {
    "fake": Backend(FakeRuntime, real=False, executes=False),
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
