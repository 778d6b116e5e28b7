"""Session fixtures: real runtimes (podman, docker), the test registry and base image, cleanup."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.base import LABEL_PROJECT, Runtime
from asbx.runtime.command import SubprocessRunner
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.podman import PodmanRuntime
from tests.contract.backends import remove_labelled, require
from tests.fakes.runtime import FakeRuntime
from tests.user_objects import user_objects

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BASE_IMAGE = "localhost/asbx/busybox:latest"  # built by scripts/build-base-image
REAL_RUNTIME_FIXTURES = ("podman_runtime", "docker_runtime")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run tests that need a real runtime last, so fast failures show first."""
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)


@pytest.fixture(scope="session", autouse=True)
def users_projects_untouched() -> Iterator[None]:
    """Fail the run if any test changed or removed a runtime object of a project it did not
    create (a user's `quickstart`, say): containers keep their id and state, volumes and
    networks stay."""
    env = {**os.environ}
    env.setdefault("CONTAINERS_CONF", os.path.join(REPO_ROOT, "scripts", "containers.conf"))
    before = user_objects(env)
    yield
    if not before:
        return
    lost = sorted(before - user_objects(env))
    if lost:
        pytest.fail(
            "the tests changed or removed objects of projects they did not create: "
            + ", ".join(f"{o.kind} {o.ident[:12]} of {o.project} ({o.state or 'present'})"
                        for o in lost)
        )


def _checked(runtime: Runtime) -> Runtime:
    try:
        runtime.check()
    except RuntimeUnavailableError as exc:
        require(f"{runtime.name} is not available: {exc.message} ({exc.hint or 'scripts/test'})")
    return runtime


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture(scope="session")
def podman_runtime() -> Runtime:
    """Real podman (configured by scripts/test through CONTAINERS_CONF)."""
    return _checked(PodmanRuntime(SubprocessRunner()))


@pytest.fixture(scope="session")
def docker_runtime() -> Runtime:
    """Real dockerd (scripts/test starts one and exports DOCKER_HOST)."""
    return _checked(DockerRuntime(SubprocessRunner()))


@pytest.fixture(scope="session")
def registry() -> str:
    """`host:port` of the loopback OCI registry scripts/test starts (ASBX_TEST_REGISTRY)."""
    address = os.environ.get("ASBX_TEST_REGISTRY", "")
    host, _, port = address.rpartition(":")
    if not host.startswith("127.") or not port.isdigit():
        require("no test registry: run the tests through scripts/test (ASBX_TEST_REGISTRY)")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        require(f"the test registry at {address} does not answer: {exc}")
    return address


@pytest.fixture(scope="session")
def base_image() -> str:
    """The tiny busybox image every real-runtime test runs (no registry needed)."""
    return os.environ.get("ASBX_TEST_BASE_IMAGE", DEFAULT_BASE_IMAGE)


@pytest.fixture
def project_label(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A unique project label; at teardown every container, volume, network and built image
    carrying it is removed from the real runtimes this test used."""
    labels = {LABEL_PROJECT: f"asbxtest-{uuid.uuid4().hex[:10]}"}
    yield labels
    for name in REAL_RUNTIME_FIXTURES:
        if name in request.fixturenames:
            remove_labelled(request.getfixturevalue(name), labels)
