"""One set of runtime scenarios, run against the fake and every real backend in backends.py."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asbx.errors import NameConflictError, NotFoundError, RuntimeCommandError
from asbx.images import pin_reference
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_PROJECT,
    BuildRequest,
    ContainerRequest,
    ContainerState,
    MountRequest,
    PortRequest,
    Runtime,
)
from asbx.runtime.pull_errors import PullCause, PullError
from asbx.spec import capabilities
from tests.contract.backends import BACKENDS, Backend, remove_labelled, require
from tests.fakes.runtime import FakeRuntime

MIB = 1024 * 1024
FAKE_REGISTRY = "registry.fake.test:5000"


def _params(only_executing: bool) -> list[object]:
    return [pytest.param(name, id=name,
                         marks=[pytest.mark.integration] if backend.real else [])
            for name, backend in BACKENDS.items() if backend.executes or not only_executing]


@dataclass
class Ctx:
    """A runtime under test plus this test's unique project, names and base image."""

    runtime: Runtime
    backend: Backend
    labels: dict[str, str]
    image: str

    @property
    def project(self) -> str:
        return self.labels[LABEL_PROJECT]

    def name(self, suffix: str) -> str:
        return f"{self.project}-{suffix}"

    def sandbox(self, suffix: str = "box", **fields: object) -> ContainerRequest:
        fields.setdefault("labels", {**self.labels, LABEL_ADDRESS: f"sandbox.{suffix}"})
        fields.setdefault("workdir", "/")
        fields.setdefault("image", self.image)
        return ContainerRequest(name=self.name(suffix), command=("sleep", "infinity"),
                                **fields)

    def running(self, suffix: str = "box", **fields: object) -> str:
        name = self.name(suffix)
        self.runtime.create_container(self.sandbox(suffix, **fields))
        self.runtime.start_container(name)
        return name

    def sh(self, name: str, script: str) -> str:
        result = self.runtime.exec(name, ("sh", "-c", script), timeout=30)
        assert result.exit_code == 0, result
        return result.stdout


def _open(name: str, labels: dict[str, str], base_image: str) -> Iterator[Ctx]:
    backend = BACKENDS[name]
    reason = backend.unavailable()
    if reason is not None:
        require(f"runtime {name} is not available: {reason}")
    runtime = backend.factory()
    if backend.real and runtime.inspect_image(base_image) is None:
        require(f"{base_image} is missing in {name}: run scripts/build-base-image")
    try:
        yield Ctx(runtime, backend, labels, base_image)
    finally:
        remove_labelled(runtime, labels)


@pytest.fixture(params=_params(only_executing=False))
def ctx(request: pytest.FixtureRequest, project_label: dict[str, str],
        base_image: str) -> Iterator[Ctx]:
    yield from _open(request.param, project_label, base_image)


@pytest.fixture(params=_params(only_executing=True))
def live(request: pytest.FixtureRequest, project_label: dict[str, str],
         base_image: str) -> Iterator[Ctx]:
    """Only backends whose exec really runs commands: tests that look inside a container."""
    yield from _open(request.param, project_label, base_image)


# -- health, volumes, networks


def test_check_reports_a_version(ctx: Ctx) -> None:
    assert re.search(r"\d", ctx.runtime.check())


def test_volume_create_list_remove(ctx: Ctx) -> None:
    name = ctx.name("data")
    ctx.runtime.create_volume(name, {**ctx.labels, "team": "ml"})

    found = ctx.runtime.list_volumes(ctx.labels)
    assert [v.name for v in found] == [name]
    assert found[0].labels["team"] == "ml"

    ctx.runtime.remove_volume(name)
    assert ctx.runtime.list_volumes(ctx.labels) == []
    with pytest.raises(NotFoundError):
        ctx.runtime.remove_volume(name)


