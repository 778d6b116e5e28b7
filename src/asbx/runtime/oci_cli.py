"""The Runtime protocol over the podman/docker CLI (they share 95% of it): argv builders + JSON."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from asbx.errors import (
    AsbxError,
    ContainerNotRunningError,
    NameConflictError,
    NotFoundError,
    RuntimeCommandError,
    RuntimeTimeoutError,
    RuntimeUnavailableError,
)
from asbx.images import choose_digest, digests_of_repository
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
from asbx.runtime.command import (
    TIMEOUT_EXIT_CODE,
    CommandRequest,
    CommandResult,
    CommandRunner,
    Stdin,
    first_error,
)
from asbx.runtime.events import RuntimeEvent, parse_podman_event
from asbx.runtime.pull_errors import pull_error

DEFAULT_TIMEOUT = 300.0  # any ordinary call (not build, pull or exec) that takes longer is stuck
LIST_ATTEMPTS = 6
# Pauses between listing attempts (seconds, doubling): a removal or commit that made podman's
# listing fail is usually over in well under a second; retrying at once often hits it again.
LIST_RETRY_PAUSE = 0.05
EXEC_MARKER = "ASBX_EXEC_ID"  # env var that lets a timed-out exec's processes be found and killed

# The CLIs' own words for a missing object (podman 4, docker 20-28), matched case-insensitively.
_NOT_FOUND = re.compile(
    r"no such (container|volume|image|network|object)|image not known|network not found"
    r"|no (container|volume) with (name|id)|network \S+ not found",
    re.IGNORECASE,
)
# podman 4 listing an image another process is creating or removing at that moment (a build's
# commit, a manifest list): its stored data is not there (yet, or any more).
_IN_FLUX = re.compile(r'checking if image "[0-9a-f]+" is dangling|locating item named "manifest"')
_NAME_IN_USE = re.compile(r"name \S+ is already in use", re.IGNORECASE)  # podman 4, docker
_NOT_RUNNING = re.compile(r"container state improper|is not running", re.IGNORECASE)
# Kills every process whose environment carries the marker given as $1 (never spliced in).
_KILL_MARKED = (
    'for p in /proc/[0-9]*; do if grep -q "$1" "$p/environ" 2>/dev/null; '
    'then kill -KILL "${p#/proc/}" 2>/dev/null; fi; done; true'
)


class OciCliRuntime:
    """One backend for podman and docker; subclasses set the dialect (format flag, hints)."""

    name: str = "oci"
    capabilities: Capabilities = Capabilities()
    default_executable: ClassVar[str] = ""
    json_format: ClassVar[str] = "json"  # the value of `--format` that prints JSON
    ps_extra: ClassVar[tuple[str, ...]] = ()
    pull_flag: ClassVar[str] = "--pull"
    # The CLI's own words for "cannot reach the daemon/service" (not the registry), if any.
    service_down: ClassVar[re.Pattern[str] | None] = None

    def __init__(self, runner: CommandRunner, executable: str | None = None, *,
                 global_args: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT) -> None:
        self._runner = runner
        self.executable = executable or self.default_executable
        self.global_args = tuple(global_args)
        self._timeout = timeout

    # -- plumbing

    def argv(self, *args: str) -> list[str]:
        """The full argv for a subcommand: executable, global args, then `args`."""
        return [self.executable, *self.global_args, *args]

    def _call(self, args: Sequence[str], *, stdin: Stdin = None,
              timeout: float | None = None, on_output: OutputCallback | None = None
              ) -> CommandResult:
        """Run one command; a timeout of None or infinity means no limit."""
        limit = None if timeout is None or math.isinf(timeout) else timeout
        request = CommandRequest(argv=tuple(self.argv(*args)), stdin=stdin, timeout=limit)
        return self._runner(request, on_output)

    def _run(self, args: Sequence[str], *, missing: str | None = None,
             timeout: float | None = None, on_output: OutputCallback | None = None
             ) -> CommandResult:
        """Run and raise on failure: NotFoundError (naming `missing`) or RuntimeCommandError."""
        limit = timeout or self._timeout
        return self._checked(self._call(args, timeout=limit, on_output=on_output), limit, missing)

    def _checked(self, result: CommandResult, timeout: float, missing: str | None = None
                 ) -> CommandResult:
        if result.timed_out:
            raise RuntimeTimeoutError(result.argv, timeout, result.stdout, result.stderr)
        if result.returncode != 0:
            raise self._failure(result, missing)
        return result

    def _listing(self, args: Sequence[str]) -> CommandResult:
        """A listing call, retried when an object vanished or was half-made while the runtime
        listed it (podman 4 then fails the whole `images` or `ps`: "image not known", or no
        "manifest" item for an image being committed or removed)."""
        for attempt in range(LIST_ATTEMPTS):
            if attempt:
                time.sleep(LIST_RETRY_PAUSE * 2 ** (attempt - 1))
            result = self._call(args, timeout=self._timeout)
            if result.returncode == 0 or result.timed_out or not (
                    _NOT_FOUND.search(result.stderr) or _IN_FLUX.search(result.stderr)):
                break
        return self._checked(result, self._timeout)

    def _failure(self, result: CommandResult, missing: str | None) -> AsbxError:
        """The error for a failed command: a known host problem first (podman exits 127 when
        netavark cannot run iptables), then a missing runtime, a missing object, the rest."""
        if (problem := self.host_problem(result)) is not None:
            return problem
        if result.returncode == 127 and not result.stdout:
            return self.unavailable(result)
        if missing is not None and _NOT_FOUND.search(result.stderr):
            return NotFoundError(f"{missing} not found in {self.name}")
        return RuntimeCommandError(result.argv, result.returncode, result.stdout, result.stderr)

    def _items(self, args: Sequence[str]) -> list[dict[str, Any]]:
        result = self._listing([*args, "--format", self.json_format])
        try:
            return load_items(result.stdout)
        except ValueError as exc:
            raise RuntimeCommandError(result.argv, result.returncode, result.stdout,
                                      f"output is not JSON: {exc}") from exc

    # -- health

    def check(self) -> str:
        result = self._call(["version", "--format", self.json_format], timeout=60)
        if result.returncode != 0 or result.timed_out:
            raise self.unavailable(result)
        try:
            data = json.loads(result.stdout)
        except ValueError as exc:
            raise self.unavailable(result) from exc
        return self.parse_version(data)

    def probe_capabilities(self) -> Capabilities:
        return self.capabilities

    def parse_version(self, data: Any) -> str:
        client = data.get("Client") if isinstance(data, dict) else None
        return str((client or {}).get("Version", "unknown"))

    def unavailable(self, result: CommandResult) -> RuntimeUnavailableError:
        """The error for a runtime that is missing (exit 127) or not answering, with the fix."""
        if result.returncode == 127:
            return RuntimeUnavailableError(f"{self.executable} is not installed",
                                           hint="install it, or choose another with --runtime")
        return RuntimeUnavailableError(f"{self.name} is not working: {first_error(result)}")

    # -- events (what a long-lived process keeps its listings fresh with)

    def events_argv(self, since: float) -> list[str]:
        """The argv that streams this runtime's events from unix time `since` on, as JSON."""
        return self.argv("events", "--format", self.json_format, "--since", f"{since:.6f}")

    def parse_event(self, line: str) -> RuntimeEvent | None:
        return parse_podman_event(line)

    # -- observation: one runtime call per kind

    def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        items = self._items(["ps", "-a", *self.ps_extra, *label_filters(labels)])
        return [c for c in map(parse_container, items) if c is not None]

    def list_images(self) -> list[ObservedImage]:
        return [i for i in map(parse_image, self._items(["images"])) if i is not None]

    def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]:
        items = self._items(["volume", "ls", *label_filters(labels)])
        return [v for v in map(parse_volume, items) if v is not None]

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]:
        items = self._items(["network", "ls", *label_filters(labels)])
        return [n for n in map(parse_network, items) if n is not None]

    # -- images

    def pull(self, ref: str, platform: str | None = None,
             on_output: OutputCallback | None = None) -> ObservedImage:
        args = ["pull", *(["--platform", platform] if platform else []), ref]
        result = self._call(args, timeout=None, on_output=on_output)
        if (result.returncode != 0 and not result.timed_out
                and not (result.returncode == 127 and not result.stdout)):
            raise self.pull_failure(ref, result)
        self._checked(result, math.inf)
        items = self._inspect_items("image", [ref])
        if not items:
            raise NotFoundError(f"image {ref!r} not found in {self.name} after it was pulled")
        digest = pick_digest(items[0], ref)
        if "@" not in ref and len(repo_digests(items[0], ref)) > 1:
            digest = self.served_digest(ref) or digest
        image = parse_image(items[0], digest=digest)
        assert image is not None  # inspect found it, so it has an id
        return image

    def served_digest(self, ref: str) -> str:
        """The digest the registry serves for `ref` now, when the local image records several
        for its repository (empty: the runtime cannot tell, keep the local pick)."""
        return ""

    def pull_failure(self, ref: str, result: CommandResult) -> AsbxError:
        """A failed pull as one sentence naming the image and the cause (see pull_error)."""
        if self.service_down is not None and self.service_down.search(result.stderr):
            return self.unavailable(result)
        return pull_error(ref, result, login=f"{self.name} login", tls_fix=self.tls_fix)

    def tls_fix(self, host: str, plain_http: bool) -> str:
        """What to do when `host` cannot be reached over verified HTTPS."""
        return (f"serve {host} over HTTPS, or tell {self.name} it is an insecure registry"
                if plain_http else f"make {self.name} trust the CA certificate of {host}")

    def build(self, request: BuildRequest, on_output: OutputCallback | None = None
              ) -> ObservedImage:
        with tempfile.TemporaryDirectory(prefix="asbx-build-") as scratch:
            iidfile = Path(scratch, "iid")
            self._run(build_args(request, iidfile, self.pull_flag), timeout=math.inf,
                      on_output=on_output)
            image_id = iidfile.read_text().strip()
        return self._inspect_required(image_id)

    def _inspect_items(self, kind: str, refs: Sequence[str]) -> list[dict[str, Any]]:
        """`<kind> inspect` of refs in one call; missing ones are left out (they may have just
        been removed by someone else)."""
        if not refs:
            return []
        result = self._call([kind, "inspect", *refs], timeout=self._timeout)
        if result.returncode != 0 and not _NOT_FOUND.search(result.stderr):
            raise self._failure(result, None)
        return load_items(result.stdout)

    def inspect_image(self, ref: str) -> ObservedImage | None:
        items = self._inspect_items("image", [ref])
        if not items:
            return None
        return parse_image(items[0], digest=pick_digest(items[0], ref))

    def _inspect_required(self, ref: str) -> ObservedImage:
        image = self.inspect_image(ref)
        if image is None:
            raise NotFoundError(f"image {ref!r} not found in {self.name} after it was made")
        return image

    def remove_image(self, ref: str) -> None:
        self._run(["image", "rm", ref], missing=f"image {ref!r}")

    # -- containers

    def create_container(self, request: ContainerRequest) -> str:
        with env_args(request.env) as env:
            args = create_args(request, env)
            result = self._call(args, timeout=self._timeout)
        if (result.returncode != 0 and not result.timed_out and _NOT_FOUND.search(result.stderr)
                and self.host_problem(result) is None):  # CNI's own "network podman not found"
            raise NotFoundError(f"cannot create {request.name!r}: {first_error(result)}")
        if result.returncode != 0 and not result.timed_out and _NAME_IN_USE.search(result.stderr):
            raise NameConflictError(f"cannot create {request.name!r}: {first_error(result)}")
        self._checked(result, self._timeout)
        return result.stdout.strip().splitlines()[-1]

    def host_problem(self, result: CommandResult) -> AsbxError | None:
        """A failure with a known cause on this host (its configuration), if any: the one
        place where failed runtime commands are matched against host problems."""
        return None

    def start_container(self, name: str) -> None:
        self._run(["start", name], missing=f"container {name!r}")

    def stop_container(self, name: str, timeout: float = 10) -> None:
        seconds = max(0, math.ceil(timeout))
        self._run(["stop", "-t", str(seconds), name], missing=f"container {name!r}",
                  timeout=seconds + self._timeout)

    def remove_container(self, name: str, force: bool = True) -> None:
        args = ["rm", "-v", *(["-f"] if force else []), name]
        result = self._run(args, missing=f"container {name!r}")
        if not result.stdout.strip():  # `rm -f` of a missing container exits 0 and prints nothing
            raise NotFoundError(f"container {name!r} not found in {self.name}")

    def update_limits(self, name: str, cpus: float | None, memory: int | None) -> None:
        args = ["update"]
        if cpus is not None:
            args += ["--cpus", cpus_arg(cpus)]
        if memory is not None:  # swap as at creation (twice the memory), or a raise is refused
            args += ["--memory", str(memory), "--memory-swap", str(2 * memory)]
        self._run([*args, name], missing=f"container {name!r}")

    def container_limits(self, name: str) -> tuple[float | None, int | None]:
        items = self._inspect_items("container", [name])
        if not items:
            raise NotFoundError(f"container {name!r} not found in {self.name}")
        return parse_limits(_obj(items[0].get("HostConfig")))

    def remove_containers(self, names: Sequence[str]) -> None:
        if names:  # `rm -f` of a missing container exits 0
            self._run(["rm", "-v", "-f", *names])

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
        marker = f"{EXEC_MARKER}={uuid.uuid4().hex}" if timeout is not None else None
        with env_args(env or {}) as env_flags:
            flags = [*(["-i"] if stdin is not None else []), *env_flags,
                     *(["--env", marker] if marker else []), *_where(workdir, user)]
            result = self._call(["exec", *flags, name, *argv], stdin=stdin, timeout=timeout,
                                on_output=on_output)
        if result.timed_out:
            if marker:
                self._kill_marked(name, marker)
            return ExecResult(TIMEOUT_EXIT_CODE, result.stdout, result.stderr)
        if result.returncode != 0:
            self._raise_exec_failure(result, name)
        return ExecResult(result.returncode, result.stdout, result.stderr)

    def _raise_exec_failure(self, result: CommandResult, name: str) -> None:
        """Tell the CLI's own failures (missing or stopped container) from the command's."""
        if result.returncode == 127 and not result.stdout and result.stderr.strip() == (
                f"{result.argv[0]}: {os.strerror(errno.ENOENT)}"):  # what the runner says
            raise self.unavailable(result)  # (a command that exits 127 is the command's own)
        if _NOT_FOUND.search(result.stderr) and name in result.stderr:
            raise NotFoundError(f"container {name!r} not found in {self.name}")
        if _NOT_RUNNING.search(result.stderr):
            raise ContainerNotRunningError(result.argv, result.returncode, result.stdout,
                                           result.stderr)

    def _kill_marked(self, name: str, marker: str) -> None:
        """Best effort: a killed CLI client leaves the command running in the container."""
        self._call(["exec", name, "sh", "-c", _KILL_MARKED, "sh", marker], timeout=30)

    def exec_argv(self, name: str, argv: tuple[str, ...], *, tty: bool, interactive: bool,
                  env: Mapping[str, str] | None = None, workdir: str | None = None,
                  user: str | None = None) -> list[str]:
        flags = [*(["-i"] if interactive else []), *(["-t"] if tty else [])]
        for key, value in (env or {}).items():
            flags += ["--env", f"{key}={value}"]
        return self.argv("exec", *flags, *_where(workdir, user), name, *argv)

    def logs_argv(self, name: str, *, follow: bool, tail: int | None) -> list[str]:
        flags = [*(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])]
        return self.argv("logs", *flags, name)

    # -- volumes and networks

    def create_volume(self, name: str, labels: Mapping[str, str], size: int | None = None
                      ) -> None:
        if size is not None:
            raise AsbxError(f"{self.name} cannot limit the size of volume {name!r}",
                            hint="remove `size:` from the volume, or use another runtime")
        self._run(["volume", "create", *label_args(labels), name])

    def remove_volume(self, name: str) -> None:
        self._run(["volume", "rm", name], missing=f"volume {name!r}")

    def remove_volumes(self, names: Sequence[str]) -> None:
        try:
            if names:
                self._run(["volume", "rm", *names])
        except AsbxError:  # one was missing (or busy): find out which, one by one
            for name in names:
                with contextlib.suppress(NotFoundError):
                    self.remove_volume(name)

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool
                       ) -> ObservedNetwork:
        flags = [*(["--internal"] if internal else []), *label_args(labels)]
        self._run(["network", "create", *flags, name])
        return self.inspect_network(name)

    def inspect_network(self, name: str) -> ObservedNetwork:
        items = self._inspect_items("network", [name])
        found = [n for n in map(parse_network, items) if n is not None]
        if not found:
            raise NotFoundError(f"network {name!r} not found in {self.name}")
        return found[0]

    def remove_network(self, name: str) -> None:
        self._run(["network", "rm", name], missing=f"network {name!r}")


