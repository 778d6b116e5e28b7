"""Golden argv for every Apple `container` operation, and the checks made before anything runs."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asbx.errors import NotFoundError, PlanError, RuntimeCommandError, RuntimeUnavailableError
from asbx.runtime.apple import CAPABILITIES, AppleRuntime
from asbx.runtime.base import (
    BuildRequest,
    ContainerRequest,
    MountRequest,
    OutputCallback,
    PortRequest,
)
from asbx.runtime.command import CommandRequest, CommandResult

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime" / "apple"
Reply = CommandResult | Callable[[CommandRequest], CommandResult]


@dataclass
class ScriptedRunner:
    """Records each request and answers from a queue (default: exit 0, no output)."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[CommandRequest] = field(default_factory=list)

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else ok()
        return reply(request) if callable(reply) else reply

    @property
    def argvs(self) -> list[list[str]]:
        return [list(r.argv) for r in self.requests]


def ok(stdout: str = "", stderr: str = "", code: int = 0, timed_out: bool = False) -> CommandResult:
    return CommandResult(argv=(), returncode=code, stdout=stdout, stderr=stderr,
                         timed_out=timed_out)


def fail(stderr: str, code: int = 1) -> CommandResult:
    return ok(stderr=stderr, code=code)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def runtime(*replies: Reply, warnings: list[str] | None = None) -> tuple[AppleRuntime,
                                                                          ScriptedRunner]:
    runner = ScriptedRunner(list(replies))
    sink = warnings if warnings is not None else []
    return AppleRuntime(runner, "/opt/bin/container", warn=sink.append), runner


# ----------------------------------------------------------------------------- check


def test_check_asks_version_then_system_status() -> None:
    apple, runner = runtime(ok(fixture("1.2.2/version.txt")),
                            ok(fixture("1.2.2/system-status.json")))

    assert apple.check() == "1.2.2"
    assert runner.argvs == [["/opt/bin/container", "--version"],
                            ["/opt/bin/container", "system", "status"]]


def test_check_reports_a_stopped_service_with_the_fix() -> None:
    stopped = fail("apiserver is not running and not registered with launchd")
    apple, _ = runtime(ok(fixture("0.12.3/version.txt")), stopped)

    with pytest.raises(RuntimeUnavailableError) as caught:
        apple.check()

    assert caught.value.message == "Apple container's system service is not running"
    assert caught.value.hint == "run: container system start --enable-kernel-install"


def test_check_refuses_versions_before_0_6() -> None:
    apple, runner = runtime(ok(fixture("version-0.5.0.txt")))

    with pytest.raises(RuntimeUnavailableError, match=r"0\.5\.0 is too old; asbx needs 0\.6"):
        apple.check()
    assert len(runner.requests) == 1


def test_check_reports_a_missing_cli() -> None:
    def missing(request: CommandRequest) -> CommandResult:
        raise FileNotFoundError(request.argv[0])

    apple, _ = runtime(missing)

    with pytest.raises(RuntimeUnavailableError, match="not installed"):
        apple.check()


# ----------------------------------------------------------------------------- observation


def test_each_kind_is_listed_with_one_call() -> None:
    apple, runner = runtime(ok("[]"), ok("[]"), ok("[]"), ok("[]"))

    apple.list_containers({"dev.asbx.project": "demo"})
    apple.list_images()
    apple.list_volumes({"dev.asbx.project": "demo"})
    apple.list_networks({"dev.asbx.project": "demo"})

    exe = "/opt/bin/container"
    assert runner.argvs == [
        [exe, "list", "--all", "--format", "json"],
        [exe, "image", "list", "--format", "json"],
        [exe, "volume", "list", "--format", "json"],
        [exe, "network", "list", "--format", "json"],
    ]


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3"])
def test_lists_are_filtered_by_label_client_side(era: str) -> None:
    apple, _ = runtime(ok(fixture(f"{era}/list.json")), ok(fixture(f"{era}/volume-list.json")),
                       ok(fixture(f"{era}/network-list.json")))

    containers = apple.list_containers({"dev.asbx.project": "demo",
                                        "dev.asbx.address": "sandbox.api"})
    volumes = apple.list_volumes({"dev.asbx.project": "demo"})
    networks = apple.list_networks({"dev.asbx.project": "demo"})

    assert [c.name for c in containers] == ["demo-api"]
    assert [v.name for v in volumes] == ["demo-cache"]
    assert [n.name for n in networks] == ["demo-egress"]


