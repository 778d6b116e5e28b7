"""The Runtime protocol (the side-effect boundary), its request/observation types, and labels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from asbx.spec.capabilities import DEFAULT as DEFAULT_CAPABILITIES

# Labels on every runtime object asbx creates. Values never contain "=" (Apple rejects them).
LABEL_PROJECT = "dev.asbx.project"
LABEL_ADDRESS = "dev.asbx.address"
LABEL_HASH = "dev.asbx.hash"
LABEL_HASH_VERSION = "dev.asbx.hash-version"
# The project's hashing salt, so a lost state database can be rebuilt with the same config hashes
# (anyone who can read a container's labels can read its environment too: it hides nothing more).
LABEL_SALT = "dev.asbx.salt"
LABEL_PRIVILEGES = "dev.asbx.privileges"  # the capability profile a sandbox was created with
# Set in every `asbx exec`/`shell` process (and API exec), so reap sees a command still running.
ACTIVE_SESSION_ENV = "ASBX_SESSION"

OutputCallback = Callable[[str, str], None]
"""Called with (stream, text) as output arrives; stream is "stdout" or "stderr"."""


class ContainerState(Enum):
    """A container's live state, normalised across runtimes."""

    RUNNING = "running"
    STOPPED = "stopped"  # exited, stopped, or created but never started
    PAUSED = "paused"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ObservedContainer:
    """A container as the runtime reports it."""

    id: str
    name: str
    state: ContainerState
    labels: Mapping[str, str]
    image: str = ""
    image_id: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class ObservedImage:
    """A local image: its id, the names it carries, and its registry digest if known."""

    id: str
    names: tuple[str, ...]
    digest: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    # `repo@digest` of every manifest it is known as (podman, docker); () where not listed.
    repo_digests: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ObservedVolume:
    name: str
    labels: Mapping[str, str]
    mountpoint: str = ""


@dataclass(frozen=True)
class ObservedNetwork:
    name: str
    labels: Mapping[str, str]
    internal: bool = False
    gateway: str = ""
    subnet: str = ""
    interface: str = ""  # the bridge on the host (podman's network_interface), if known


@dataclass(frozen=True)
class MountRequest:
    """A mount of a host directory (`bind`) or a named volume (`volume`) into a container."""

    type: Literal["bind", "volume"]
    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class PortRequest:
    host_ip: str
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class ContainerRequest:
    """Everything needed to create one sandbox container; backends turn it into argv."""

    name: str
    image: str
    command: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/workspace"
    user: str | None = None
    cpus: float | None = None
    memory: int | None = None  # bytes
    mounts: tuple[MountRequest, ...] = ()
    network: str = "none"  # "none", "default", or a network name
    ports: tuple[PortRequest, ...] = ()
    init: bool = True
    hostname: str | None = None
    dns: tuple[str, ...] = ()
    start: bool = False  # also start it, in the same runtime call (`run -d`)
    # The whole capability set (nothing else is granted) and whether setuid binaries and file
    # capabilities may raise privileges; see asbx.spec.capabilities.
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    no_new_privileges: bool = True