# -- argv builders (pure)


def label_filters(labels: Mapping[str, str]) -> list[str]:
    """`--filter label=K=V` per label; the runtime ANDs them."""
    return [arg for key, value in labels.items() for arg in ("--filter", f"label={key}={value}")]


def label_args(labels: Mapping[str, str]) -> list[str]:
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def _where(workdir: str | None, user: str | None) -> list[str]:
    return [*(["--workdir", workdir] if workdir else []), *(["--user", user] if user else [])]


def mount_arg(mount: MountRequest) -> str:
    """`type=bind|volume,source=...,target=...[,readonly]`; the CLIs split on commas."""
    for path in (mount.source, mount.target):
        if "," in path:
            raise AsbxError(f"mount path {path!r} contains a comma, which podman and docker "
                            "cannot take in --mount", hint="rename the path")
    text = f"type={mount.type},source={mount.source},target={mount.target}"
    return text + (",readonly" if mount.readonly else "")


def port_arg(port: PortRequest) -> str:
    """`-p` value: `127.0.0.1:8080:80/tcp`, `[::1]:8080:80/tcp` (podman refuses a bare IPv6)."""
    host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    return f"{host}:{port.host_port}:{port.container_port}/{port.protocol}"


def cpus_arg(cpus: float) -> str:
    return f"{cpus:g}"