def test_internal_network_create_list_remove(ctx: Ctx) -> None:
    name = ctx.name("net")
    network = ctx.runtime.create_network(name, ctx.labels, internal=True)
    assert (network.name, network.internal) == (name, True)
    assert network.subnet

    assert [n.name for n in ctx.runtime.list_networks(ctx.labels)] == [name]
    ctx.runtime.remove_network(name)
    assert ctx.runtime.list_networks(ctx.labels) == []
    with pytest.raises(NotFoundError):
        ctx.runtime.remove_network(name)


# -- containers


def test_container_lifecycle_create_start_stop_remove(ctx: Ctx, tmp_path: Path) -> None:
    volume = ctx.name("cache")
    ctx.runtime.create_volume(volume, ctx.labels)
    memory = max(64 * MIB, ctx.runtime.capabilities.min_memory)
    request = ctx.sandbox(cpus=1, memory=memory, network="none", mounts=(
        MountRequest("bind", str(tmp_path), "/workspace"),
        MountRequest("volume", volume, "/cache")))

    container_id = ctx.runtime.create_container(request)
    [created] = ctx.runtime.list_containers(ctx.labels)
    assert (created.id, created.name, created.state) == (container_id, request.name,
                                                        ContainerState.STOPPED)
    assert request.labels.items() <= created.labels.items()

    ctx.runtime.start_container(request.name)
    assert _state(ctx, request.name) is ContainerState.RUNNING

    started = time.monotonic()
    ctx.runtime.stop_container(request.name, timeout=10)
    assert time.monotonic() - started < 2.0, "stop must not wait for the timeout (--init)"
    assert _state(ctx, request.name) is ContainerState.STOPPED
    ctx.runtime.stop_container(request.name)  # stopping a stopped container is fine

    ctx.runtime.start_container(request.name)
    assert _state(ctx, request.name) is ContainerState.RUNNING
    ctx.runtime.remove_container(request.name, force=True)
    assert ctx.runtime.list_containers(ctx.labels) == []
    with pytest.raises(NotFoundError):
        ctx.runtime.remove_container(request.name)


def _state(ctx: Ctx, name: str) -> ContainerState:
    [found] = [c for c in ctx.runtime.list_containers(ctx.labels) if c.name == name]
    return found.state


def test_list_by_label_returns_only_ours(ctx: Ctx) -> None:
    other = {LABEL_PROJECT: ctx.project + "-other"}
    ctx.runtime.create_container(ctx.sandbox("a"))
    ctx.runtime.create_container(ctx.sandbox("b"))
    ctx.runtime.create_container(ctx.sandbox("c", labels=other))
    try:
        assert sorted(c.name for c in ctx.runtime.list_containers(ctx.labels)) == [
            ctx.name("a"), ctx.name("b")]
        both = {**ctx.labels, LABEL_ADDRESS: "sandbox.b"}  # several labels: all must match
        assert [c.name for c in ctx.runtime.list_containers(both)] == [ctx.name("b")]
    finally:
        remove_labelled(ctx.runtime, other)


def test_a_taken_name_is_refused(ctx: Ctx) -> None:
    ctx.runtime.create_container(ctx.sandbox())
    with pytest.raises(NameConflictError):  # apply treats it as drift (steps._create_container)
        ctx.runtime.create_container(ctx.sandbox())


def test_removing_a_running_container_needs_force(ctx: Ctx) -> None:
    name = ctx.running()
    with pytest.raises(RuntimeCommandError):
        ctx.runtime.remove_container(name, force=False)
    ctx.runtime.remove_container(name, force=True)
    assert ctx.runtime.list_containers(ctx.labels) == []


def test_missing_objects_raise_not_found(ctx: Ctx) -> None:
    missing = ctx.name("missing")
    for call in (lambda: ctx.runtime.start_container(missing),
                 lambda: ctx.runtime.stop_container(missing),
                 lambda: ctx.runtime.remove_container(missing),
                 lambda: ctx.runtime.exec(missing, ("true",)),
                 lambda: ctx.runtime.remove_volume(missing),
                 lambda: ctx.runtime.remove_network(missing),
                 lambda: ctx.runtime.remove_image(f"localhost/{missing}:none")):
        with pytest.raises(NotFoundError):
            call()
    assert ctx.runtime.inspect_image(f"localhost/{missing}:none") is None


