"""Apple `container` backend: argv for its documented CLI and lenient 0.x/1.x JSON parsers."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asbx.errors import (
    AsbxError,
    ContainerNotRunningError,
    NameConflictError,
    NotFoundError,
    PlanError,
    RuntimeCommandError,
    RuntimeTimeoutError,
    RuntimeUnavailableError,
)
from asbx.images import normalise_ref
from asbx.runtime.base import (
    BuildRequest,
    Capabilities,
    ContainerRequest,
    ContainerState,
    ExecResult,
    MountRequest,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
    OutputCallback,
    PortRequest,
)
from asbx.runtime.command import CommandRequest, CommandResult, CommandRunner, Stdin
from asbx.runtime.pull_errors import pull_error

if TYPE_CHECKING:
    pass

MIB = 1024 * 1024
MIN_VERSION = (0, 6, 0)
INIT_VERSION = (0, 10, 0)  # first release with `--init`
MAX_NAME_LENGTH = 63
MAX_DOCKERFILE_BYTES = 16 * 1024  # 1.0 refuses >= 16 KiB up front; older builds hang (#735)
APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)  # 0.x encodes dates as seconds since this
DEFAULT_TIMEOUT = 300.0

CAPABILITIES = Capabilities(
    fractional_cpus=False,
    min_memory=200 * MIB,
    shared_volumes=False,  # a named volume is a block device: one container VM at a time (#1133)
    volume_size=True,
    label_values_with_equals=False,
    label_filter=False,
    internal_networks_isolate=False,  # --internal (hostOnly) still routes out (#2062)
    sets_capabilities=False,  # each container is its own VM; docs/network.md says what it gives
    allowlist_blocker="its --internal networks still route out (apple/container#2062)",
    ports_with_network_none=False,
    max_name_length=MAX_NAME_LENGTH,
    limits_update_blocker="Apple container has no command to change a container's limits",
)

CONTAINER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
NETWORK_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_ENV_NAME_RE = re.compile(r"[^\s=#]+")
_IMAGE_ID_RE = re.compile(r"(sha256:)?[0-9a-f]{64}")
_USAGE_EXIT = 64
# Messages `exec` itself prints (as opposed to the process it runs); {name} is the container.
_EXEC_CLI_ERRORS = ("container {name} not found", "container {name} is not running",
                    "No such container: {name}", "XPC connection", "XPC timeout",
                    "Unknown option", "Missing expected argument", "Plugin 'container-")

WarningCallback = Callable[[str], None]


class _Default(Enum):
    TIMEOUT = "the runtime's default timeout"


_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- validation


def check_container_name(name: str) -> str:
    """Apple uses `--name` as the container ID: 2-63 characters of `[a-zA-Z0-9_.-]`."""
    if len(name) > MAX_NAME_LENGTH:
        raise PlanError(
            [f'container name "{name}" is {len(name)} characters; Apple container allows at '
             f"most {MAX_NAME_LENGTH}"],
            hint="asbx names containers <project>-<sandbox>: shorten the project or sandbox name",
        )
    if not CONTAINER_NAME_RE.fullmatch(name):
        raise PlanError([f'"{name}" is not a valid Apple container name '
                         "(letters, digits, '_', '.', '-', starting alphanumeric, at least 2)"])
    return name


def check_labels(labels: Mapping[str, str], owner: str) -> None:
    """Apple splits `--label` on `=` at most twice, so a value containing `=` is rejected."""
    for key, value in labels.items():
        if "=" in value or "=" in key or not key:
            raise PlanError(
                [f'label "{key}" on {owner} has a value containing "=" ({value!r}); '
                 "Apple container rejects such labels"],
                hint="choose a label value without '='",
            )


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`container CLI version 1.2.2 (build: release, commit: abcdef1)` -> (1, 2, 2)."""
    match = _VERSION_RE.search(text)
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3])


normalize_image_reference = normalise_ref  # the form Apple stores and prints


# ----------------------------------------------------------------------------- argv pieces


def cpus_arg(cpus: float, warn: WarningCallback) -> str:
    """Apple takes whole vCPUs: round a fraction up and say so."""
    whole = max(1, math.ceil(cpus))
    if whole != cpus:
        warn(f"cpus {cpus:g} rounded up to {whole} on Apple container")
    return str(whole)