@dataclass(frozen=True)
class BuildRequest:
    """An image build: context directory, Dockerfile path (absolute), args, target, tags."""

    context: Path
    dockerfile: Path
    tags: tuple[str, ...]
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    pull: bool = False


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a runtime can honour; the planner reports spec fields a runtime cannot as errors."""

    fractional_cpus: bool = True
    min_memory: int = 6 * 1024 * 1024
    shared_volumes: bool = True  # one named volume mounted by several containers at once
    volume_size: bool = False
    label_values_with_equals: bool = True
    label_filter: bool = True  # `list --filter label=...` done by the runtime
    internal_networks_isolate: bool = True  # an --internal network has no route out
    # Why network allowlists cannot be enforced on this runtime ("" when they can).
    allowlist_blocker: str = ""
    ports_with_network_none: bool = False
    max_name_length: int = 253
    # A container listing reports the image id each container runs, comparable with the id a
    # pull or build returned (how `plan` sees sandboxes left on an image `--pull` replaced).
    container_image_ids: bool = False
    # The images listing carries what `inspect_image` records (id, `Digest`, `RepoDigests`),
    # so an image found in it is recorded without another call.
    listing_records_images: bool = False
    # Sandboxes get exactly asbx's capability set (--cap-drop ALL, --cap-add ...); where not,
    # the runtime's own isolation (Apple: a VM per container) stands in and cap_add is ignored.
    sets_capabilities: bool = True
    # Why a change of only cpus/memory cannot be made to the existing container ("" when it
    # can: `update`, kept in the container's configuration); such a change replaces it then.
    limits_update_blocker: str = "this runtime cannot change a container's limits in place"


class Runtime(Protocol):
    """A container runtime. Observation is one call per kind; every call goes through one runner."""

    name: str
    capabilities: Capabilities

    def check(self) -> str:
        """Raise RuntimeUnavailableError (with the fix) unless usable; return the version."""
        ...

    def probe_capabilities(self) -> Capabilities:
        """`capabilities` refined by asking the runtime (its version, its storage); may run it.
        Asked only when a plan depends on a capability a version can change."""
        ...

    # observation: one runtime call each, never per resource
    def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        """All containers (running or not) carrying every one of `labels`."""
        ...

    def list_images(self) -> list[ObservedImage]:
        """All local images (one call); callers match by name, id or label."""
        ...

    def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]: ...

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]: ...

    # images
    def pull(
        self, ref: str, platform: str | None = None, on_output: OutputCallback | None = None
    ) -> ObservedImage: ...

    def build(
        self, request: BuildRequest, on_output: OutputCallback | None = None
    ) -> ObservedImage: ...

    def inspect_image(self, ref: str) -> ObservedImage | None: ...

    def remove_image(self, ref: str) -> None: ...

    # containers
    def create_container(self, request: ContainerRequest) -> str:
        """Create a container (and start it, in one call, if `request.start`); return its id."""
        ...

    def start_container(self, name: str) -> None: ...

    def stop_container(self, name: str, timeout: float = 10) -> None:
        """Stop a container; a stopped one is left as it is."""
        ...

    def remove_container(self, name: str, force: bool = True) -> None:
        """Remove a container; a missing one raises NotFoundError."""
        ...

    def remove_containers(self, names: Sequence[str]) -> None:
        """Force-remove several containers in one runtime call; missing ones are ignored."""
        ...

    def update_limits(self, name: str, cpus: float | None, memory: int | None) -> None:
        """Set a container's cpu and memory limits in place (None leaves one as it is)."""
        ...

    def container_limits(self, name: str) -> tuple[float | None, int | None]:
        """A container's cpus and memory (bytes) as its configuration says; None: no limit."""
        ...

    def exec(
        self,
        name: str,
        argv: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: bytes | BinaryIO | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> ExecResult:
        """Run argv in a running container; return its exit code (124 on timeout) and output."""
        ...

    def exec_argv(
        self,
        name: str,
        argv: tuple[str, ...],
        *,
        tty: bool,
        interactive: bool,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> list[str]:
        """The argv of an interactive exec (`asbx shell`); the CLI hands it the TTY."""
        ...

    def logs_argv(self, name: str, *, follow: bool, tail: int | None) -> list[str]:
        """The argv that prints a container's logs (the CLI streams it to the terminal)."""
        ...

    # volumes and networks
    def create_volume(
        self, name: str, labels: Mapping[str, str], size: int | None = None
    ) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def remove_volumes(self, names: Sequence[str]) -> None:
        """Remove several volumes in one runtime call; missing ones are ignored."""
        ...

    def create_network(  # internal=True: no route out and no DNS server on the network
        self, name: str, labels: Mapping[str, str], internal: bool
    ) -> ObservedNetwork: ...

    def remove_network(self, name: str) -> None: ...