def create_args(request: ContainerRequest, env: Sequence[str]) -> list[str]:
    """`create` flags for a sandbox; `env` are the flags from env_args (an env-file)."""
    verb = ["run", "-d"] if request.start else ["create"]
    args = [*verb, "--name", request.name, *(["--init"] if request.init else [])]
    args += label_args(request.labels)
    if request.cpus is not None:
        args += ["--cpus", cpus_arg(request.cpus)]
    if request.memory is not None:
        args += ["--memory", str(request.memory)]
    for mount in request.mounts:
        args += ["--mount", mount_arg(mount)]
    if request.network != "default":
        args += ["--network", request.network]
    for port in request.ports:
        args += ["-p", port_arg(port)]
    for server in request.dns:
        args += ["--dns", server]
    if request.hostname:
        args += ["--hostname", request.hostname]
    args += privilege_args(request)
    args += [*env, *_where(request.workdir, request.user)]
    return [*args, request.image, *request.command]


def privilege_args(request: ContainerRequest) -> list[str]:
    """Exactly the request's capabilities, whatever the host's containers.conf or daemon.json
    grant by default, and no gaining more through setuid or file capabilities."""
    args = ["--cap-drop", "ALL"]
    for name in request.capabilities:
        args += ["--cap-add", name]
    if request.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    return args


