"""FakeRuntime (in-memory, honours the Runtime protocol, records calls) and a ScriptedRunner."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from asbx.errors import (
    AsbxError,
    ContainerNotRunningError,
    NameConflictError,
    NotFoundError,
    RuntimeCommandError,
    RuntimeUnavailableError,
)
from asbx.images import repository
from asbx.runtime.base import (
    BuildRequest,
    Capabilities,
    ContainerRequest,
    ContainerState,
    ExecResult,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
    OutputCallback,
)
from asbx.runtime.command import CommandRequest, CommandResult, RecordingRunner, Stdin
from asbx.runtime.pull_errors import pull_error

__all__ = ["Call", "ExecCall", "FakeContainer", "FakeRuntime", "RecordingRunner",
           "ScriptedRunner"]


class Call(NamedTuple):
    """One recorded runtime call: the method name and every argument in signature order
    (keyword-only ones included; output callbacks left out)."""

    method: str
    args: tuple[Any, ...]


@dataclass
class FakeContainer:
    """A container the fake holds; tests may change `state` or `labels` to simulate drift."""

    id: str
    name: str
    request: ContainerRequest
    image_id: str
    labels: dict[str, str]
    state: ContainerState = ContainerState.STOPPED
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None

    def observed(self) -> ObservedContainer:
        return ObservedContainer(id=self.id, name=self.name, state=self.state,
                                 labels=dict(self.labels), image=self.request.image,
                                 image_id=self.image_id, created_at=self.created_at,
                                 started_at=self.started_at)


@dataclass(frozen=True)
class ExecCall:
    """What an exec handler receives."""

    container: FakeContainer
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str | None
    user: str | None
    stdin: bytes | None
    timeout: float | None


ExecHandler = Callable[[ExecCall], ExecResult | int | None]
"""Scripts exec: return an ExecResult, an exit code, or None for exit 0 with no output."""


@dataclass
class _Failure:
    method: str
    error: AsbxError
    times: int
    when: Callable[[tuple[Any, ...]], bool] | None


def _digest(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


class FakeRuntime:
    """An in-memory runtime. Errors match the real backends: NotFoundError for a missing object,
    RuntimeCommandError for a refused operation. Thread-safe (the applier runs in parallel)."""

    def __init__(self, name: str = "fake", capabilities: Capabilities | None = None, *,
                 strict_pulls: bool = False, exec_handler: ExecHandler | None = None) -> None:
        self.name = name
        self.capabilities = capabilities or Capabilities()
        self.strict_pulls = strict_pulls  # True: only refs given to publish() can be pulled
        self.probed_capabilities: Capabilities | None = None  # what a version probe finds
        self.exec_handler = exec_handler
        self.available = True
        self.calls: list[Call] = []
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, ObservedImage] = {}
        self.volumes: dict[str, ObservedVolume] = {}
        self.networks: dict[str, ObservedNetwork] = {}
        self.registry: dict[str, str] = {}  # remote ref -> digest
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._subnets = itertools.count(1)

    # -- test helpers

    def count(self, method: str | None = None) -> int:
        """How many runtime calls were made (of `method`, if given)."""
        return sum(1 for call in self.calls if method is None or call.method == method)

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def fail(self, method: str, error: AsbxError | None = None, *, times: int = 1,
             when: Callable[[tuple[Any, ...]], bool] | None = None) -> None:
        """Make the next `times` calls of `method` (whose args satisfy `when`) raise `error`."""
        error = error or RuntimeCommandError((self.name, method), 1, "", "injected failure")
        self._failures.append(_Failure(method, error, times, when))

    def publish(self, ref: str, digest: str | None = None) -> str:
        """Put `ref` in the fake registry (a new digest simulates an upstream update)."""
        self.registry[ref] = digest or _digest("remote", ref, uuid.uuid4().hex)
        return self.registry[ref]

    def add_image(self, ref: str, *, digest: str = "",
                  labels: Mapping[str, str] | None = None) -> ObservedImage:
        """Seed a local image, as if pulled or built earlier."""
        with self._lock:
            return self._store_image(ref, _digest("image", ref, digest), digest, labels or {})

    # -- plumbing

    def _record(self, method: str, *args: Any) -> None:
        with self._lock:
            self.calls.append(Call(method, args))
            for failure in self._failures:
                if failure.method == method and (failure.when is None or failure.when(args)):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    raise failure.error

    def _refused(self, method: str, message: str) -> RuntimeCommandError:
        return RuntimeCommandError((self.name, method), 125, "", message)

    def _container(self, name: str) -> FakeContainer:
        found = self.containers.get(name) or next(
            (c for c in self.containers.values() if len(name) >= 12 and c.id.startswith(name)),
            None)
        if found is None:
            raise NotFoundError(f"container {name!r} not found in {self.name}")
        return found

    def _find_image(self, ref: str) -> ObservedImage | None:
        name, at, digest = ref.partition("@")
        if at:  # `repo@digest`: an image of that repository holding that digest, as podman does
            return next((i for i in self.images.values() if i.digest == digest and any(
                n.rpartition(":")[0] == name or n == name for n in i.names)), None)
        wanted = {ref, f"{ref}:latest"} if ":" not in ref.rpartition("/")[2] else {ref}
        for image in self.images.values():
            if image.id in (ref, f"sha256:{ref}") or wanted & set(image.names):
                return image
        return None

    def _store_image(self, ref: str, image_id: str, digest: str,
                     labels: Mapping[str, str]) -> ObservedImage:
        names = (ref,) if ref and not ref.startswith("sha256:") else ()
        for other_id, other in list(self.images.items()):  # a name belongs to one image
            if other_id != image_id and set(names) & set(other.names):
                self.images[other_id] = replace(
                    other, names=tuple(n for n in other.names if n not in names))
        old = self.images.get(image_id)
        merged = tuple(dict.fromkeys((*(old.names if old else ()), *names)))
        kept = digest or (old and old.digest) or ""
        image = ObservedImage(id=image_id, names=merged, digest=kept, labels=dict(labels),
                              created_at=datetime.now(UTC),
                              repo_digests=tuple(f"{repository(n)}@{kept}" for n in merged
                                                 if kept))
        self.images[image_id] = image
        return image

    def _resolve_remote(self, ref: str) -> str:
        if ref in self.registry:
            return self.registry[ref]
        if self.strict_pulls:  # worded as podman's, so it is classified the same way
            result = CommandResult((self.name, "pull", ref), 125, "",
                                   f"Error: initializing source docker://{ref}: reading "
                                   "manifest: manifest unknown")
            raise pull_error(ref, result, login=f"{self.name} login",
                             tls_fix=lambda host, plain: "")
        return _digest("remote", ref)

    # -- health and observation

    def check(self) -> str:
        self._record("check")
        if not self.available:
            raise RuntimeUnavailableError(f"{self.name} is not running",
                                          hint="set FakeRuntime.available = True")
        return "1.0.0-fake"

    def probe_capabilities(self) -> Capabilities:
        self._record("probe_capabilities")
        return self.probed_capabilities or self.capabilities

    def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        self._record("list_containers", dict(labels))
        with self._lock:
            return [c.observed() for c in self.containers.values()
                    if labels.items() <= c.labels.items()]

    def list_images(self) -> list[ObservedImage]:
        self._record("list_images")
        with self._lock:
            return list(self.images.values())

    def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]:
        self._record("list_volumes", dict(labels))
        with self._lock:
            return [v for v in self.volumes.values() if labels.items() <= v.labels.items()]

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]:
        self._record("list_networks", dict(labels))
        with self._lock:
            return [n for n in self.networks.values() if labels.items() <= n.labels.items()]

    # -- images

    def pull(self, ref: str, platform: str | None = None,
             on_output: OutputCallback | None = None) -> ObservedImage:
        self._record("pull", ref, platform)
        with self._lock:
            digest = self._resolve_remote(ref)
            if on_output is not None:
                on_output("stderr", f"Trying to pull {ref}...\n")
            return self._store_image(ref, _digest("image", digest), digest, {})

    def build(self, request: BuildRequest, on_output: OutputCallback | None = None
              ) -> ObservedImage:
        self._record("build", request)
        if not request.dockerfile.is_file():
            raise self._refused("build", f"no such file: {request.dockerfile}")
        image_id = _digest("build", _content_digest(request), repr(sorted(request.args.items())),
                           request.target or "", repr(sorted(request.labels.items())))
        if on_output is not None:
            on_output("stdout", f"STEP 1/1: fake build of {request.dockerfile.name}\n")
        with self._lock:
            image = None
            for tag in request.tags or ("",):
                image = self._store_image(tag, image_id, "", request.labels)
            assert image is not None
            return image

    def inspect_image(self, ref: str) -> ObservedImage | None:
        self._record("inspect_image", ref)
        with self._lock:
            return self._find_image(ref)

    def remove_image(self, ref: str) -> None:
        self._record("remove_image", ref)
        with self._lock:
            image = self._find_image(ref)
            if image is None:
                raise NotFoundError(f"image {ref!r} not found in {self.name}")
            if any(c.image_id == image.id for c in self.containers.values()):
                raise self._refused("remove_image", f"image {ref} is in use by a container")
            named = {ref, f"{ref}:latest"} & set(image.names)
            others = tuple(n for n in image.names if n not in named)
            if named and others:
                self.images[image.id] = replace(image, names=others)  # untag only
            else:
                del self.images[image.id]

    # -- containers

    def create_container(self, request: ContainerRequest) -> str:
        self._record("create_container", request)
        with self._lock:
            if request.name in self.containers:
                raise NameConflictError(f'the container name "{request.name}" is '
                                        "already in use")
            self._check_request(request)
            image = self._find_image(request.image) or self._pull_for_create(request.image)
            for mount in request.mounts:
                if mount.type == "volume" and mount.source not in self.volumes:
                    self.volumes[mount.source] = ObservedVolume(mount.source, {})
            container = FakeContainer(id=uuid.uuid4().hex + uuid.uuid4().hex,
                                      name=request.name, request=request, image_id=image.id,
                                      labels=dict(request.labels))
            if request.start:
                container.state = ContainerState.RUNNING
                container.started_at = datetime.now(UTC)
            self.containers[request.name] = container
            return container.id

    def _check_request(self, request: ContainerRequest) -> None:
        if request.network not in ("none", "default") and request.network not in self.networks:
            raise NotFoundError(f"network {request.network!r} not found in {self.name}")
        if request.memory is not None and request.memory < self.capabilities.min_memory:
            raise self._refused("create", "minimum memory limit allowed is 6MB")
        if request.cpus is not None and request.cpus <= 0:
            raise self._refused("create", "range of CPUs is from 0.01 to the number of CPUs")
        for mount in request.mounts:
            if mount.type == "bind" and not Path(mount.source).exists():
                raise self._refused("create", f"bind source path does not exist: {mount.source}")

    def _pull_for_create(self, ref: str) -> ObservedImage:
        try:
            digest = self._resolve_remote(ref)
        except RuntimeCommandError:
            raise NotFoundError(f"image {ref!r} not found in {self.name}") from None
        return self._store_image(ref, _digest("image", digest), digest, {})

    def update_limits(self, name: str, cpus: float | None, memory: int | None) -> None:
        self._record("update_limits", name, cpus, memory)
        with self._lock:
            container = self._container(name)
            container.request = replace(
                container.request,
                cpus=container.request.cpus if cpus is None else cpus,
                memory=container.request.memory if memory is None else memory,
            )

    def container_limits(self, name: str) -> tuple[float | None, int | None]:
        self._record("container_limits", name)
        with self._lock:
            container = self._container(name)
            return container.request.cpus, container.request.memory

    def start_container(self, name: str) -> None:
        self._record("start_container", name)
        with self._lock:
            container = self._container(name)
            if container.state is not ContainerState.RUNNING:
                container.state = ContainerState.RUNNING
                container.started_at = datetime.now(UTC)

    def stop_container(self, name: str, timeout: float = 10) -> None:
        self._record("stop_container", name, timeout)
        with self._lock:
            container = self._container(name)
            if container.state in (ContainerState.RUNNING, ContainerState.PAUSED):
                container.state = ContainerState.STOPPED

    def remove_container(self, name: str, force: bool = True) -> None:
        self._record("remove_container", name, force)
        with self._lock:
            container = self._container(name)
            if container.state is ContainerState.RUNNING and not force:
                raise self._refused("rm", f"cannot remove container {name} as it is running")
            del self.containers[container.name]

    def remove_containers(self, names: Sequence[str]) -> None:
        self._record("remove_containers", list(names))
        for name in names:
            with contextlib.suppress(NotFoundError):
                self.remove_container(name, force=True)

    def exec(
        self,
        name: str,
        argv: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: Stdin = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> ExecResult:
        if stdin is not None and not isinstance(stdin, bytes):
            stdin = stdin.read()  # a stream, as `asbx exec` passes its own stdin
        self._record("exec", name, argv, env, workdir, user, stdin, timeout)
        with self._lock:
            container = self._container(name)
            if container.state is not ContainerState.RUNNING:  # as the real backends say it
                raise ContainerNotRunningError((self.name, "exec"), 125, "",
                                               f"container {name} is not running")
        handler = self.exec_handler
        outcome = None if handler is None else handler(
            ExecCall(container, argv, dict(env or {}), workdir, user, stdin, timeout))
        result = (outcome if isinstance(outcome, ExecResult)
                  else ExecResult(0 if outcome is None else outcome))
        if on_output is not None:
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                for line in text.splitlines(keepends=True):
                    on_output(stream, line)
        return result

    def exec_argv(self, name: str, argv: tuple[str, ...], *, tty: bool, interactive: bool,
                  env: Mapping[str, str] | None = None, workdir: str | None = None,
                  user: str | None = None) -> list[str]:
        self._record("exec_argv", name, argv, tty, interactive, env, workdir, user)
        flags = [*(["-i"] if interactive else []), *(["-t"] if tty else [])]
        flags += [f"--env={k}={v}" for k, v in (env or {}).items()]
        flags += [f"--workdir={workdir}"] if workdir else []
        flags += [f"--user={user}"] if user else []
        return [self.name, "exec", *flags, name, *argv]

    def logs_argv(self, name: str, *, follow: bool, tail: int | None) -> list[str]:
        self._record("logs_argv", name, follow, tail)
        return [self.name, "logs", *(["--follow"] if follow else []),
                *([f"--tail={tail}"] if tail else []), name]

    # -- volumes and networks

    def create_volume(self, name: str, labels: Mapping[str, str], size: int | None = None
                      ) -> None:
        self._record("create_volume", name, dict(labels), size)
        if size is not None and not self.capabilities.volume_size:
            raise AsbxError(f"{self.name} cannot limit the size of volume {name!r}")
        with self._lock:
            if name in self.volumes:
                raise self._refused("volume create", f"volume with name {name} already exists")
            self.volumes[name] = ObservedVolume(name, dict(labels), f"/fake/volumes/{name}")

    def remove_volumes(self, names: Sequence[str]) -> None:
        self._record("remove_volumes", list(names))
        for name in names:
            with contextlib.suppress(NotFoundError):
                self.remove_volume(name)

    def remove_volume(self, name: str) -> None:
        self._record("remove_volume", name)
        with self._lock:
            if name not in self.volumes:
                raise NotFoundError(f"volume {name!r} not found in {self.name}")
            users = [c.name for c in self.containers.values()
                     if any(m.type == "volume" and m.source == name for m in c.request.mounts)]
            if users:
                raise self._refused("volume rm", f"volume {name} is being used by {users}")
            del self.volumes[name]

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool
                       ) -> ObservedNetwork:
        self._record("create_network", name, dict(labels), internal)
        with self._lock:
            if name in self.networks:
                raise self._refused("network create", f"network name {name} already used")
            octet = next(self._subnets) % 250
            network = ObservedNetwork(name, dict(labels), internal, f"10.90.{octet}.1",
                                      f"10.90.{octet}.0/24")
            self.networks[name] = network
            return network

    def remove_network(self, name: str) -> None:
        self._record("remove_network", name)
        with self._lock:
            if name not in self.networks:
                raise NotFoundError(f"network {name!r} not found in {self.name}")
            if any(c.request.network == name for c in self.containers.values()):
                raise self._refused("network rm", f"network {name} is being used")
            del self.networks[name]


def _content_digest(request: BuildRequest) -> str:
    """What a real build's cache key depends on: the Dockerfile and the context's files."""
    digest = hashlib.sha256(request.dockerfile.read_bytes())
    if request.context.is_dir():
        for path in sorted(p for p in request.context.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(request.context)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# -- a runner that starts no process, for golden argv tests


Answer = Callable[[CommandRequest], tuple[int, str, str]]
"""Computes (returncode, stdout, stderr) for a request."""


@dataclass
class _Rule:
    prefix: tuple[str, ...]
    answer: Answer
    timed_out: bool


class ScriptedRunner:
    """A CommandRunner that records requests and answers from rules matched on argv[1:]
    (the part after the executable); unmatched commands succeed with no output."""

    def __init__(self) -> None:
        self.requests: list[CommandRequest] = []
        self._rules: list[_Rule] = []

    def on(self, *prefix: str, stdout: str = "", stderr: str = "", returncode: int = 0,
           timed_out: bool = False, then: Answer | None = None) -> None:
        """Answer commands whose argv[1:] starts with `prefix` (the newest rule wins)."""
        answer = then or (lambda _request: (returncode, stdout, stderr))
        self._rules.insert(0, _Rule(prefix, answer, timed_out))

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        self.requests.append(request)
        rule = next((r for r in self._rules
                     if tuple(request.argv[1:1 + len(r.prefix)]) == r.prefix), None)
        code, out, err = rule.answer(request) if rule else (0, "", "")
        if on_output is not None:
            for line in out.splitlines(keepends=True):
                on_output("stdout", line)
        return CommandResult(request.argv, code, out, err, timed_out=bool(rule and rule.timed_out))

    def argvs(self) -> list[tuple[str, ...]]:
        return [request.argv for request in self.requests]

    @property
    def last(self) -> tuple[str, ...]:
        return self.requests[-1].argv

