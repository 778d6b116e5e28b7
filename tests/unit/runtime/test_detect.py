"""Runtime selection: --runtime / ASBX_RUNTIME, else container on macOS, podman, docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.detect import BACKENDS, backend_class, create_runtime, runtime_name
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.podman import PodmanRuntime
from tests.fakes.runtime import ScriptedRunner


def installed(*names: str) -> object:
    return lambda exe: f"/usr/bin/{exe}" if exe in names else None


@pytest.mark.parametrize(("platform", "present", "expected"), [
    ("linux", ("podman", "docker"), "podman"),
    ("linux", ("docker",), "docker"),
    ("linux", ("container", "docker"), "docker"),
    ("darwin", ("container", "podman", "docker"), "apple"),
    ("darwin", ("podman", "docker"), "podman"),
])
def test_detection_order(platform: str, present: tuple[str, ...], expected: str) -> None:
    assert runtime_name(env={}, platform=platform, which=installed(*present)) == expected


def test_an_explicit_choice_wins_over_detection() -> None:
    which = installed("podman")
    assert runtime_name("docker", env={}, which=which) == "docker"
    assert runtime_name(env={"ASBX_RUNTIME": "docker"}, which=which) == "docker"
    assert runtime_name("podman", env={"ASBX_RUNTIME": "docker"}, which=which) == "podman"
    assert runtime_name("container", env={}, which=which) == "apple"


def test_an_unknown_runtime_names_the_choices() -> None:
    with pytest.raises(RuntimeUnavailableError, match="apple, docker, podman"):
        runtime_name("lxc", env={})


def test_no_runtime_at_all_says_what_to_install() -> None:
    with pytest.raises(RuntimeUnavailableError, match="no container runtime") as caught:
        runtime_name(env={}, platform="linux", which=installed())
    assert "install podman or Docker" in (caught.value.hint or "")


def test_every_registered_backend_can_be_imported() -> None:
    for name in BACKENDS:
        assert backend_class(name).name == name  # type: ignore[attr-defined]


def test_create_runtime_uses_the_runner_and_extra_args_from_the_environment() -> None:
    runner = ScriptedRunner()
    runtime = create_runtime("podman", runner,
                             env={"ASBX_PODMAN_ARGS": "--root '/scratch dir' --log-level=warn"})
    assert isinstance(runtime, PodmanRuntime)
    runtime.start_container("box")
    assert runner.last == ("podman", "--root", "/scratch dir", "--log-level=warn", "start", "box")
    assert isinstance(create_runtime("docker", runner, env={}), DockerRuntime)


def test_open_runtime_checks_it_first() -> None:
    from asbx.runtime.detect import open_runtime

    runner = ScriptedRunner()
    runner.on("version", returncode=125, stderr="Error: cannot connect to Podman\n")
    with pytest.raises(RuntimeUnavailableError, match="cannot connect to Podman"):
        open_runtime("podman", runner)


@pytest.mark.parametrize("argv", [["--runtime", "container"], ["--runtime", "apple"]])
def test_the_cli_takes_container_as_apples_name(argv: list[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from asbx.cli.context import AppContext
    from asbx.cli.main import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sandboxes.yaml").write_text("version: 1\n")
    app = AppContext()
    cli.main(args=[*argv, "config", "--json"], prog_name="asbx", standalone_mode=False, obj=app)
    assert runtime_name(app.runtime_name, env={}, which=installed()) == "apple"