def test_unparseable_list_output_is_a_command_error() -> None:
    apple, _ = runtime(ok("ID IMAGE OS\n"))

    with pytest.raises(RuntimeCommandError, match="not JSON"):
        apple.list_containers({})


# ----------------------------------------------------------------------------- images


def test_pull_uses_image_pull_then_inspects() -> None:
    apple, runner = runtime(ok(), ok(fixture("1.2.2/image-inspect.json")))

    image = apple.pull("demo-agent", platform="linux/arm64")

    assert runner.argvs == [
        ["/opt/bin/container", "image", "pull", "--platform", "linux/arm64", "demo-agent"],
        ["/opt/bin/container", "image", "inspect", "demo-agent"],
    ]
    assert runner.requests[0].timeout is None
    assert image.names == ("docker.io/library/demo-agent:latest",)


def test_pull_without_platform() -> None:
    apple, runner = runtime(ok(), ok(fixture("0.12.3/image-inspect.json")))

    apple.pull("docker.io/library/demo-agent:latest")

    assert runner.argvs[0] == ["/opt/bin/container", "image", "pull",
                               "docker.io/library/demo-agent:latest"]


def test_build_argv_with_every_option(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    apple, runner = runtime(ok(), ok(fixture("1.2.2/image-inspect.json")))
    request = BuildRequest(context=tmp_path, dockerfile=dockerfile,
                           tags=("demo-agent", "demo-agent:v2"), args={"B": "2", "A": "1"},
                           target="final", labels={"dev.asbx.project": "demo"},
                           platform="linux/arm64", pull=True)

    apple.build(request)

    assert runner.argvs == [
        ["/opt/bin/container", "build", "-f", str(dockerfile), "-t", "demo-agent",
         "-t", "demo-agent:v2", "--build-arg", "A=1", "--build-arg", "B=2",
         "--target", "final", "--platform", "linux/arm64",
         "--label", "dev.asbx.project=demo", "--pull", str(tmp_path)],
        ["/opt/bin/container", "image", "inspect", "demo-agent"],
    ]


def test_build_minimal_argv_passes_an_absolute_dockerfile(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    apple, runner = runtime(ok(), ok(fixture("1.2.2/image-inspect.json")))

    apple.build(BuildRequest(context=tmp_path, dockerfile=Path("Dockerfile"), tags=("x",)))

    assert runner.argvs[0] == ["/opt/bin/container", "build", "-f", str(tmp_path / "Dockerfile"),
                               "-t", "x", str(tmp_path)]


def test_build_refuses_a_16k_dockerfile_before_running(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n" + "# pad\n" * 3000)
    apple, runner = runtime()

    with pytest.raises(PlanError, match=r"only builds Dockerfiles smaller than 16384 bytes"):
        apple.build(BuildRequest(context=tmp_path, dockerfile=dockerfile, tags=("x",)))
    assert runner.requests == []


def test_build_needs_a_tag(tmp_path: Path) -> None:
    apple, _ = runtime()

    with pytest.raises(PlanError, match="needs a tag"):
        apple.build(BuildRequest(context=tmp_path, dockerfile=tmp_path / "Dockerfile", tags=()))


def test_inspect_image_missing_in_1x_and_0x_is_none() -> None:
    apple, runner = runtime(fail('Error: notFound: "image not found: nope"'), ok("[]"))

    assert apple.inspect_image("nope") is None
    assert apple.inspect_image("nope") is None
    assert runner.argvs[0] == ["/opt/bin/container", "image", "inspect", "nope"]


def test_remove_image_argv_and_missing_image() -> None:
    apple, runner = runtime(
        ok(), fail('Error: internalError: "failed to delete one or more images: [nope]"'),
        fail('Error: notFound: "image not found: nope"'))

    apple.remove_image("demo-agent")
    with pytest.raises(NotFoundError, match=r"docker\.io/library/nope:latest not found"):
        apple.remove_image("nope")
    assert runner.argvs[:2] == [["/opt/bin/container", "image", "delete", "demo-agent"],
                                ["/opt/bin/container", "image", "delete", "nope"]]


def test_remove_image_by_id_deletes_every_name_it_carries() -> None:
    apple, runner = runtime(ok(fixture("1.2.2/image-list.json")), ok())

    apple.remove_image("sha256:" + "7" * 64)

    assert runner.argvs == [
        ["/opt/bin/container", "image", "list", "--format", "json"],
        ["/opt/bin/container", "image", "delete", "docker.io/library/demo-agent:latest",
         "localhost:5000/demo/agent:v1"],
    ]


def test_remove_image_by_unknown_id_is_not_found() -> None:
    apple, runner = runtime(ok(fixture("0.12.3/image-list.json")))

    with pytest.raises(NotFoundError):
        apple.remove_image("ab" * 32)
    assert len(runner.requests) == 1


# ----------------------------------------------------------------------------- containers


def full_request(tmp_path: Path) -> ContainerRequest:
    return ContainerRequest(
        name="demo-api",
        image="docker.io/library/busybox:latest",
        command=("tail", "-f", "/dev/null"),
        labels={"dev.asbx.project": "demo", "dev.asbx.address": "sandbox.api"},
        env={"TOKEN": "s3cret", "MODE": "a=b"},
        workdir="/workspace",
        user="1000:1000",
        cpus=2,
        memory=512 * 1024 * 1024,
        mounts=(MountRequest("bind", str(tmp_path), "/workspace"),
                MountRequest("bind", "/etc/ssl", "/ssl", readonly=True),
                MountRequest("volume", "demo-cache", "/cache"),
                MountRequest("volume", "demo-ro", "/ro", readonly=True)),
        network="demo-net",
        ports=(PortRequest("127.0.0.1", 8080, 80), PortRequest("::1", 5353, 53, "udp")),
        dns=("192.168.64.1",),
    )


def test_create_argv_with_every_option(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def inspect_env_file(request: CommandRequest) -> CommandResult:
        path = Path(request.argv[request.argv.index("--env-file") + 1])
        seen["path"], seen["text"] = path, path.read_text()
        seen["mode"] = stat.S_IMODE(path.stat().st_mode)
        return ok("demo-api\n")

    apple, runner = runtime(inspect_env_file)

    assert apple.create_container(full_request(tmp_path)) == "demo-api"

    env_file = str(seen["path"])
    assert runner.argvs == [[
        "/opt/bin/container", "create", "--name", "demo-api",
        "--label", "dev.asbx.address=sandbox.api", "--label", "dev.asbx.project=demo",
        "--env-file", env_file, "--workdir", "/workspace", "--user", "1000:1000",
        "--cpus", "2", "--memory", "512m",
        "--mount", f"type=bind,source={tmp_path},target=/workspace",
        "--mount", "type=bind,source=/etc/ssl,target=/ssl,readonly",
        "--volume", "demo-cache:/cache", "--volume", "demo-ro:/ro:ro",
        "--network", "demo-net",
        "--publish", "127.0.0.1:8080:80/tcp", "--publish", "[::1]:5353:53/udp",
        "--dns", "192.168.64.1", "--init",
        "docker.io/library/busybox:latest", "tail", "-f", "/dev/null",
    ]]
    assert seen["text"] == "MODE=a=b\nTOKEN=s3cret\n"
    assert seen["mode"] == 0o600
    assert not Path(env_file).exists()
    assert "s3cret" not in " ".join(runner.argvs[0])


def test_create_minimal_argv_denies_network_and_skips_env_file() -> None:
    apple, runner = runtime()

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=(), init=False))

    assert runner.argvs == [["/opt/bin/container", "create", "--name", "p-s",
                             "--workdir", "/workspace", "--network", "none", "busybox"]]


def test_start_uses_run_detached() -> None:
    apple, runner = runtime()

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=(), init=False,
                                            start=True))

    assert runner.argvs == [["/opt/bin/container", "run", "-d", "--name", "p-s",
                             "--workdir", "/workspace", "--network", "none", "busybox"]]