def memory_arg(memory: int) -> str:
    """Memory as `<MiB>m` (a bare number would mean bytes); Apple's minimum is 200 MiB."""
    if memory < CAPABILITIES.min_memory:
        raise PlanError([f"memory {memory / MIB:g} MiB is below Apple container's minimum "
                         "of 200 MiB"], hint="set memory: 200M or more")
    return f"{math.ceil(memory / MIB)}m"


def size_arg(size: int) -> str:
    """A volume size: the largest exact binary unit, else plain bytes."""
    for suffix, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def label_args(labels: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for key in sorted(labels):
        out += ["--label", f"{key}={labels[key]}"]
    return out


def mount_args(mount: MountRequest) -> list[str]:
    """A bind mount is `--mount type=bind,...`; a named volume is `--volume NAME:/dst[:ro]`."""
    if mount.type == "bind":
        if not os.path.isabs(mount.source):
            raise PlanError([f'bind mount source "{mount.source}" must be an absolute path'])
        if "," in mount.source or "," in mount.target:
            raise PlanError([f'bind mount "{mount.source}:{mount.target}" contains ","; Apple '
                             "container's --mount cannot carry it"])
        spec = f"type=bind,source={mount.source},target={mount.target}"
        return ["--mount", spec + (",readonly" if mount.readonly else "")]
    if ":" in mount.target:
        raise PlanError([f'volume mount target "{mount.target}" contains ":"'])
    return ["--volume", f"{mount.source}:{mount.target}" + (":ro" if mount.readonly else "")]


def port_arg(port: PortRequest) -> str:
    host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    return f"{host}:{port.host_port}:{port.container_port}/{port.protocol}"


def network_args(request: ContainerRequest) -> list[str]:
    """deny -> `--network none`; `default` -> nothing; a named network -> `--network NAME`."""
    if request.network == "none":
        if request.ports:
            raise PlanError(
                [f"sandbox container {request.name} publishes ports but has no network; Apple "
                 "container cannot publish ports with --network none"],
                hint="use network: open for a sandbox that publishes ports",
            )
        return ["--network", "none"]
    if request.network == "default":
        return []
    return ["--network", request.network]


def create_argv(exe: str, request: ContainerRequest, *, env_file: str | None,
                warn: WarningCallback, use_init: bool = True) -> list[str]:
    """`container create --name N ... IMAGE CMD...` for one sandbox."""
    check_container_name(request.name)
    check_labels(request.labels, f"container {request.name}")
    verb = ["run", "-d"] if request.start else ["create"]
    argv = [exe, *verb, "--name", request.name, *label_args(request.labels)]
    if env_file is not None:
        argv += ["--env-file", env_file]
    argv += ["--workdir", request.workdir]
    if request.user:
        argv += ["--user", request.user]
    if request.cpus is not None:
        argv += ["--cpus", cpus_arg(request.cpus, warn)]
    if request.memory is not None:
        argv += ["--memory", memory_arg(request.memory)]
    for mount in request.mounts:
        argv += mount_args(mount)
    argv += network_args(request)
    for port in request.ports:
        argv += ["--publish", port_arg(port)]
    for server in request.dns:
        argv += ["--dns", server]
    if request.hostname and request.hostname != request.name:
        warn(f"hostname {request.hostname} ignored: Apple container uses the name "
             f"{request.name} as the hostname")
    if request.init and use_init:
        argv.append("--init")
    return [*argv, request.image, *request.command]


def build_argv(exe: str, request: BuildRequest) -> list[str]:
    """`container build -f ABS -t TAG ... CONTEXT`; refuses Dockerfiles Apple cannot take."""
    if not request.tags:
        raise PlanError(["an image build needs a tag (Apple container would name it by UUID)"])
    dockerfile = request.dockerfile if request.dockerfile.is_absolute() else (
        Path.cwd() / request.dockerfile)
    check_labels(request.labels, f"image {request.tags[0]}")
    size = dockerfile.stat().st_size if dockerfile.is_file() else 0
    if size >= MAX_DOCKERFILE_BYTES:
        raise PlanError(
            [f"Dockerfile {dockerfile} is {size} bytes; Apple container only builds Dockerfiles "
             f"smaller than {MAX_DOCKERFILE_BYTES} bytes (16 KiB, apple/container#735)"],
            hint="split it into a base image and a smaller Dockerfile FROM it",
        )
    argv = [exe, "build", "-f", str(dockerfile)]
    for tag in request.tags:
        argv += ["-t", tag]
    for key in sorted(request.args):
        argv += ["--build-arg", f"{key}={request.args[key]}"]
    if request.target:
        argv += ["--target", request.target]
    if request.platform:
        argv += ["--platform", request.platform]
    argv += label_args(request.labels)
    if request.pull:
        argv.append("--pull")
    return [*argv, str(request.context)]


def exec_argv(exe: str, name: str, argv: Sequence[str], *, interactive: bool, tty: bool = False,
              env: Mapping[str, str] | None = None, env_file: str | None = None,
              workdir: str | None = None, user: str | None = None) -> list[str]:
    """`container exec [-i] [-t] [--env-file F | -e K=V] [-w DIR] [-u USER] ID CMD...`."""
    out = [exe, "exec"]
    if interactive:
        out.append("-i")
    if tty:
        out.append("-t")
    if env_file is not None:
        out += ["--env-file", env_file]
    for key in sorted(env or {}):
        out += ["-e", f"{key}={(env or {})[key]}"]
    if workdir:
        out += ["-w", workdir]
    if user:
        out += ["-u", user]
    return [*out, name, *argv]


def env_file_text(env: Mapping[str, str]) -> str:
    """`K=V` lines for `--env-file` (no quoting: Apple splits each line at its first `=`)."""
    lines = []
    for key in sorted(env):
        value = env[key]
        if not _ENV_NAME_RE.fullmatch(key):
            raise PlanError([f'environment variable name "{key}" cannot be passed to Apple '
                             "container (no whitespace, '=' or '#')"])
        if "\n" in value or "\r" in value:
            raise PlanError([f"environment variable {key} has a value with a line break, which "
                             "Apple container's --env-file cannot carry"])
        lines.append(f"{key}={value}\n")
    return "".join(lines)


@contextmanager
def private_env_file(env: Mapping[str, str] | None) -> Iterator[str | None]:
    """A 0600 temp file of `K=V` lines, removed afterwards, so values never show up in `ps`."""
    if not env:
        yield None
        return
    text = env_file_text(env)
    fd, path = tempfile.mkstemp(prefix="asbx-env-", suffix=".env")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- JSON parsers


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _obj(value).items() if v is not None}


