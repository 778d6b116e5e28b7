"""The fake `container` CLI: documented flags only (exit 64 otherwise), documented errors, and the
Apple backend driving it end to end in both JSON eras."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asbx.errors import NotFoundError, RuntimeCommandError, RuntimeUnavailableError
from asbx.runtime.apple import AppleRuntime
from asbx.runtime.base import (
    LABEL_PROJECT,
    BuildRequest,
    ContainerRequest,
    ContainerState,
    MountRequest,
)
from asbx.runtime.command import CommandRequest, CommandResult, SubprocessRunner
from asbx.runtime.pull_errors import PullCause, PullError

FAKE = Path(__file__).parents[2] / "fakes" / "container"
Cli = Callable[..., CommandResult]


def make_cli(tmp_path: Path, version: str, service: str = "running") -> Cli:
    env = {"ASBX_FAKE_CONTAINER_STATE": str(tmp_path / "state.json"),
           "ASBX_FAKE_CONTAINER_VERSION": version, "ASBX_FAKE_CONTAINER_SERVICE": service}
    runner = SubprocessRunner()
    tmp_path.mkdir(parents=True, exist_ok=True)

    def cli(*args: str, stdin: bytes | None = None) -> CommandResult:
        return runner(CommandRequest(argv=(sys.executable, str(FAKE), *args), env=env,
                                     stdin=stdin, cwd=str(tmp_path), timeout=30))

    return cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path, "1.2.2")


@pytest.fixture
def base(cli: Cli, tmp_path: Path) -> str:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nENV BASE=1\nWORKDIR /srv\n")
    result = cli("build", "-f", str(context / "Dockerfile"), "-t", "base", str(context))
    assert result.returncode == 0, result.stderr
    return "base"


# ----------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args", [
    ("list", "--filter", "label=a=b"),
    ("create", "--restart", "always", "base"),
    ("create", "--memory-swap", "1g", "base"),
    ("create", "--hostname", "h", "base"),
    ("run", "--pids-limit", "10", "base"),
    ("exec", "--privileged", "x", "true"),
    ("stop", "--timeout", "3", "x"),
    ("volume", "create", "--size", "1G", "v"),
    ("network", "create", "--driver", "bridge", "n"),
    ("image", "pull", "--all-tags", "alpine"),
    ("system", "status", "--verbose"),
])
def test_undocumented_flags_are_usage_errors(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)

    assert result.returncode == 64
    assert "Error: Unknown option" in result.stderr
    assert "Usage: container" in result.stderr


def test_unknown_subcommand_is_a_missing_plugin(cli: Cli) -> None:
    result = cli("pull", "alpine")

    assert result.returncode == 64
    assert result.stderr.startswith("Error: Plugin 'container-pull' not found.")


def test_unknown_group_subcommand_is_a_usage_error(cli: Cli) -> None:
    assert cli("volume", "resize", "v").returncode == 64


def test_cpus_must_be_an_integer(cli: Cli) -> None:
    result = cli("create", "--name", "box", "--cpus", "0.5", "base")

    assert result.returncode == 64
    assert "The value '0.5' is invalid for '-c, --cpus <cpus>'" in result.stderr


@pytest.mark.parametrize(("version", "flag", "accepted"), [
    ("1.2.2", "--shm-size=64m", True),
    ("0.12.3", "--shm-size=64m", False),
    ("0.12.3", "--init", True),
    ("0.9.0", "--init", False),
])
def test_flags_follow_the_version_timeline(tmp_path: Path, version: str, flag: str,
                                           accepted: bool) -> None:
    cli = make_cli(tmp_path, version)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    assert cli("build", "-t", "base", str(context)).returncode == 0

    result = cli("create", "--name", "box", flag, "base")

    assert (result.returncode == 0) is accepted, result.stderr
    assert (result.returncode == 64) is not accepted


def test_version_line_matches_the_real_format(tmp_path: Path) -> None:
    result = make_cli(tmp_path, "0.12.3")("--version")

    assert result.stdout == "container CLI version 0.12.3 (build: release, commit: fake000)\n"


# ----------------------------------------------------------------------------- documented errors


def test_documented_container_errors(cli: Cli, base: str) -> None:
    assert cli("create", "--name", "web", base, "sleep", "infinity").stdout == "web\n"

    assert 'exists: "container already exists: web"' in cli("create", "--name", "web",
                                                            base).stderr
    assert 'exists: "container with id web already exists"' in cli("run", "-d", "--name",
                                                                   "web", base).stderr
    exec_stopped = cli("exec", "web", "true")
    assert exec_stopped.returncode == 1
    assert 'invalidState: "container web is not running"' in exec_stopped.stderr
    assert cli("start", "web").returncode == 0
    running_delete = cli("delete", "web")
    assert running_delete.returncode == 1
    assert "container web is running and can not be deleted" in running_delete.stderr
    assert 'notFound: "get failed: container nope not found"' in cli("start", "nope").stderr
    assert "container with ID nope not found" in cli("stop", "nope").stderr
    assert cli("delete", "-f", "web").stdout == "web\n"


def test_documented_validation_errors(cli: Cli, base: str) -> None:
    memory = cli("create", "--name", "mem", "--memory", "100m", base)
    label = cli("create", "--name", "lab", "--label", "k=a=b", base)
    name = cli("create", "--name", "n" * 64, base)

    assert 'minimum memory amount allowed is 200 MiB (got 104857600 bytes)' in memory.stderr
    assert "invalid label format" in label.stderr
    assert "is not a valid container ID" in name.stderr
    assert (memory.returncode, label.returncode, name.returncode) == (1, 1, 1)


def test_a_volume_attaches_to_one_running_container(cli: Cli, base: str) -> None:
    assert cli("volume", "create", "shared").stdout == "shared\n"
    for name in ("box-a", "box-b"):
        assert cli("create", "--name", name, "-v", "shared:/data", base).returncode == 0
    assert cli("start", "box-a").returncode == 0

    second = cli("start", "box-b")
    in_use = cli("volume", "delete", "shared")

    assert second.returncode == 1
    assert "The storage device attachment is invalid" in second.stderr
    assert "is currently in use and cannot be accessed by another container" in in_use.stderr


def test_stopped_service(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, "1.2.2", service="stopped")

    status = cli("system", "status")
    listing = cli("list", "--all", "--format", "json")

    assert status.returncode == 1
    assert "not running" in status.stdout
    assert listing.returncode == 1
    assert "container system start" in listing.stderr
    assert cli("system", "start", "--enable-kernel-install").returncode == 0
    assert cli("system", "status").returncode == 0


def test_inspect_missing_differs_by_era(tmp_path: Path) -> None:
    new, old = make_cli(tmp_path / "new", "1.2.2"), make_cli(tmp_path / "old", "0.12.3")

    assert 'container not found: aa, bb' in new("inspect", "aa", "bb").stderr
    assert (old("inspect", "a").returncode, old("inspect", "a").stdout.strip()) == (0, "[]")


@pytest.mark.parametrize(("version", "status"), [("1.2.2", {"state": "stopped", "networks": []}),
                                                 ("0.12.3", "stopped")])
def test_json_shapes_follow_the_era(tmp_path: Path, version: str, status: object) -> None:
    cli = make_cli(tmp_path, version)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    cli("build", "-t", "base", str(context))
    cli("create", "--name", "box", "base")

    [item] = json.loads(cli("list", "--all", "--format", "json").stdout)

    assert item["status"] == status
    assert item["configuration"]["id"] == "box"
    assert ("creationDate" in item["configuration"]) is (version == "1.2.2")


# ----------------------------------------------------------------------------- the backend over it


@pytest.fixture(params=["1.2.2", "0.12.3"])
def apple(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> AppleRuntime:
    monkeypatch.setenv("ASBX_FAKE_CONTAINER_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("ASBX_FAKE_CONTAINER_VERSION", request.param)
    monkeypatch.delenv("ASBX_FAKE_CONTAINER_SERVICE", raising=False)
    return AppleRuntime(SubprocessRunner(), str(FAKE), warn=lambda _: None)


def test_backend_end_to_end_over_the_fake(apple: AppleRuntime, tmp_path: Path) -> None:
    labels = {LABEL_PROJECT: "demo"}
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nLABEL dev.asbx.project=demo\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()

    assert apple.check() in ("1.2.2", "0.12.3")
    image = apple.build(BuildRequest(context=context, dockerfile=context / "Dockerfile",
                                     tags=("demo-base",), labels=labels))
    apple.create_volume("demo-cache", labels, size=1 << 30)
    apple.create_container(ContainerRequest(
        name="demo-box", image="demo-base", command=("tail", "-f", "/dev/null"), labels=labels,
        env={"TOKEN": "s3cret"}, cpus=0.5, memory=256 << 20,
        mounts=(MountRequest("bind", str(workspace), "/workspace"),
                MountRequest("volume", "demo-cache", "/cache"))))
    apple.start_container("demo-box")

    result = apple.exec("demo-box", ("sh", "-c", "echo $TOKEN $EXTRA; pwd; cat > f.txt; exit 3"),
                        env={"EXTRA": "x"}, stdin=b"payload")

    assert (result.exit_code, result.stdout) == (3, "s3cret x\n/workspace\n")
    assert (workspace / "f.txt").read_text() == "payload"
    assert apple.exec("demo-box", ("sleep", "10"), timeout=0.5).exit_code == 124
    [box] = apple.list_containers(labels)
    assert (box.name, box.state, box.image_id) == ("demo-box", ContainerState.RUNNING, image.id)
    assert [v.name for v in apple.list_volumes(labels)] == ["demo-cache"]
    assert image.names == ("docker.io/library/demo-base:latest",)
    assert image.labels == labels
    apple.stop_container("demo-box", timeout=1)
    with pytest.raises(RuntimeCommandError, match="is not running"):
        apple.exec("demo-box", ("true",))
    apple.remove_container("demo-box")
    apple.remove_volume("demo-cache")
    apple.remove_image(image.id)
    assert apple.list_containers(labels) == []
    assert apple.inspect_image("demo-base") is None


def test_backend_errors_over_the_fake(apple: AppleRuntime) -> None:
    for call in (lambda: apple.start_container("ghost"), lambda: apple.stop_container("ghost"),
                 lambda: apple.remove_container("ghost"), lambda: apple.remove_volume("ghost"),
                 lambda: apple.remove_image("ghost"), lambda: apple.exec("ghost", ("true",))):
        with pytest.raises(NotFoundError):
            call()


def test_backend_reports_a_stopped_service(apple: AppleRuntime,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASBX_FAKE_CONTAINER_SERVICE", "stopped")

    with pytest.raises(RuntimeUnavailableError) as caught:
        apple.check()
    assert caught.value.hint == "run: container system start --enable-kernel-install"


def test_backend_reports_a_missing_cli(tmp_path: Path) -> None:
    apple = AppleRuntime(SubprocessRunner(), str(tmp_path / "no-such-container"))

    with pytest.raises(RuntimeUnavailableError, match="not installed"):
        apple.check()


# ----------------------------------------------------------------------------- pull (loopback only)


@pytest.fixture
def tiny_registry() -> Iterator[str]:
    """A loopback OCI registry serving one image, demo/tool:v1, built in memory."""
    config = json.dumps({"architecture": "arm64", "os": "linux",
                         "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"],
                                    "Labels": {"org.example": "tool"}}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": []}).encode()
    routes = {"/v2/demo/tool/manifests/v1": manifest,
              f"/v2/demo/tool/blobs/{config_digest}": config}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes.get(self.path)
            self.send_response(200 if body else 404)
            if body:
                self.send_header("Docker-Content-Digest",
                                 "sha256:" + hashlib.sha256(body).hexdigest())
            self.end_headers()
            self.wfile.write(body or b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_backend_pulls_from_a_loopback_registry(apple: AppleRuntime, tiny_registry: str) -> None:
    image = apple.pull(f"{tiny_registry}/demo/tool:v1")

    assert image.names == (f"{tiny_registry}/demo/tool:v1",)
    assert image.digest.startswith("sha256:")
    assert image.labels == {"org.example": "tool"}


def test_pull_of_a_missing_image_shows_the_registry_answer(cli: Cli, tiny_registry: str) -> None:
    result = cli("image", "pull", f"{tiny_registry}/demo/nope:v1")

    assert result.returncode == 1
    assert "failed with response: 404 Not Found" in result.stderr


def test_backend_reports_a_missing_image_in_one_sentence(apple: AppleRuntime,
                                                         tiny_registry: str) -> None:
    ref = f"{tiny_registry}/demo/nope:v1"
    with pytest.raises(PullError) as caught:
        apple.pull(ref)

    assert caught.value.cause is PullCause.NOT_FOUND
    assert caught.value.message == (f"cannot pull {ref}: the registry {tiny_registry} has no such "
                                    "image or tag (manifest unknown)")
    assert "404 Not Found" in caught.value.output


def test_the_fake_never_contacts_other_registries(cli: Cli) -> None:
    result = cli("image", "pull", "docker.io/library/alpine:latest")

    assert result.returncode == 1
    assert "reaches only registries on loopback" in result.stderr