def build_args(request: BuildRequest, iidfile: Path, pull_flag: str) -> list[str]:
    args = ["build", "-f", str(request.dockerfile), "--iidfile", str(iidfile)]
    for tag in request.tags:
        args += ["-t", tag]
    for key, value in request.args.items():
        args += ["--build-arg", f"{key}={value}"]
    if request.target:
        args += ["--target", request.target]
    args += label_args(request.labels)
    if request.platform:
        args += ["--platform", request.platform]
    if request.pull:
        args.append(pull_flag)
    return [*args, str(request.context)]


@contextlib.contextmanager
def env_args(env: Mapping[str, str]) -> Iterator[list[str]]:
    """Env flags that keep values out of `ps`: a private env-file (0600) removed on exit.

    An env-file line cannot hold a newline, so such a value goes on the command line.
    """
    inline = {k: v for k, v in env.items() if "\n" in v or "\r" in v}
    filed = {k: v for k, v in env.items() if k not in inline}
    flags = [arg for k, v in inline.items() for arg in ("--env", f"{k}={v}")]
    if not filed:
        yield flags
        return
    fd, path = tempfile.mkstemp(prefix="asbx-env-")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in filed.items())
        yield ["--env-file", path, *flags]
    finally:
        os.unlink(path)


# -- JSON parsers (pure): podman prints arrays with mappings, docker one object per line with
# `k=v,k2=v2` label strings and Go time strings; each parser takes both.