def parse_date(value: Any) -> datetime | None:
    """An ISO-8601 string (1.x) or a float of seconds since 2001-01-01 (0.x)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return APPLE_EPOCH + timedelta(seconds=float(value))
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


_STATES = {"running": ContainerState.RUNNING, "stopping": ContainerState.RUNNING,
           "stopped": ContainerState.STOPPED}


def parse_container(item: Mapping[str, Any]) -> ObservedContainer | None:
    """One element of `list --format json` / `inspect`, either era."""
    config = _obj(item.get("configuration"))
    cid = _text(config.get("id")) or _text(item.get("id"))
    if not cid:
        return None
    status = item.get("status")
    if isinstance(status, dict):  # 1.x: {"state": ..., "startedDate": ISO}
        state, started = status.get("state"), status.get("startedDate")
    else:  # 0.x: "status": "running", top-level "startedDate": float
        state, started = status, item.get("startedDate")
    image = _obj(config.get("image"))
    return ObservedContainer(
        id=cid,
        name=cid,
        state=_STATES.get(_text(state).lower(), ContainerState.UNKNOWN),
        labels=_labels(config.get("labels")),
        image=_text(image.get("reference")),
        image_id=_text(_obj(image.get("descriptor")).get("digest")),
        created_at=parse_date(config.get("creationDate")),
        started_at=parse_date(started),
    )


def parse_containers(data: Any) -> list[ObservedContainer]:
    items = (parse_container(item) for item in _items(data))
    return [item for item in items if item is not None]


def _image_labels(variants: Any) -> dict[str, str]:
    for variant in variants if isinstance(variants, list) else []:
        labels = _obj(_obj(_obj(variant).get("config")).get("config")).get("Labels")
        if labels:
            return _labels(labels)
    return {}


def _image_created(variants: Any) -> datetime | None:
    for variant in variants if isinstance(variants, list) else []:
        created = parse_date(_obj(_obj(variant).get("config")).get("created"))
        if created:
            return created
    return None


def parse_image(item: Mapping[str, Any]) -> ObservedImage | None:
    """An image from any era: 0.x list `{reference, descriptor}`, 0.x inspect `{name, index}`,
    1.x `{id, configuration{name, descriptor}, variants}`."""
    config = _obj(item.get("configuration"))
    if config:
        name, descriptor = _text(config.get("name")), _obj(config.get("descriptor"))
    elif "reference" in item:
        name, descriptor = _text(item.get("reference")), _obj(item.get("descriptor"))
    else:
        index = _obj(item.get("index"))
        name, descriptor = _text(item.get("name")), _obj(index.get("descriptor")) or index
    digest = _text(descriptor.get("digest"))
    raw_id = _text(item.get("id"))
    image_id = digest or (f"sha256:{raw_id}" if raw_id and ":" not in raw_id else raw_id)
    if not image_id and not name:
        return None
    variants = item.get("variants")
    return ObservedImage(
        id=image_id,
        names=(name,) if name else (),
        digest=digest,
        labels=_image_labels(variants),
        created_at=parse_date(config.get("creationDate")) or _image_created(variants),
    )


def parse_images(data: Any) -> list[ObservedImage]:
    """Images merged by id: Apple lists one entry per reference."""
    merged: dict[str, ObservedImage] = {}
    for item in _items(data):
        image = parse_image(item)
        if image is None:
            continue
        key = image.id or image.names[0]
        seen = merged.get(key)
        if seen is None:
            merged[key] = image
        else:
            names = seen.names + tuple(n for n in image.names if n not in seen.names)
            merged[key] = ObservedImage(seen.id, names, seen.digest,
                                        seen.labels or image.labels, seen.created_at)
    return list(merged.values())


def parse_volume(item: Mapping[str, Any]) -> ObservedVolume | None:
    """0.x is flat `{name, labels, source}`; 1.x wraps it as `{id, configuration{...}}`."""
    config = _obj(item.get("configuration")) or dict(item)
    name = _text(config.get("name")) or _text(item.get("id"))
    if not name:
        return None
    return ObservedVolume(name=name, labels=_labels(config.get("labels")),
                          mountpoint=_text(config.get("source")))


def parse_volumes(data: Any) -> list[ObservedVolume]:
    items = (parse_volume(item) for item in _items(data))
    return [item for item in items if item is not None]


def parse_network(item: Mapping[str, Any]) -> ObservedNetwork | None:
    """0.x `{id, state, config{id, mode, labels}, status}`; 1.x `{id, configuration, status}`."""
    config = _obj(item.get("configuration")) or _obj(item.get("config"))
    name = _text(config.get("name")) or _text(config.get("id")) or _text(item.get("id"))
    if not name:
        return None
    status = _obj(item.get("status"))
    subnet = (_text(status.get("ipv4Subnet")) or _text(status.get("address"))
              or _text(config.get("ipv4Subnet")) or _text(config.get("subnet")))
    return ObservedNetwork(
        name=name,
        labels=_labels(config.get("labels")),
        internal=_text(config.get("mode")) == "hostOnly",
        gateway=_text(status.get("ipv4Gateway")) or _text(status.get("gateway")),
        subnet=subnet,
    )


def parse_networks(data: Any) -> list[ObservedNetwork]:
    items = (parse_network(item) for item in _items(data))
    return [item for item in items if item is not None]


def _items(data: Any) -> list[dict[str, Any]]:
    """The list of objects in a JSON answer (TOML-style `{"items": [...]}` tolerated)."""
    if isinstance(data, dict):
        data = data.get("items", [data])
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def has_labels(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


# ----------------------------------------------------------------------------- the runtime


class AppleRuntime:
    """The Runtime protocol over Apple's `container` CLI (0.6 and later, 0.x and 1.x JSON)."""

    name = "apple"
    capabilities = CAPABILITIES

    def __init__(self, runner: CommandRunner, executable: str = "container", *,
                 warn: WarningCallback | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self._runner = runner
        self.executable = executable
        self._warn = warn or _log.warning
        self._timeout = timeout
        self.version: tuple[int, int, int] | None = None

    # -- plumbing

    def _call(self, args: Sequence[str], *, stdin: Stdin = None,
              timeout: float | _Default | None = _Default.TIMEOUT,
              on_output: OutputCallback | None = None) -> CommandResult:
        limit = self._timeout if timeout is _Default.TIMEOUT else timeout
        request = CommandRequest(argv=(self.executable, *args), stdin=stdin, timeout=limit)
        try:
            result = self._runner(request, on_output)
        except FileNotFoundError as exc:
            raise _missing_cli(self.executable) from exc
        # The runner reports an executable it could not start as 127/126 "<argv0>: <reason>".
        if (result.returncode in (126, 127) and not result.stdout
                and result.stderr.startswith(f"{self.executable}: ")):
            raise _missing_cli(self.executable)
        return result

    def _run(self, args: Sequence[str], *, stdin: Stdin = None,
             timeout: float | _Default | None = _Default.TIMEOUT,
             on_output: OutputCallback | None = None) -> CommandResult:
        result = self._call(args, stdin=stdin, timeout=timeout, on_output=on_output)
        if result.timed_out:
            limit = self._timeout if timeout is _Default.TIMEOUT else (timeout or 0.0)
            raise RuntimeTimeoutError(result.argv, limit, result.stdout, result.stderr)
        if result.returncode != 0:
            raise command_failure(result)
        return result

    def _json(self, args: Sequence[str]) -> Any:
        result = self._run(args)
        try:
            return json.loads(result.stdout or "[]")
        except json.JSONDecodeError as exc:
            raise RuntimeCommandError(result.argv, result.returncode, result.stdout,
                                      f"output is not JSON: {exc}") from exc

    # -- health

    def probe_capabilities(self) -> Capabilities:
        return self.capabilities

    def check(self) -> str:
        """`container --version` (>= 0.6), then `container system status` (running)."""
        result = self._call(["--version"], timeout=30)
        version = parse_version(result.stdout + result.stderr) if result.returncode == 0 else None
        if version is None:
            raise RuntimeUnavailableError(
                f"could not read Apple container's version from `{self.executable} --version`",
                hint="reinstall it from https://github.com/apple/container/releases")
        text = ".".join(map(str, version))
        if version < MIN_VERSION:
            raise RuntimeUnavailableError(
                f"Apple container {text} is too old; asbx needs 0.6 or newer",
                hint="upgrade from https://github.com/apple/container/releases")
        status = self._call(["system", "status"], timeout=30)
        if status.returncode != 0 or status.timed_out:
            raise RuntimeUnavailableError(
                "Apple container's system service is not running",
                hint="run: container system start --enable-kernel-install")
        self.version = version
        return text

    # -- observation: one call per kind, filtered here (Apple's list has no --filter)

    def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        found = parse_containers(self._json(["list", "--all", "--format", "json"]))
        return [c for c in found if has_labels(c.labels, labels)]

    def list_images(self) -> list[ObservedImage]:
        return parse_images(self._json(["image", "list", "--format", "json"]))

    def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]:
        found = parse_volumes(self._json(["volume", "list", "--format", "json"]))
        return [v for v in found if has_labels(v.labels, labels)]

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]:
        found = parse_networks(self._json(["network", "list", "--format", "json"]))
        return [n for n in found if has_labels(n.labels, labels)]

    # -- images

    def pull(self, ref: str, platform: str | None = None,
             on_output: OutputCallback | None = None) -> ObservedImage:
        args = ["image", "pull", *(["--platform", platform] if platform else []), ref]
        result = self._call(args, timeout=None, on_output=on_output)  # no limit: no timeout
        if result.returncode != 0:
            raise pull_failure(ref, result)
        return self._inspected(ref)

    def build(self, request: BuildRequest,
              on_output: OutputCallback | None = None) -> ObservedImage:
        argv = build_argv(self.executable, request)
        self._run(argv[1:], timeout=None, on_output=on_output)
        return self._inspected(request.tags[0])

    def _inspected(self, ref: str) -> ObservedImage:
        image = self.inspect_image(ref)
        if image is None:
            raise NotFoundError(f"image {normalize_image_reference(ref)} is missing right after "
                                "Apple container reported it ready")
        return image

    def inspect_image(self, ref: str) -> ObservedImage | None:
        """None when missing: 1.x says `image not found` (exit 1); 0.12 prints what it found
        (`[]`) and then fails; older releases print `[]` and exit 0."""
        result = self._call(["image", "inspect", ref])
        if result.returncode != 0 and not result.stdout.strip().startswith("["):
            failure = command_failure(result)
            if isinstance(failure, NotFoundError):
                return None
            raise failure
        try:
            images = parse_images(json.loads(result.stdout or "[]"))
        except json.JSONDecodeError as exc:
            raise RuntimeCommandError(result.argv, result.returncode, result.stdout,
                                      result.stderr) from exc
        return images[0] if images else None

    def remove_image(self, ref: str) -> None:
        """Remove an image by reference, or by id (`sha256:...`: every name it carries)."""
        names = self._names_of_id(ref) if _IMAGE_ID_RE.fullmatch(ref) else [ref]
        try:
            self._run(["image", "delete", *names])
        except RuntimeCommandError:
            # 1.x says only "failed to delete one or more images"; tell a missing image apart.
            if all(self.inspect_image(name) is None for name in names):
                raise NotFoundError(f"image {normalize_image_reference(ref)} not found") from None
            raise

    def _names_of_id(self, image_id: str) -> list[str]:
        """`image delete` takes references, not digests: find the names an id goes by."""
        wanted = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
        for image in self.list_images():
            if image.id == wanted and image.names:
                return list(image.names)
        raise NotFoundError(f"image {image_id} not found")

    # -- containers

    def create_container(self, request: ContainerRequest) -> str:
        use_init = self.version is None or self.version >= INIT_VERSION
        if request.init and not use_init:
            self._warn("Apple container before 0.10 has no --init; the sandbox runs without one")
        with private_env_file(request.env) as env_file:
            argv = create_argv(self.executable, request, env_file=env_file, warn=self._warn,
                               use_init=use_init)
            try:
                self._run(argv[1:])
            except RuntimeCommandError as exc:
                if "already exists" in exc.stderr:
                    raise NameConflictError(f"cannot create {request.name!r}: the name is "
                                            "taken") from exc
                raise
        return request.name

    def start_container(self, name: str) -> None:
        self._run(["start", name])

    def stop_container(self, name: str, timeout: float = 10) -> None:
        self._run(["stop", "-t", str(max(0, math.ceil(timeout))), name],
                  timeout=self._timeout + timeout)

    def remove_container(self, name: str, force: bool = True) -> None:
        self._run(["delete", *(["-f"] if force else []), name])

    def update_limits(self, name: str, cpus: float | None, memory: int | None) -> None:
        raise AsbxError("Apple container cannot change a container's limits in place")

    def container_limits(self, name: str) -> tuple[float | None, int | None]:
        raise AsbxError("Apple container's limits are not read back by asbx")

    def remove_containers(self, names: Sequence[str]) -> None:
        try:
            if names:
                self._run(["delete", "-f", *names])
        except AsbxError:  # `delete` fails for a missing ID; settle them one by one
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
        """Run argv; the command's own exit code comes back, the CLI's own errors raise."""
        with private_env_file(env) as env_file:
            full = exec_argv(self.executable, name, argv, interactive=stdin is not None,
                             env_file=env_file, workdir=workdir, user=user)
            result = self._call(full[1:], stdin=stdin, timeout=timeout, on_output=on_output)
        if result.timed_out:
            return ExecResult(124, result.stdout, result.stderr)
        if result.returncode in (1, _USAGE_EXIT) and _is_exec_cli_error(result.stderr, name):
            if f"container {name} is not running" in result.stderr:
                raise ContainerNotRunningError(result.argv, result.returncode, result.stdout,
                                               result.stderr)
            raise command_failure(result)
        return ExecResult(result.returncode, result.stdout, result.stderr)

    def exec_argv(self, name: str, argv: tuple[str, ...], *, tty: bool, interactive: bool,
                  env: Mapping[str, str] | None = None, workdir: str | None = None,
                  user: str | None = None) -> list[str]:
        """For `asbx shell`: env goes as `-e K=V` here because no temp file outlives this call."""
        return exec_argv(self.executable, name, argv, interactive=interactive, tty=tty, env=env,
                         workdir=workdir, user=user)

    def logs_argv(self, name: str, *, follow: bool, tail: int | None) -> list[str]:
        argv = [self.executable, "logs"]
        if follow:
            argv.append("-f")
        if tail is not None:
            argv += ["-n", str(tail)]
        return [*argv, name]

    # -- volumes and networks

    def create_volume(self, name: str, labels: Mapping[str, str], size: int | None = None) -> None:
        """The name goes first: 0.4.x parsed `--label` up to the next option."""
        if not VOLUME_NAME_RE.fullmatch(name):
            raise PlanError([f'"{name}" is not a valid Apple container volume name'])
        check_labels(labels, f"volume {name}")
        size_args = ["-s", size_arg(size)] if size is not None else []
        self._run(["volume", "create", name, *label_args(labels), *size_args])

    def remove_volume(self, name: str) -> None:
        self._run(["volume", "delete", name])

    def remove_volumes(self, names: Sequence[str]) -> None:
        try:
            if names:
                self._run(["volume", "delete", *names])
        except AsbxError:
            for name in names:
                with contextlib.suppress(NotFoundError):
                    self.remove_volume(name)

    def create_network(self, name: str, labels: Mapping[str, str],
                       internal: bool) -> ObservedNetwork:
        if not NETWORK_NAME_RE.fullmatch(name) or name in ("none", "default"):
            raise PlanError([f'"{name}" is not a valid Apple container network name '
                             "(lowercase letters, digits, '.', '_', '-'; not none/default)"])
        check_labels(labels, f"network {name}")
        self._run(["network", "create", name, *label_args(labels),
                   *(["--internal"] if internal else [])])
        for network in self.list_networks({}):
            if network.name == name:
                return network
        return ObservedNetwork(name=name, labels=dict(labels), internal=internal)

    def remove_network(self, name: str) -> None:
        self._run(["network", "delete", name])