def test_exec_needs_a_running_container(ctx: Ctx) -> None:
    ctx.runtime.create_container(ctx.sandbox())
    with pytest.raises(RuntimeCommandError):
        ctx.runtime.exec(ctx.name("box"), ("true",))
    ctx.runtime.start_container(ctx.name("box"))
    assert ctx.runtime.exec(ctx.name("box"), ("true",)).exit_code == 0


# -- inside a running sandbox (backends that really execute)


def test_sandbox_limits_mounts_and_no_network_inside(live: Ctx, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("from the host\n")
    volume = live.name("cache")
    live.runtime.create_volume(volume, live.labels)
    name = live.running(cpus=0.5, memory=64 * MIB, network="none", mounts=(
        MountRequest("bind", str(tmp_path), "/workspace"),
        MountRequest("bind", str(tmp_path), "/readonly", readonly=True),
        MountRequest("volume", volume, "/cache")))

    interfaces = re.findall(r"^\s*(\w+):", live.sh(name, "cat /proc/net/dev"), re.MULTILINE)
    assert interfaces == ["lo"]
    assert live.sh(name, "cat /workspace/hello.txt") == "from the host\n"
    assert live.sh(name, "echo written > /cache/probe && cat /cache/probe") == "written\n"
    assert live.runtime.exec(name, ("touch", "/readonly/x")).exit_code != 0
    memory = live.sh(name, "cat /sys/fs/cgroup/memory.max 2>/dev/null"
                           " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(memory) == 64 * MIB
    assert _cpu_limit(live, name) == pytest.approx(0.5)


def _memory_limit(live: Ctx, name: str) -> int:
    return int(live.sh(name, "cat /sys/fs/cgroup/memory.max 2>/dev/null"
                             " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"))


def test_limits_read_back_and_updated_in_place_where_the_runtime_keeps_them(live: Ctx) -> None:
    name = live.running(cpus=0.5, memory=64 * MIB)
    assert live.runtime.container_limits(name) == (0.5, 64 * MIB)
    # what a plan goes by: the capabilities refined by the runtime's version
    if live.runtime.probe_capabilities().limits_update_blocker:
        # The stated reason must hold: whatever an update does to the running cgroup, the
        # container's configuration keeps the old limits (if a runtime starts keeping the new
        # ones, this fails and its blocker can go).
        live.runtime.update_limits(name, 1.0, 128 * MIB)
        assert live.runtime.container_limits(name) == (0.5, 64 * MIB)
        live.runtime.stop_container(name, timeout=0)
        live.runtime.start_container(name)
        assert _memory_limit(live, name) == 64 * MIB
        return
    before = live.runtime.list_containers(live.labels)[0].id
    live.runtime.update_limits(name, 1.0, 128 * MIB)
    assert live.runtime.container_limits(name) == (1.0, 128 * MIB)
    assert _memory_limit(live, name) == 128 * MIB
    live.runtime.stop_container(name, timeout=0)
    live.runtime.start_container(name)  # kept in its configuration, not only the live cgroup
    assert _memory_limit(live, name) == 128 * MIB
    assert _cpu_limit(live, name) == pytest.approx(1.0)
    assert live.runtime.list_containers(live.labels)[0].id == before


def test_a_sandbox_gets_exactly_its_capabilities_and_no_new_privileges(live: Ctx) -> None:
    def status(name: str) -> dict[str, str]:
        lines = live.sh(name, "cat /proc/self/status").splitlines()
        return dict(line.split(":\t", 1) for line in lines if ":\t" in line)

    default = status(live.running("least"))
    assert int(default["CapEff"], 16) == capabilities.mask(capabilities.DEFAULT)
    assert int(default["CapBnd"], 16) == capabilities.mask(capabilities.DEFAULT)
    assert default["NoNewPrivs"].strip() == "1"
    added = status(live.running("raw", capabilities=capabilities.effective(["NET_RAW"])))
    assert int(added["CapEff"], 16) == capabilities.mask(capabilities.DEFAULT) | 1 << 13
    assert live.runtime.exec(live.name("least"), ("ping", "-c", "1", "127.0.0.1"),
                             timeout=30).exit_code != 0
    assert live.runtime.exec(live.name("raw"), ("ping", "-c", "1", "127.0.0.1"),
                             timeout=30).exit_code == 0


def _cpu_limit(ctx: Ctx, name: str) -> float:
    text = ctx.sh(name, "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "
                        "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"
                        " $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)")
    quota, period = text.split()
    return int(quota) / int(period)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def _host_address() -> str:
    """The default-route interface's IPv4 address (a UDP route lookup sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))
        return str(probe.getsockname()[0])


def _answer(address: str, port: int, wait: float) -> str | None:
    """The server's reply to GET / within `wait` seconds, or None when none comes."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((address, port), timeout=2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                if chunks:
                    return b"".join(chunks).decode("latin-1")
        except OSError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


SERVE = ("sh", "-c", "mkdir -p /www && echo served > /www/index.html && httpd -f -p 80 -h /www")


def test_published_port_answers_on_its_host_address_only(live: Ctx) -> None:
    port = _free_port()
    live.runtime.create_container(dataclasses.replace(
        live.sandbox(network="default", ports=(PortRequest("127.0.0.1", port, 80),)),
        command=SERVE))
    live.runtime.start_container(live.name("box"))
    reply = _answer("127.0.0.1", port, wait=10)
    assert reply is not None
    assert "served" in reply
    assert _answer(_host_address(), port, wait=0) is None


def test_published_port_on_an_internal_network_is_not_forwarded(live: Ctx) -> None:
    """Why asbx refuses ports on allowlist sandboxes: their network is internal."""
    network = live.name("internal")
    live.runtime.create_network(network, live.labels, internal=True)
    port = _free_port()
    live.runtime.create_container(dataclasses.replace(
        live.sandbox(network=network, ports=(PortRequest("127.0.0.1", port, 80),)),
        command=SERVE))
    name = live.name("box")
    live.runtime.start_container(name)
    assert "served" in live.sh(name, "sleep 0.5; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
                                     "nc -w 3 127.0.0.1 80")
    assert _answer("127.0.0.1", port, wait=2) is None


def test_exec_env_workdir_user_stdin_and_exit_code(live: Ctx) -> None:
    name = live.running()
    result = live.runtime.exec(
        name, ("sh", "-c", 'echo "$GREETING|$(pwd)|$(id -u)"; cat; exit 7'),
        env={"GREETING": "hello world"}, workdir="/bin",
        user="65534", stdin=b"from stdin\n", timeout=30)
    assert result.exit_code == 7
    assert result.stdout == "hello world|/bin|65534\nfrom stdin\n"
    quoted = live.runtime.exec(name, ("sh", "-c", 'printf %s "$QUOTED"'),
                               env={"QUOTED": "it's \"$HOME\""})
    assert quoted.stdout == "it's \"$HOME\""


def test_exec_streams_output_as_it_arrives(live: Ctx) -> None:
    name = live.running()
    seen: list[tuple[str, str]] = []
    result = live.runtime.exec(name, ("sh", "-c", "echo one; echo two >&2; echo three"),
                               on_output=lambda stream, text: seen.append((stream, text)))
    assert result.stdout == "one\nthree\n"
    assert ("stderr", "two\n") in seen
    assert [text for stream, text in seen if stream == "stdout"] == ["one\n", "three\n"]


def test_exec_timeout_gives_124_and_kills_the_command(live: Ctx) -> None:
    name = live.running()
    started = time.monotonic()
    result = live.runtime.exec(name, ("sleep", "31"), timeout=1)
    assert result.exit_code == 124
    assert time.monotonic() - started < 6
    assert "sleep 31" not in live.sh(name, "ps")


def test_command_output_is_not_mistaken_for_a_runtime_error(live: Ctx) -> None:
    name = live.running()
    result = live.runtime.exec(name, ("sh", "-c", "echo 'Error: no such container' >&2; exit 1"))
    assert (result.exit_code, result.stderr) == (1, "Error: no such container\n")
    assert live.runtime.exec(name, ("no-such-program",)).exit_code in (126, 127)


# -- images


def test_build_an_image_from_a_dockerfile(ctx: Ctx, tmp_path: Path) -> None:
    (tmp_path / "greeting.txt").write_text("copied\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        f"FROM {ctx.image} AS base\nRUN echo base > /stage\n"
        f"FROM {ctx.image} AS final\nARG GREETING=unset\nCOPY greeting.txt /greeting.txt\n"
        "RUN echo \"$GREETING\" > /arg.txt\n")
    tag = f"localhost/asbxtest/{ctx.project}:v1"
    lines: list[str] = []
    image = ctx.runtime.build(
        BuildRequest(context=tmp_path, dockerfile=dockerfile, tags=(tag,),
                     args={"GREETING": "hi"}, target="final", labels=ctx.labels),
        on_output=lambda _stream, text: lines.append(text))

    assert tag in image.names
    assert ctx.labels.items() <= image.labels.items()
    assert lines, "build output is streamed"
    inspected = ctx.runtime.inspect_image(tag)
    assert inspected is not None
    assert inspected.id == image.id
    assert image.id in {i.id for i in ctx.runtime.list_images()}
    if ctx.backend.executes:
        name = ctx.running(image=tag)
        assert ctx.sh(name, "cat /arg.txt /greeting.txt") == "hi\ncopied\n"
        assert ctx.runtime.exec(name, ("cat", "/stage")).exit_code != 0  # target honoured
        ctx.runtime.remove_container(name)

    ctx.runtime.remove_image(tag)
    assert ctx.runtime.inspect_image(tag) is None


@pytest.fixture
def pull_ref(ctx: Ctx, request: pytest.FixtureRequest) -> str:
    registry = request.getfixturevalue("registry") if ctx.backend.real else FAKE_REGISTRY
    return f"{registry}/asbx/busybox:latest"


def test_pull_from_a_registry_records_the_digest(ctx: Ctx, pull_ref: str) -> None:
    try:
        image = ctx.runtime.pull(pull_ref)
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.digest)
        assert pull_ref in image.names
        inspected = ctx.runtime.inspect_image(pull_ref)
        assert inspected is not None
        assert inspected.id == image.id
        if inspected.digest != image.digest:
            # podman lists every digest an image was ever built, pushed or pulled as under each
            # of its names, so a local inspect by tag cannot say which one the registry serves;
            # the pulled digest is that one, and the local image answers to it.
            pinned = ctx.runtime.inspect_image(pin_reference(pull_ref, image.digest))
            assert pinned is not None
            assert (pinned.id, pinned.digest) == (image.id, image.digest)
    finally:
        ctx.runtime.remove_image(pull_ref)


def test_a_failed_pull_names_the_image_and_the_cause(ctx: Ctx, pull_ref: str) -> None:
    if isinstance(ctx.runtime, FakeRuntime):
        ctx.runtime.strict_pulls = True  # the fake's registry then holds only what is published
    missing = pull_ref.replace("busybox:latest", f"busybox:no-such-tag-{uuid.uuid4().hex[:6]}")
    with pytest.raises(PullError) as caught:
        ctx.runtime.pull(missing)
    assert caught.value.cause is PullCause.NOT_FOUND, caught.value.output
    assert caught.value.message.startswith(f"cannot pull {missing}: the registry ")
    assert "no such image or tag" in caught.value.message
    assert ctx.runtime.inspect_image(missing) is None