def test_default_network_is_omitted() -> None:
    apple, runner = runtime()

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=("sh",),
                                            network="default"))

    assert "--network" not in runner.argvs[0]


def test_fractional_cpus_round_up_with_a_warning() -> None:
    warnings: list[str] = []
    apple, runner = runtime(warnings=warnings)

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=(), cpus=0.5))
    apple.create_container(ContainerRequest(name="p-t", image="busybox", command=(), cpus=2.25))

    assert runner.argvs[0][runner.argvs[0].index("--cpus") + 1] == "1"
    assert runner.argvs[1][runner.argvs[1].index("--cpus") + 1] == "3"
    assert warnings == ["cpus 0.5 rounded up to 1 on Apple container",
                        "cpus 2.25 rounded up to 3 on Apple container"]


def test_memory_renders_whole_mib_rounding_up() -> None:
    apple, runner = runtime()

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=(),
                                            memory=300 * 1024 * 1024 + 1))

    assert runner.argvs[0][runner.argvs[0].index("--memory") + 1] == "301m"


@pytest.mark.parametrize(("request_args", "message"), [
    ({"name": "p-" + "x" * 62}, r"is 64 characters; Apple container allows at most 63"),
    ({"name": "-bad"}, r"not a valid Apple container name"),
    ({"memory": 199 * 1024 * 1024}, r"memory 199 MiB is below Apple container's minimum of 200"),
    ({"labels": {"team": "a=b"}}, r'label "team" on container p-s has a value containing "="'),
    ({"ports": (PortRequest("127.0.0.1", 80, 80),)}, r"cannot publish ports with --network none"),
    ({"env": {"MULTI": "a\nb"}}, r"MULTI has a value with a line break"),
    ({"mounts": (MountRequest("bind", "rel/dir", "/x"),)}, r"must be an absolute path"),
])
def test_create_refuses_what_apple_cannot_do_before_running(
        request_args: dict[str, object], message: str) -> None:
    apple, runner = runtime()
    fields: dict[str, object] = {"name": "p-s", "image": "busybox", "command": ()}
    fields.update(request_args)

    with pytest.raises(PlanError, match=message):
        apple.create_container(ContainerRequest(**fields))  # type: ignore[arg-type]
    assert runner.requests == []


