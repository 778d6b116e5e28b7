"""FakeRuntime: what other tests rely on (records, states, errors, scripting, speed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from asbx.errors import (
    AsbxError,
    NameConflictError,
    NotFoundError,
    RuntimeCommandError,
    RuntimeUnavailableError,
)
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_PROJECT,
    BuildRequest,
    ContainerRequest,
    ContainerState,
    ExecResult,
    MountRequest,
    Runtime,
)
from tests.fakes.runtime import Call, ExecCall, FakeRuntime

PROJECT = {LABEL_PROJECT: "demo"}


def sandbox(name: str, **fields: object) -> ContainerRequest:
    fields.setdefault("labels", {**PROJECT, LABEL_ADDRESS: f"sandbox.{name}"})
    return ContainerRequest(name=name, image="localhost/base:1", command=("sleep", "inf"),
                            **fields)  # type: ignore[arg-type]


def test_it_is_a_runtime() -> None:
    runtime: Runtime = FakeRuntime()
    assert runtime.check() == "1.0.0-fake"


def test_every_call_is_recorded_with_its_arguments() -> None:
    fake = FakeRuntime()
    fake.create_volume("cache", PROJECT)
    fake.list_volumes(PROJECT)
    fake.list_containers(PROJECT)
    assert fake.calls == [Call("create_volume", ("cache", PROJECT, None)),
                          Call("list_volumes", (PROJECT,)), Call("list_containers", (PROJECT,))]
    method, args = fake.calls[0]
    assert (method, args[0]) == ("create_volume", "cache")
    assert (fake.count(), fake.count("list_volumes")) == (3, 1)


def test_containers_move_through_their_states() -> None:
    fake = FakeRuntime()
    container_id = fake.create_container(sandbox("web"))
    [observed] = fake.list_containers(PROJECT)
    assert (observed.id, observed.state, observed.started_at) == (
        container_id, ContainerState.STOPPED, None)
    fake.start_container("web")
    assert fake.containers["web"].state is ContainerState.RUNNING
    fake.stop_container("web")
    assert fake.containers["web"].state is ContainerState.STOPPED
    fake.start_container(container_id[:12])  # an id prefix works, as in the real CLIs
    fake.remove_container("web")
    assert fake.list_containers(PROJECT) == []


def test_errors_match_the_real_backends() -> None:
    fake = FakeRuntime()
    for call in (lambda: fake.start_container("nope"), lambda: fake.remove_volume("nope"),
                 lambda: fake.remove_network("nope"), lambda: fake.remove_image("nope:1"),
                 lambda: fake.exec("nope", ("true",))):
        with pytest.raises(NotFoundError):
            call()
    fake.create_container(sandbox("web"))
    with pytest.raises(NameConflictError, match="already in use"):
        fake.create_container(sandbox("web"))
    with pytest.raises(RuntimeCommandError, match="not running"):
        fake.exec("web", ("true",))
    fake.start_container("web")
    with pytest.raises(RuntimeCommandError, match="running"):
        fake.remove_container("web", force=False)
    with pytest.raises(NotFoundError, match="network"):
        fake.create_container(sandbox("other", network="missing-net"))


def test_objects_in_use_cannot_be_removed(tmp_path: Path) -> None:
    fake = FakeRuntime()
    fake.create_network("net", PROJECT, internal=True)
    fake.create_container(sandbox("web", network="net", mounts=(
        MountRequest("volume", "cache", "/cache"), MountRequest("bind", str(tmp_path), "/w"))))
    assert "cache" in fake.volumes, "a volume named in a mount is created, as podman does"
    for call in (lambda: fake.remove_volume("cache"), lambda: fake.remove_network("net"),
                 lambda: fake.remove_image("localhost/base:1")):
        with pytest.raises(RuntimeCommandError, match="use"):
            call()


def test_a_missing_bind_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeCommandError, match="bind source"):
        FakeRuntime().create_container(sandbox("web", mounts=(
            MountRequest("bind", str(tmp_path / "missing"), "/w"),)))


def test_exec_is_scripted_by_a_handler() -> None:
    seen: list[ExecCall] = []

    def handler(call: ExecCall) -> ExecResult | int | None:
        seen.append(call)
        if call.argv[0] == "fail":
            return 3
        return ExecResult(0, "out\n", "err\n") if call.argv[0] == "talk" else None

    fake = FakeRuntime(exec_handler=handler)
    fake.create_container(sandbox("web"))
    fake.start_container("web")
    lines: list[tuple[str, str]] = []
    assert fake.exec("web", ("talk",), on_output=lambda s, t: lines.append((s, t))).stdout == \
        "out\n"
    assert fake.exec("web", ("fail",)).exit_code == 3
    assert fake.exec("web", ("true",), env={"A": "1"}, workdir="/w", stdin=b"x") == \
        ExecResult(0)
    assert lines == [("stdout", "out\n"), ("stderr", "err\n")]
    assert (seen[2].env, seen[2].workdir, seen[2].stdin) == ({"A": "1"}, "/w", b"x")


def test_pulls_take_the_digest_published_in_the_fake_registry() -> None:
    fake = FakeRuntime()
    first = fake.publish("reg.test/app:1")
    image = fake.pull("reg.test/app:1")
    assert (image.digest, image.names) == (first, ("reg.test/app:1",))
    fake.publish("reg.test/app:1")  # upstream moved on
    newer = fake.pull("reg.test/app:1")
    assert newer.digest != first
    assert newer.id != image.id
    assert fake.images[image.id].names == (), "the old image lost its name"
    assert fake.pull("reg.test/other:1").digest.startswith("sha256:")

    strict = FakeRuntime(strict_pulls=True)
    with pytest.raises(RuntimeCommandError, match="manifest unknown"):
        strict.pull("reg.test/other:1")
    with pytest.raises(NotFoundError):
        strict.create_container(sandbox("web"))


def test_builds_are_content_addressed(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    request = BuildRequest(context=tmp_path, dockerfile=tmp_path / "Dockerfile",
                           tags=("localhost/app:1",), labels=PROJECT)
    fake = FakeRuntime()
    first = fake.build(request)
    assert fake.build(request).id == first.id
    (tmp_path / "app.py").write_text("print(2)\n")
    second = fake.build(request)
    assert second.id != first.id
    assert second.labels == PROJECT
    assert fake.inspect_image("localhost/app:1") == second
    with pytest.raises(RuntimeCommandError):
        fake.build(BuildRequest(context=tmp_path, dockerfile=tmp_path / "Missing", tags=()))


def test_failures_can_be_injected() -> None:
    fake = FakeRuntime()
    fake.fail("create_container", when=lambda args: args[0].name == "bad")
    fake.create_container(sandbox("good"))
    with pytest.raises(RuntimeCommandError, match="injected"):
        fake.create_container(sandbox("bad"))
    fake.create_container(sandbox("bad"))  # only once
    fake.available = False
    with pytest.raises(RuntimeUnavailableError):
        fake.check()
    with pytest.raises(AsbxError, match="size"):
        fake.create_volume("v", {}, size=10)


def test_it_is_safe_to_use_from_many_threads() -> None:
    fake = FakeRuntime()
    threads = [threading.Thread(target=fake.create_container, args=(sandbox(f"s{i}"),))
               for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake.list_containers(PROJECT)) == 64
    assert fake.count("create_container") == 64


def test_observing_500_sandboxes_is_three_calls_and_fast() -> None:
    fake = FakeRuntime()
    for i in range(500):
        fake.create_volume(f"v{i}", {**PROJECT, LABEL_ADDRESS: f"volume.v{i}"})
        fake.create_container(sandbox(f"s{i}"))
    fake.calls.clear()

    started = time.perf_counter()
    containers = fake.list_containers(PROJECT)
    images = fake.list_images()
    volumes = fake.list_volumes(PROJECT)
    elapsed = time.perf_counter() - started

    assert (len(containers), len(images), len(volumes)) == (500, 1, 500)
    assert fake.count() == 3
    assert elapsed < 0.2


def test_one_manifest_pulled_under_two_names_is_one_image() -> None:
    fake = FakeRuntime()
    digest = fake.publish("a.test/app:1")
    fake.publish("b.test/app:1", digest)
    first, second = fake.pull("a.test/app:1"), fake.pull("b.test/app:1")
    assert first.id == second.id
    assert set(fake.images[first.id].names) == {"a.test/app:1", "b.test/app:1"}
