"""Exec by the recorded container id: one call when it runs; a confirmed refusal falls back;
a refusal the command printed itself never runs the command twice."""

from __future__ import annotations

import pytest

from asbx.addresses import Address, ResourceKind
from asbx.errors import ContainerNotRunningError, NotFoundError
from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT, ContainerRequest, ExecResult
from asbx.sandbox_exec import exec_by_recorded_id
from tests.fakes.runtime import FakeRuntime

IMAGE = "localhost/asbx/busybox:latest"
WEB = Address(ResourceKind.SANDBOX, "web")


def _runtime() -> tuple[FakeRuntime, str]:
    runtime = FakeRuntime()
    runtime.publish(IMAGE)
    container_id = runtime.create_container(ContainerRequest(
        name="p-web", image=IMAGE, command=None, start=True,
        labels={LABEL_PROJECT: "p", LABEL_ADDRESS: "sandbox.web"}))
    return runtime, container_id


def _exec(runtime: FakeRuntime, target: str) -> ExecResult:
    return runtime.exec(target, ("true",))


def test_a_running_sandbox_takes_one_call_and_no_listing() -> None:
    runtime, container_id = _runtime()
    before = runtime.count()
    result = exec_by_recorded_id(runtime, "p", WEB, container_id, lambda t: _exec(runtime, t))
    assert result is not None
    assert result.exit_code == 0
    assert runtime.count() - before == 1
    assert runtime.count("list_containers") == 0


def test_a_stopped_sandbox_is_refused_confirmed_and_left_to_the_caller() -> None:
    runtime, container_id = _runtime()
    runtime.stop_container("p-web")
    assert exec_by_recorded_id(runtime, "p", WEB, container_id,
                               lambda t: _exec(runtime, t)) is None
    assert runtime.count("list_containers") == 1


def test_a_replaced_container_is_never_entered() -> None:
    runtime, old_id = _runtime()
    runtime.remove_container("p-web", force=True)
    # someone else's container, under the same name
    runtime.create_container(ContainerRequest(name="p-web", image=IMAGE, command=None, start=True))
    entered: list[str] = []

    def run(target: str) -> ExecResult:
        entered.append(target)
        return _exec(runtime, target)

    assert exec_by_recorded_id(runtime, "p", WEB, old_id, run) is None
    assert entered == [old_id]  # tried by id only; the same-named impostor was not entered


@pytest.mark.parametrize("error", [
    NotFoundError("container 'x' not found in fake"),
    ContainerNotRunningError(("podman", "exec"), 255, "",
                             "Error: can only create exec sessions on running containers: "
                             "container state improper"),
])
def test_a_refusal_printed_by_the_command_itself_is_not_run_again(error: Exception) -> None:
    runtime, container_id = _runtime()
    runs: list[str] = []

    def run(target: str) -> ExecResult:
        runs.append(target)
        raise error  # the command wrote the runtime's refusal text and exited 255

    with pytest.raises(type(error)):
        exec_by_recorded_id(runtime, "p", WEB, container_id, run)
    assert runs == [container_id]  # the container runs: the text was the command's own