_STATES = {
    "running": ContainerState.RUNNING,
    "paused": ContainerState.PAUSED,
    **dict.fromkeys(("exited", "created", "stopped", "configured", "initialized", "dead"),
                    ContainerState.STOPPED),
}
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?")


def load_items(text: str) -> list[dict[str, Any]]:
    """A JSON array (podman) or one JSON object per line (docker `{{json .}}`); nothing = []."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        return [item for item in data or () if isinstance(item, dict)]
    items = (json.loads(line) for line in text.splitlines() if line.strip())
    return [item for item in items if isinstance(item, dict)]


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def parse_labels(value: Any) -> dict[str, str]:
    """A mapping, or docker's `k=v,k2=v2` string, where a piece without `=` continues a value."""
    if isinstance(value, Mapping):
        return {str(k): _text(v) for k, v in value.items()}
    labels: dict[str, str] = {}
    key: str | None = None
    for piece in _text(value).split(",") if value else ():
        name, sep, text = piece.partition("=")
        if sep and name:
            key = name
            labels[key] = text
        elif key is not None:
            labels[key] += "," + piece
    return labels


def parse_time(value: Any) -> datetime | None:
    """Unix seconds, RFC 3339 (nanoseconds allowed) or Go's `2006-01-02 15:04:05 -0700 MST`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    match = _TIME.match(_text(value))
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    zone = "+00:00" if zone in (None, "Z") else zone[:3] + ":" + zone[-2:]
    parsed = datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}")
    return parsed if parsed.year > 1 else None  # Go's zero time means "never"


def image_id(value: Any) -> str:
    """Image ids as `sha256:<hex>` (podman prints bare hex, docker the prefixed form)."""
    text = _text(value)
    return f"sha256:{text}" if re.fullmatch(r"[0-9a-f]{64}", text) else text


def _first_name(value: Any) -> str:
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    return _text(value).split(",")[0]


def parse_limits(host: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """cpus and memory from an inspected container's HostConfig (0 or absent: no limit)."""
    nano = host.get("NanoCpus") or 0
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
    cpus = nano / 1e9 if nano else (quota / period if quota > 0 and period else None)
    memory = host.get("Memory") or 0
    return (round(cpus, 3) if cpus else None), (int(memory) if memory else None)