# ----------------------------------------------------------------------------- errors


def _is_exec_cli_error(stderr: str, name: str) -> bool:
    """Did `container exec` itself fail (missing/stopped container, service down, usage)?"""
    markers = [marker.format(name=name) for marker in _EXEC_CLI_ERRORS]
    return any(line.startswith("Error: ") and any(marker in line for marker in markers)
               for line in stderr.splitlines())


def command_failure(result: CommandResult) -> AsbxError:
    """Match on message text, not codes (Apple rewraps codes): `not found` -> NotFoundError."""
    text = (result.stderr + "\n" + result.stdout).strip()
    if result.returncode != _USAGE_EXIT and (
            "not found" in text or "no such container" in text.lower()):
        line = next((ln for ln in reversed(text.splitlines()) if "not found" in ln
                     or "no such container" in ln.lower()), text)
        return NotFoundError(line.removeprefix("Error: ").strip())
    return RuntimeCommandError(result.argv, result.returncode, result.stdout, result.stderr)


def pull_failure(ref: str, result: CommandResult) -> AsbxError:
    """A failed `image pull`: the service down or a usage error as such, otherwise the
    registry's answer (its HTTP status is passed through) as a PullError."""
    text = result.stderr + "\n" + result.stdout
    if result.returncode == _USAGE_EXIT:
        return command_failure(result)
    if "XPC connection" in text or "XPC timeout" in text or "container system start" in text:
        return RuntimeUnavailableError("Apple container's system service is not running",
                                       hint="run: container system start")
    return pull_error(ref, result, login="container registry login", tls_fix=_tls_fix)


def _tls_fix(host: str, plain_http: bool) -> str:
    if plain_http:
        return (f"Apple container uses plain HTTP only for localhost, private (RFC 1918) "
                f"addresses and the local DNS domain: serve {host} over HTTPS")
    return f"add the CA certificate of {host} to the macOS keychain and trust it"


def _missing_cli(executable: str) -> RuntimeUnavailableError:
    return RuntimeUnavailableError(
        f"Apple container's CLI ({executable}) is not installed",
        hint="install it from https://github.com/apple/container/releases "
             "(macOS 26, Apple silicon)")