def test_name_too_long_hint_explains_the_naming() -> None:
    apple, _ = runtime()

    with pytest.raises(PlanError) as caught:
        apple.create_container(ContainerRequest(name="a" * 64, image="busybox", command=()))
    assert caught.value.hint is not None
    assert "<project>-<sandbox>" in caught.value.hint


def test_init_is_left_out_before_0_10_with_a_warning() -> None:
    warnings: list[str] = []
    version = ok("container CLI version 0.9.0 (build: release, commit: 1)")
    apple, runner = runtime(version, ok(), ok(), warnings=warnings)
    apple.check()

    apple.create_container(ContainerRequest(name="p-s", image="busybox", command=()))

    assert "--init" not in runner.argvs[2]
    assert len(warnings) == 1
    assert "no --init" in warnings[0]


def test_lifecycle_argv() -> None:
    apple, runner = runtime()

    apple.start_container("p-s")
    apple.stop_container("p-s", timeout=2.5)
    apple.stop_container("p-s")
    apple.remove_container("p-s")
    apple.remove_container("p-s", force=False)

    exe = "/opt/bin/container"
    assert runner.argvs == [
        [exe, "start", "p-s"],
        [exe, "stop", "-t", "3", "p-s"],
        [exe, "stop", "-t", "10", "p-s"],
        [exe, "delete", "-f", "p-s"],
        [exe, "delete", "p-s"],
    ]