def parse_container(item: Mapping[str, Any]) -> ObservedContainer | None:
    container_id = _text(item.get("Id") or item.get("ID"))
    if not container_id:
        return None
    return ObservedContainer(
        id=container_id,
        name=_first_name(item.get("Names")).lstrip("/"),
        state=_STATES.get(_text(item.get("State")).lower(), ContainerState.UNKNOWN),
        labels=parse_labels(item.get("Labels")),
        image=_text(item.get("Image")),
        image_id=image_id(item.get("ImageID")),
        created_at=parse_time(item.get("Created") if isinstance(item.get("Created"), int)
                              else item.get("CreatedAt")),
        started_at=parse_time(item.get("StartedAt")),
    )


def repo_digests(item: Mapping[str, Any], ref: str) -> list[str]:
    """Every registry digest the image records for `ref`'s repository. podman pairs each of an
    image's names with every manifest digest it was ever built, pushed or pulled as, so one
    image can list several for a repository of which the registry serves only one."""
    return digests_of_repository([_text(e) for e in item.get("RepoDigests") or ()], ref)


def pick_digest(item: Mapping[str, Any], ref: str) -> str:
    """The registry digest recorded for `ref`'s repository, if the image has one: the ref's own
    digest when it names one, else the image's own (podman's `Digest`: the manifest it was
    made or first pulled as, which later pushes and pulls do not change), else the first."""
    return choose_digest(_text(item.get("Digest")), repo_digests(item, ref), ref)


def parse_image(item: Mapping[str, Any], digest: str = "") -> ObservedImage | None:
    raw_id = _text(item.get("Id") or item.get("ID"))
    if not raw_id:
        return None
    names = [_text(n) for n in item.get("Names") or item.get("RepoTags") or ()]
    entries = tuple(_text(d) for d in item.get("RepoDigests") or ())
    config = _obj(item.get("Config"))
    return ObservedImage(
        id=image_id(raw_id),
        names=tuple(n for n in names if n and "<none>" not in n),
        digest=digest or _text(item.get("Digest"))
        or next((e.partition("@")[2] for e in entries), ""),
        labels=parse_labels(item.get("Labels")) or parse_labels(config.get("Labels")),
        created_at=parse_time(item.get("Created")),
        repo_digests=entries,
    )


def parse_volume(item: Mapping[str, Any]) -> ObservedVolume | None:
    name = _text(item.get("Name"))
    if not name:
        return None
    return ObservedVolume(name=name, labels=parse_labels(item.get("Labels")),
                          mountpoint=_text(item.get("Mountpoint")))


def parse_network(item: Mapping[str, Any]) -> ObservedNetwork | None:
    """podman's lower-case network JSON or docker's `network inspect` JSON."""
    name = _text(item.get("name") or item.get("Name"))
    if not name:
        return None
    subnets = item.get("subnets") or _obj(item.get("IPAM")).get("Config") or [{}]
    first = _obj(subnets[0])
    internal = item.get("internal", item.get("Internal"))
    return ObservedNetwork(
        name=name,
        labels=parse_labels(item.get("labels") or item.get("Labels")),
        internal=internal is True or _text(internal).lower() == "true",
        gateway=_text(first.get("gateway") or first.get("Gateway")),
        subnet=_text(first.get("subnet") or first.get("Subnet")),
        interface=_text(item.get("network_interface")),
    )
