"""Golden argv for every podman and docker operation, recorded by a runner that starts nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from asbx.errors import AsbxError
from asbx.runtime.base import BuildRequest, ContainerRequest, MountRequest, PortRequest
from asbx.runtime.command import CommandRequest
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.oci_cli import EXEC_MARKER, OciCliRuntime, port_arg
from asbx.runtime.podman import PodmanRuntime
from tests.fakes.runtime import ScriptedRunner

LABELS = {"dev.asbx.project": "demo"}
IMAGE_JSON = '[{"Id": "%s", "RepoTags": ["localhost/demo:v1"], "RepoDigests": []}]' % ("a" * 64)
JSON = {"podman": "json", "docker": "{{json .}}"}


@pytest.fixture(params=["podman", "docker"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runner() -> ScriptedRunner:
    runner = ScriptedRunner()
    runner.on("image", "inspect", stdout=IMAGE_JSON)
    runner.on("network", "inspect", stdout='[{"name": "n", "internal": true}]')
    runner.on("rm", stdout="box\n")
    runner.on("create", stdout="c0ffee\n")
    return runner


def make(kind: str, runner: ScriptedRunner, **kwargs: object) -> OciCliRuntime:
    cls = PodmanRuntime if kind == "podman" else DockerRuntime
    return cls(runner, **kwargs)  # type: ignore[arg-type]


def args_of(runner: ScriptedRunner) -> list[list[str]]:
    """Every argv without the executable."""
    return [list(argv[1:]) for argv in runner.argvs()]


def test_check_asks_for_the_version_as_json(kind: str, runner: ScriptedRunner) -> None:
    runner.on("version", stdout='{"Client": {"Version": "9.9"}}')
    make(kind, runner).check()
    assert runner.argvs() == [(kind, "version", "--format", JSON[kind])]


def test_observation_is_one_filtered_call_per_kind(kind: str, runner: ScriptedRunner) -> None:
    runtime = make(kind, runner)
    runtime.list_containers(LABELS)
    runtime.list_volumes(LABELS)
    no_trunc = ["--no-trunc"] if kind == "docker" else []
    assert args_of(runner) == [
        ["ps", "-a", *no_trunc, "--filter", "label=dev.asbx.project=demo", "--format", JSON[kind]],
        ["volume", "ls", "--filter", "label=dev.asbx.project=demo", "--format", JSON[kind]],
    ]


def test_podman_lists_images_and_networks_in_one_call_each(runner: ScriptedRunner) -> None:
    runtime = make("podman", runner)
    runtime.list_images()
    runtime.list_networks(LABELS)
    assert args_of(runner) == [
        ["images", "--format", "json"],
        ["network", "ls", "--filter", "label=dev.asbx.project=demo", "--format", "json"],
    ]


def test_docker_lists_ids_then_inspects_them_in_one_call(runner: ScriptedRunner) -> None:
    runner.on("image", "ls", stdout="sha256:aa\nsha256:bb\nsha256:aa\n")
    runner.on("network", "ls", stdout="n1\n")
    runtime = make("docker", runner)
    runtime.list_images()
    runtime.list_networks(LABELS)
    assert args_of(runner) == [
        ["image", "ls", "-q", "--no-trunc"],
        ["image", "inspect", "sha256:aa", "sha256:bb"],
        ["network", "ls", "-q", "--no-trunc", "--filter", "label=dev.asbx.project=demo"],
        ["network", "inspect", "n1"],
    ]


def test_docker_with_no_images_makes_no_inspect_call(runner: ScriptedRunner) -> None:
    assert make("docker", runner).list_images() == []
    assert args_of(runner) == [["image", "ls", "-q", "--no-trunc"]]


def test_global_args_come_right_after_the_executable(kind: str, runner: ScriptedRunner) -> None:
    make(kind, runner, global_args=("--root", "/scratch")).start_container("box")
    assert runner.last == (kind, "--root", "/scratch", "start", "box")

# What every sandbox gets unless asked otherwise: no capability but asbx's default set.
LEAST_PRIVILEGE = [
    "--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE",
    "--cap-add", "FOWNER", "--cap-add", "FSETID", "--cap-add", "KILL", "--cap-add", "SETGID",
    "--cap-add", "SETUID", "--cap-add", "SETPCAP", "--cap-add", "NET_BIND_SERVICE",
    "--security-opt", "no-new-privileges",
]


def test_create_container_argv(kind: str, runner: ScriptedRunner) -> None:
    request = ContainerRequest(
        name="demo-web", image="localhost/demo:v1", command=("sleep", "infinity"),
        labels={**LABELS, "dev.asbx.address": "sandbox.web"}, cpus=1.5, memory=512 * 1024**2,
        mounts=(MountRequest("bind", "/home/me/ws", "/workspace"),
                MountRequest("volume", "cache", "/cache", readonly=True)),
        network="none", ports=(PortRequest("127.0.0.1", 8080, 80),), workdir="/workspace",
        user="1000:1000", hostname="web", dns=("10.0.0.1",))
    assert make(kind, runner).create_container(request) == "c0ffee"
    assert args_of(runner)[0] == [
        "create", "--name", "demo-web", "--init",
        "--label", "dev.asbx.project=demo", "--label", "dev.asbx.address=sandbox.web",
        "--cpus", "1.5", "--memory", "536870912",
        "--mount", "type=bind,source=/home/me/ws,target=/workspace",
        "--mount", "type=volume,source=cache,target=/cache,readonly",
        "--network", "none", "-p", "127.0.0.1:8080:80/tcp", "--dns", "10.0.0.1",
        "--hostname", "web", *LEAST_PRIVILEGE, "--workdir", "/workspace", "--user", "1000:1000",
        "localhost/demo:v1", "sleep", "infinity"]


def test_create_container_argv_grants_exactly_the_requested_capabilities(
        kind: str, runner: ScriptedRunner) -> None:
    request = ContainerRequest(name="demo-web", image="img", command=("sh",),
                               capabilities=("NET_RAW",), no_new_privileges=False)
    make(kind, runner).create_container(request)
    argv = args_of(runner)[0]
    assert argv[argv.index("--cap-drop"):argv.index("img")] == [
        "--cap-drop", "ALL", "--cap-add", "NET_RAW", "--workdir", "/workspace"]


def test_default_network_means_no_network_flag(kind: str, runner: ScriptedRunner) -> None:
    request = ContainerRequest(name="a", image="i", command=(), network="default", init=False)
    make(kind, runner).create_container(request)
    assert args_of(runner)[0] == ["create", "--name", "a", *LEAST_PRIVILEGE,
                                  "--workdir", "/workspace", "i"]


def test_start_creates_and_starts_in_one_run_call(kind: str, runner: ScriptedRunner) -> None:
    runner.on("run", stdout="c0ffee\n")
    request = ContainerRequest(name="a", image="i", command=("sh",), init=False, start=True)
    assert make(kind, runner).create_container(request) == "c0ffee"
    assert args_of(runner) == [["run", "-d", "--name", "a", "--network", "none",
                                *LEAST_PRIVILEGE, "--workdir", "/workspace", "i", "sh"]]


def test_env_goes_through_a_private_file_removed_after_create(kind: str,
                                                              runner: ScriptedRunner) -> None:
    seen: dict[str, object] = {}

    def capture(request: CommandRequest) -> tuple[int, str, str]:
        path = Path(request.argv[request.argv.index("--env-file") + 1])
        seen.update(path=path, mode=stat.S_IMODE(os.stat(path).st_mode), text=path.read_text())
        return 0, "id\n", ""

    runner.on("create", then=capture)
    request = ContainerRequest(name="a", image="i", command=(),
                               env={"TOKEN": "s3cr=t $HOME", "MULTI": "one\ntwo"})
    make(kind, runner).create_container(request)

    argv = runner.last
    assert "s3cr=t $HOME" not in " ".join(argv), "a secret must not show up in `ps`"
    assert seen["mode"] == 0o600
    assert seen["text"] == "TOKEN=s3cr=t $HOME\n"
    assert argv[argv.index("--env"):argv.index("--env") + 2] == ("--env", "MULTI=one\ntwo")
    assert not Path(str(seen["path"])).exists()


def test_lifecycle_argv(kind: str, runner: ScriptedRunner) -> None:
    runtime = make(kind, runner)
    runtime.start_container("box")
    runtime.stop_container("box", timeout=2.5)
    runtime.remove_container("box")
    runtime.remove_container("box", force=False)
    assert args_of(runner) == [["start", "box"], ["stop", "-t", "3", "box"],
                               ["rm", "-v", "-f", "box"], ["rm", "-v", "box"]]


def test_exec_argv_with_stdin_env_workdir_user_and_timeout(kind: str,
                                                           runner: ScriptedRunner) -> None:
    runner.on("exec", stdout="out\n", returncode=3)
    result = make(kind, runner).exec("box", ("cat", "-"), env={"A": "1"}, workdir="/w",
                                     user="app", stdin=b"data", timeout=5)
    assert (result.exit_code, result.stdout) == (3, "out\n")
    request = runner.requests[0]
    args = list(request.argv[1:])
    marker = next(a for a in args if a.startswith(EXEC_MARKER + "="))
    assert args == ["exec", "-i", "--env-file", args[3], "--env", marker,
                    "--workdir", "/w", "--user", "app", "box", "cat", "-"]
    assert (request.stdin, request.timeout) == (b"data", 5)


def test_exec_without_stdin_or_timeout_is_plain(kind: str, runner: ScriptedRunner) -> None:
    make(kind, runner).exec("box", ("true",))
    assert args_of(runner) == [["exec", "box", "true"]]
    assert runner.requests[0].timeout is None


def test_a_timed_out_exec_returns_124_and_kills_its_marked_processes(
        kind: str, runner: ScriptedRunner) -> None:
    runner.on("exec", "--env", returncode=124, timed_out=True)
    result = make(kind, runner).exec("box", ("sleep", "60"), timeout=1)
    assert result.exit_code == 124
    marker = runner.argvs()[0][3]
    kill = args_of(runner)[1]
    assert kill[:4] == ["exec", "box", "sh", "-c"]
    assert kill[-2:] == ["sh", marker], "the marker is an argument, never spliced into the script"


def test_interactive_exec_and_logs_argv(kind: str, runner: ScriptedRunner) -> None:
    runtime = make(kind, runner)
    assert runtime.exec_argv("box", ("sh",), tty=True, interactive=True, env={"A": "b"},
                             workdir="/workspace", user="1000") == [
        kind, "exec", "-i", "-t", "--env", "A=b", "--workdir", "/workspace", "--user", "1000",
        "box", "sh"]
    assert runtime.logs_argv("box", follow=True, tail=50) == [
        kind, "logs", "--follow", "--tail", "50", "box"]
    assert runtime.logs_argv("box", follow=False, tail=None) == [kind, "logs", "box"]
    assert runner.requests == [], "argv builders run nothing"


def test_pull_then_inspect(kind: str, runner: ScriptedRunner) -> None:
    make(kind, runner).pull("127.0.0.1:5000/demo:v1", platform="linux/amd64")
    assert args_of(runner) == [["pull", "--platform", "linux/amd64", "127.0.0.1:5000/demo:v1"],
                               ["image", "inspect", "127.0.0.1:5000/demo:v1"]]
    assert runner.requests[0].timeout is None, "a pull may take as long as it takes"


def test_build_argv_reads_the_image_id_from_the_iidfile(kind: str, runner: ScriptedRunner,
                                                       tmp_path: Path) -> None:
    def build(request: CommandRequest) -> tuple[int, str, str]:
        Path(request.argv[request.argv.index("--iidfile") + 1]).write_text("sha256:" + "a" * 64)
        return 0, "STEP 1/1\n", ""

    runner.on("build", then=build)
    request = BuildRequest(context=tmp_path, dockerfile=tmp_path / "Dockerfile",
                           tags=("localhost/demo:v1", "localhost/demo:latest"),
                           args={"V": "1"}, target="final", labels=LABELS,
                           platform="linux/arm64", pull=True)
    lines: list[str] = []
    image = make(kind, runner).build(request, on_output=lambda _s, t: lines.append(t))

    build_args, inspect_args = args_of(runner)
    iidfile = build_args[4]
    pull = "--pull=always" if kind == "podman" else "--pull"
    assert build_args == [
        "build", "-f", str(tmp_path / "Dockerfile"), "--iidfile", iidfile,
        "-t", "localhost/demo:v1", "-t", "localhost/demo:latest", "--build-arg", "V=1",
        "--target", "final", "--label", "dev.asbx.project=demo", "--platform", "linux/arm64",
        pull, str(tmp_path)]
    assert inspect_args == ["image", "inspect", "sha256:" + "a" * 64]
    assert image.names == ("localhost/demo:v1",)
    assert lines == ["STEP 1/1\n"]


def test_image_volume_and_network_argv(kind: str, runner: ScriptedRunner) -> None:
    runtime = make(kind, runner)
    runtime.inspect_image("localhost/demo:v1")
    runtime.remove_image("localhost/demo:v1")
    runtime.create_volume("cache", LABELS)
    runtime.remove_volume("cache")
    runtime.create_network("n", LABELS, internal=False)
    runtime.remove_network("n")
    assert args_of(runner) == [
        ["image", "inspect", "localhost/demo:v1"], ["image", "rm", "localhost/demo:v1"],
        ["volume", "create", "--label", "dev.asbx.project=demo", "cache"],
        ["volume", "rm", "cache"],
        ["network", "create", "--label", "dev.asbx.project=demo", "n"],
        ["network", "inspect", "n"], ["network", "rm", "n"]]


PODMAN_NETWORK = ('[{"name": "n", "internal": true, "labels": {}, '
                  '"subnets": [{"subnet": "10.89.3.0/24", "gateway": "10.89.3.1"}]}]')


def test_podman_internal_network_has_no_dns_and_keeps_its_gateway() -> None:
    runner = ScriptedRunner()
    runner.on("network", "inspect", stdout=PODMAN_NETWORK)
    network = make("podman", runner).create_network("n", LABELS, internal=True)
    assert args_of(runner) == [
        ["network", "create", "--internal", "--label", "dev.asbx.project=demo", "n"],
        ["network", "inspect", "n"], ["network", "rm", "n"],
        ["network", "create", "--internal", "--disable-dns", "--subnet", "10.89.3.0/24",
         "--gateway", "10.89.3.1", "--label", "dev.asbx.project=demo", "n"],
        ["network", "inspect", "n"]]
    assert network.gateway == "10.89.3.1"


def test_requests_they_cannot_express_are_refused_before_running(kind: str,
                                                                 runner: ScriptedRunner) -> None:
    runtime = make(kind, runner)
    with pytest.raises(AsbxError, match="size"):
        runtime.create_volume("cache", LABELS, size=1024)
    comma = ContainerRequest(name="a", image="i", command=(),
                             mounts=(MountRequest("bind", "/a,b", "/w"),))
    with pytest.raises(AsbxError, match="comma"):
        runtime.create_container(comma)
    assert runner.requests == []


def test_podman_refuses_volume_labels_its_cli_would_split(runner: ScriptedRunner) -> None:
    with pytest.raises(AsbxError, match="comma"):
        make("podman", runner).create_volume("cache", {"team": "a,b"})
    make("docker", runner).create_volume("cache", {"team": "a,b"})
    assert args_of(runner) == [["volume", "create", "--label", "team=a,b", "cache"]]


@pytest.mark.parametrize(
    ("port", "arg"),
    [
        (PortRequest("127.0.0.1", 8080, 80), "127.0.0.1:8080:80/tcp"),
        (PortRequest("0.0.0.0", 53, 53, "udp"), "0.0.0.0:53:53/udp"),
        (PortRequest("::1", 8080, 80), "[::1]:8080:80/tcp"),  # podman refuses ::1:8080:80
    ],
)
def test_port_arg_brackets_ipv6_host_addresses(port: PortRequest, arg: str) -> None:
    assert port_arg(port) == arg