@pytest.mark.parametrize("stderr", [
    'Error: internalError: "failed to stop container" '
    '(cause: "notFound: "container with ID p-s not found"")',
    "Error: No such container: p-s",
    'Error: notFound: "get failed: container p-s not found"',
])
def test_missing_container_errors_become_not_found(stderr: str) -> None:
    apple, _ = runtime(fail(stderr))

    with pytest.raises(NotFoundError):
        apple.stop_container("p-s")


def test_other_failures_keep_argv_code_and_output() -> None:
    stderr = ('Error: internalError: "failed to delete container" (cause: "invalidState: '
              '"container p-s is running and can not be deleted"")')
    apple, _ = runtime(fail(stderr))

    with pytest.raises(RuntimeCommandError) as caught:
        apple.remove_container("p-s", force=False)

    assert caught.value.returncode == 1
    assert "is running and can not be deleted" in caught.value.message


def test_usage_errors_are_never_not_found() -> None:
    apple, _ = runtime(fail("Error: Plugin 'container-pull' not found.", code=64))

    with pytest.raises(RuntimeCommandError) as caught:
        apple.start_container("p-s")
    assert not isinstance(caught.value, NotFoundError)


# ----------------------------------------------------------------------------- exec, logs


def test_exec_argv_passes_env_through_a_private_file() -> None:
    seen: dict[str, str] = {}

    def capture(request: CommandRequest) -> CommandResult:
        seen["text"] = Path(request.argv[request.argv.index("--env-file") + 1]).read_text()
        return ok("out\n", "err\n", code=3)

    apple, runner = runtime(capture)

    result = apple.exec("p-s", ("sh", "-c", "exit 3"), env={"K": "v"}, workdir="/w", user="app",
                        stdin=b"data", timeout=5)

    argv = runner.argvs[0]
    env_file = argv[argv.index("--env-file") + 1]
    assert argv == ["/opt/bin/container", "exec", "-i", "--env-file", env_file, "-w", "/w",
                    "-u", "app", "p-s", "sh", "-c", "exit 3"]
    assert runner.requests[0].stdin == b"data"
    assert runner.requests[0].timeout == 5
    assert seen["text"] == "K=v\n"
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_exec_minimal_argv() -> None:
    apple, runner = runtime(ok("hi\n"))

    assert apple.exec("p-s", ("echo", "hi")).stdout == "hi\n"
    assert runner.argvs == [["/opt/bin/container", "exec", "p-s", "echo", "hi"]]


def test_exec_timeout_gives_124() -> None:
    apple, _ = runtime(ok(timed_out=True, code=-9))

    assert apple.exec("p-s", ("sleep", "60"), timeout=0.1).exit_code == 124


def test_exec_on_a_stopped_container_raises() -> None:
    apple, _ = runtime(fail('Error: invalidState: "container p-s is not running"'))

    with pytest.raises(RuntimeCommandError, match="is not running"):
        apple.exec("p-s", ("true",))


def test_exec_on_a_missing_container_raises_not_found() -> None:
    apple, _ = runtime(fail('Error: notFound: "get failed: container p-s not found"'))

    with pytest.raises(NotFoundError):
        apple.exec("p-s", ("true",))


@pytest.mark.parametrize("stderr", [
    "Error: my tool failed\n",
    "Error: no such container\n",
    "Error: config.yaml not found\n",
    "Error: container other is not running\n",
])
def test_exec_process_printing_error_lines_is_still_a_process_result(stderr: str) -> None:
    apple, _ = runtime(fail(stderr))

    result = apple.exec("p-s", ("tool",))

    assert (result.exit_code, result.stderr) == (1, stderr)


def test_exec_when_the_service_is_down_raises() -> None:
    apple, _ = runtime(fail('Error: interrupted: "internalError: "failed to exec" (cause: '
                            '"interrupted: "XPC connection error: Connection invalid"")"'))

    with pytest.raises(RuntimeCommandError, match="XPC connection"):
        apple.exec("p-s", ("true",))


def test_interactive_exec_argv() -> None:
    apple, _ = runtime()

    argv = apple.exec_argv("p-s", ("/bin/sh",), tty=True, interactive=True, env={"A": "1"},
                           workdir="/workspace", user="root")

    assert argv == ["/opt/bin/container", "exec", "-i", "-t", "-e", "A=1", "-w", "/workspace",
                    "-u", "root", "p-s", "/bin/sh"]


def test_logs_argv() -> None:
    apple, _ = runtime()

    assert apple.logs_argv("p-s", follow=True, tail=50) == [
        "/opt/bin/container", "logs", "-f", "-n", "50", "p-s"]
    assert apple.logs_argv("p-s", follow=False, tail=None) == [
        "/opt/bin/container", "logs", "p-s"]


# ----------------------------------------------------------------------------- volumes, networks


def test_volume_argv_puts_the_name_first() -> None:
    apple, runner = runtime()

    apple.create_volume("demo-cache", {"dev.asbx.project": "demo"}, size=10 * 1024**3)
    apple.create_volume("plain", {})
    apple.create_volume("odd", {}, size=1000)
    apple.remove_volume("demo-cache")

    exe = "/opt/bin/container"
    assert runner.argvs == [
        [exe, "volume", "create", "demo-cache", "--label", "dev.asbx.project=demo", "-s", "10G"],
        [exe, "volume", "create", "plain"],
        [exe, "volume", "create", "odd", "-s", "1000"],
        [exe, "volume", "delete", "demo-cache"],
    ]


def test_volume_label_with_equals_is_refused() -> None:
    apple, runner = runtime()

    with pytest.raises(PlanError, match='label "k" on volume v'):
        apple.create_volume("v", {"k": "x=y"})
    assert runner.requests == []


def test_missing_volume_is_not_found() -> None:
    apple, _ = runtime(fail('Error: invalidArgument: "volume \'v\' not found"'))

    with pytest.raises(NotFoundError, match="volume 'v' not found"):
        apple.remove_volume("v")


def test_network_argv_and_result() -> None:
    apple, runner = runtime(ok("demo-egress\n"), ok(fixture("1.2.2/network-list.json")), ok())

    network = apple.create_network("demo-egress", {"dev.asbx.project": "demo"}, internal=True)
    apple.remove_network("demo-egress")

    exe = "/opt/bin/container"
    assert runner.argvs == [
        [exe, "network", "create", "demo-egress", "--label", "dev.asbx.project=demo",
         "--internal"],
        [exe, "network", "list", "--format", "json"],
        [exe, "network", "delete", "demo-egress"],
    ]
    assert network.gateway == "192.168.70.1"
    assert network.internal


def test_network_names_apple_rejects_are_refused() -> None:
    apple, _ = runtime()

    for name in ("Upper", "none", "default", "-x"):
        with pytest.raises(PlanError, match="not a valid Apple container network name"):
            apple.create_network(name, {}, internal=False)


# ----------------------------------------------------------------------------- capabilities, plan


def test_capabilities_match_the_reference() -> None:
    assert CAPABILITIES.fractional_cpus is False
    assert CAPABILITIES.min_memory == 200 * 1024 * 1024
    assert CAPABILITIES.shared_volumes is False
    assert CAPABILITIES.volume_size is True
    assert CAPABILITIES.label_values_with_equals is False
    assert CAPABILITIES.label_filter is False
    assert CAPABILITIES.internal_networks_isolate is False
    assert CAPABILITIES.ports_with_network_none is False
    assert CAPABILITIES.max_name_length == 63
    assert AppleRuntime(ScriptedRunner()).capabilities is CAPABILITIES


def test_fixtures_are_json() -> None:
    for path in FIXTURES.rglob("*.json"):
        json.loads(path.read_text())
