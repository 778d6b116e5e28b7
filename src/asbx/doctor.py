"""`asbx doctor`: checks that this machine can run sandboxes, each one function, a typed result."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from asbx.errors import AsbxError
from asbx.images import normalise_ref
from asbx.network import firewall
from asbx.runtime.base import ContainerRequest, ObservedImage, Runtime
from asbx.runtime.command import CommandRequest, CommandRunner, first_error
from asbx.runtime.detect import EXECUTABLES, create_runtime, runtime_name
from asbx.runtime.host_problems import HostProblemError, host_problem_error
from asbx.runtime.oci_cli import OciCliRuntime
from asbx.spec.dockerfile import from_references
from asbx.spec.loader import LoadedSpec
from asbx.spec.model import ImageSpec

BASE_IMAGE = "localhost/asbx/busybox:latest"  # what scripts/build-base-image builds
MIN_FREE = 1024**3  # warn under 1 GiB free under ASBX_HOME
PROBE_LABEL = "dev.asbx.doctor"  # on every throw-away object, never a project's label
NETAVARK_FIX = ('install netavark and aardvark-dns and set network_backend = "netavark" in the '
                "[network] table of containers.conf")
INSTALL = {
    "podman": "install podman (`apt-get install podman`, `brew install podman` on macOS)",
    "docker": "install Docker Engine (`apt-get install docker.io`) or Docker Desktop",
    "apple": "install Apple container from https://github.com/apple/container/releases",
}


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, how it went, what was found, and how to fix it (fail/warn)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"name": self.name, "status": str(self.status), "detail": self.detail,
                "fix": self.fix}


SpecRefs = Callable[[], Sequence[str] | None]
"""The images the spec needs (see spec_image_refs); None when there is no spec."""


@dataclass
class Machine:
    """What the checks look at; every part can be replaced in tests."""

    requested: str | None  # --runtime / ASBX_RUNTIME
    runner: CommandRunner
    home: Path
    spec_refs: SpecRefs
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    platform: str = sys.platform
    which: Callable[[str], str | None] = shutil.which
    free_bytes: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    allowlist_blocker: Callable[[], str] = firewall.blocker  # "" when allowlists can be enforced


@dataclass
class Found:
    """What earlier checks learnt, for the later ones."""

    runtime: Runtime | None = None
    service_ok: bool = False
    containers_failed: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)  # `podman info`
    images: list[ObservedImage] | None = None


Check = Callable[[Machine, Found], CheckResult]


def failed(name: str, exc: AsbxError, prefix: str = "", suffix: str = "") -> CheckResult:
    """A failed check from an error: a known host problem as its cause and fix alone."""
    if isinstance(exc, HostProblemError):
        return CheckResult(name, Status.FAIL, prefix + exc.detail + suffix, exc.problem.fix)
    return CheckResult(name, Status.FAIL, prefix + exc.message + suffix, exc.hint)


def check_runtime(machine: Machine, found: Found) -> CheckResult:
    """The selected runtime is installed, and its version."""
    try:
        name = runtime_name(machine.requested, env=machine.env, platform=machine.platform,
                            which=machine.which)
    except AsbxError as exc:
        return CheckResult("runtime", Status.FAIL, exc.message, exc.hint)
    executable = EXECUTABLES[name]
    path = machine.which(executable)
    if path is None:
        return CheckResult("runtime", Status.FAIL, f"{name}: no `{executable}` on PATH",
                           INSTALL[name] + ", or choose another runtime with --runtime")
    found.runtime = create_runtime(name, machine.runner, env=machine.env,
                                   platform=machine.platform, which=machine.which)
    result = machine.runner(CommandRequest((executable, "--version"), timeout=60))
    if result.returncode != 0:
        return CheckResult("runtime", Status.FAIL,
                           f"`{executable} --version` failed: {first_error(result)}",
                           INSTALL[name])
    version = result.stdout.strip().splitlines()[0] if result.stdout.strip() else "unknown"
    return CheckResult("runtime", Status.OK, f"{version} ({path})")


def check_service(machine: Machine, found: Found) -> CheckResult:
    """podman: `podman info` works; docker: the daemon answers; Apple: the system service."""
    runtime = found.runtime
    if runtime is None:
        return CheckResult("service", Status.SKIP, "no runtime to ask")
    if runtime.name == "podman" and isinstance(runtime, OciCliRuntime):
        return _podman_info(machine, found, runtime)
    try:
        version = runtime.check()
    except AsbxError as exc:
        return CheckResult("service", Status.FAIL, exc.message, exc.hint)
    found.service_ok = True
    what = "the Docker daemon answers" if runtime.name == "docker" else \
        "Apple container's system service is running"
    return CheckResult("service", Status.OK, f"{what} (version {version})")


def _podman_info(machine: Machine, found: Found, runtime: OciCliRuntime) -> CheckResult:
    argv = tuple(runtime.argv("info", "--format", "json"))
    result = machine.runner(CommandRequest(argv, timeout=60))
    if result.returncode != 0 or result.timed_out:
        error: AsbxError = host_problem_error(result, "podman") or runtime.unavailable(result)
        return failed("service", error, "`podman info` failed: ")
    try:
        info = json.loads(result.stdout)
    except ValueError:
        return CheckResult("service", Status.FAIL, "`podman info` did not print JSON",
                           "check that `podman info --format json` works")
    found.info = info if isinstance(info, dict) else {}
    found.service_ok = True
    host = found.info.get("host") or {}
    oci = (host.get("ociRuntime") or {}).get("name", "?")
    return CheckResult("service", Status.OK,
                       f"`podman info` works (cgroup manager {host.get('cgroupManager', '?')}, "
                       f"cgroups {host.get('cgroupVersion', '?')}, OCI runtime {oci})")


def spec_image_refs(loaded: LoadedSpec) -> list[str]:
    """The images a spec needs from outside: every `ref:` (and plain sandbox image) and each
    Dockerfile's FROM that is not another images key (`scratch` needs nothing)."""
    refs = {spec.ref for spec in loaded.graph.resources.values()
            if isinstance(spec, ImageSpec) and spec.ref}
    for name, text in loaded.dockerfiles.items():
        image = loaded.spec.images.get(name)
        args = image.build.args if image is not None and image.build is not None else None
        refs.update(ref for ref in from_references(text, args)
                    if ref not in loaded.spec.images and ref != "scratch")
    return sorted(refs)


def probe_image(found: Found, refs: Sequence[str]) -> str | None:
    """The image a throw-away container runs: the base image, else the spec's, else any."""
    if found.runtime is None:
        return None
    if found.images is None:
        found.images = found.runtime.list_images()
    local = {normalise_ref(name) for image in found.images for name in image.names}
    for ref in (BASE_IMAGE, *refs):
        if normalise_ref(ref) in local:
            return normalise_ref(ref)
    named = sorted(local)
    return named[0] if named else None


def _probe_container(runtime: Runtime, token: str, image: str, network: str,
                     suffix: str) -> None:
    """Run `true` in a throw-away container on `network`; removed even when it failed."""
    name = f"asbx-doctor-{token}-{suffix}"
    request = ContainerRequest(name=name, image=image, command=("true",), workdir="/",
                               labels={PROBE_LABEL: token}, network=network, start=True)
    try:
        runtime.create_container(request)
    finally:
        with contextlib.suppress(AsbxError):
            runtime.remove_containers([name])


def check_containers(machine: Machine, found: Found) -> CheckResult:
    """A throw-away container runs (rlimits, cgroup manager and OCI runtime problems show)."""
    if found.runtime is None or not found.service_ok:
        return CheckResult("containers", Status.SKIP, "the runtime does not answer")
    image = probe_image(found, _spec_refs_quietly(machine))
    if image is None:
        return CheckResult("containers", Status.WARN,
                           "no local image to run a throw-away container with, so not proven",
                           "build one (scripts/build-base-image) or pull one, then run again")
    try:
        _probe_container(found.runtime, machine.token, image, "none", "run")
    except AsbxError as exc:
        found.containers_failed = True
        return failed("containers", exc)
    return CheckResult("containers", Status.OK, f"a throw-away container ran ({image})")


def check_network(machine: Machine, found: Found) -> CheckResult:
    """podman's network backend (netavark needed for allowlists), proven by a real probe."""
    if found.runtime is None or not found.service_ok:
        return CheckResult("network", Status.SKIP, "the runtime does not answer")
    backend = str((found.info.get("host") or {}).get("networkBackend", ""))
    if found.containers_failed:
        return CheckResult("network", Status.SKIP,
                           f"{_backend(backend)}not probed: no container runs (see containers)")
    if found.runtime.name == "podman" and backend != "netavark":
        return _cni_network(machine, found, found.runtime, backend or "unknown")
    image = probe_image(found, _spec_refs_quietly(machine))
    name = f"asbx-doctor-{machine.token}"
    try:
        found.runtime.create_network(name, {PROBE_LABEL: machine.token}, internal=True)
        if image is not None:
            _probe_container(found.runtime, machine.token, image, name, "net")
    except AsbxError as exc:
        return failed("network", exc, _backend(backend))
    finally:
        with contextlib.suppress(AsbxError):
            found.runtime.remove_network(name)
    if image is None:
        return CheckResult("network", Status.WARN,
                           f"{_backend(backend)}an internal network was created, but with no "
                           "local image no container ran on it",
                           "build one (scripts/build-base-image) or pull one, then run again")
    return CheckResult("network", Status.OK,
                       f"{_backend(backend)}a container ran on an --internal network")


def _backend(backend: str) -> str:
    return f"backend {backend}: " if backend else ""


def _cni_network(machine: Machine, found: Found, runtime: Runtime, backend: str
                 ) -> CheckResult:
    """Not netavark: the default network is probed (an internal CNI network that fails to
    come up leaves its config file behind), and allowlists are said to need netavark."""
    needs = (f"asbx's network allowlists need the netavark backend, podman uses {backend} "
             "(see docs/network.md)")
    image = probe_image(found, _spec_refs_quietly(machine))
    if image is None:
        return CheckResult("network", Status.WARN, needs, NETAVARK_FIX)
    try:
        _probe_container(runtime, machine.token, image, "default", "net")
    except AsbxError as exc:
        return failed("network", exc, f"backend {backend}: ", f"; {needs}")
    return CheckResult("network", Status.WARN,
                       f"backend {backend}: a container ran on the default network, but {needs}",
                       NETAVARK_FIX)


def _spec_refs_quietly(machine: Machine) -> Sequence[str]:
    """The spec's images for choosing a probe image; none when there is no (valid) spec."""
    with contextlib.suppress(AsbxError):
        return machine.spec_refs() or ()
    return ()


def check_allowlists(machine: Machine, found: Found) -> CheckResult:
    """Whether `network: {allow: [...]}` can be enforced here: podman, root, the iptables tools
    (the host firewall rules that keep a sandbox to its proxy); `plan` refuses allowlists
    otherwise, for the same reason."""
    if found.runtime is None or not found.service_ok:
        return CheckResult("allowlists", Status.SKIP, "the runtime does not answer")
    if found.runtime.name != "podman":
        return CheckResult("allowlists", Status.SKIP,
                           f"allowlists are enforced on podman only, not {found.runtime.name} "
                           "(see docs/network.md)")
    why = machine.allowlist_blocker()
    if why:
        return CheckResult("allowlists", Status.WARN,
                           f"`network: {{allow: ...}}` is refused: {why}",
                           "run asbx as root with iptables installed (apt-get install iptables), "
                           "or use network: deny or open")
    return CheckResult("allowlists", Status.OK,
                       "asbx can install the host firewall rules that keep an allowlist sandbox "
                       "to its proxy")


def check_images(machine: Machine, found: Found) -> CheckResult:
    """Each image the spec needs is present locally (or will be pulled by `apply`)."""
    try:
        refs = machine.spec_refs()
    except AsbxError as exc:
        return CheckResult("images", Status.FAIL, f"the spec cannot be read: {exc.message}",
                           "run `asbx validate`")
    if refs is None:
        return CheckResult("images", Status.SKIP, "no sandboxes.yaml here or above")
    if found.runtime is None or not found.service_ok:
        return CheckResult("images", Status.SKIP, "the runtime does not answer")
    if not refs:
        return CheckResult("images", Status.OK, "the spec needs no image from a registry")
    if found.images is None:
        found.images = found.runtime.list_images()
    local = {normalise_ref(name) for image in found.images for name in image.names}
    digests = {image.digest for image in found.images if image.digest}
    missing = [ref for ref in refs
               if normalise_ref(ref) not in local and ref.partition("@")[2] not in digests]
    if missing:
        return CheckResult("images", Status.WARN,
                           f"not present locally, `asbx apply` will pull: {', '.join(missing)}",
                           "pull them now if this machine will be offline")
    return CheckResult("images", Status.OK, f"present locally: {', '.join(refs)}")


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing ancestor."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_home(machine: Machine, found: Found) -> CheckResult:
    """ASBX_HOME is a writable directory (or can be created)."""
    home = machine.home
    fix = "set ASBX_HOME (or --home) to a writable directory"
    base = _existing(home)
    if not base.is_dir():
        return CheckResult("home", Status.FAIL, f"{base} is not a directory", fix)
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        return CheckResult("home", Status.FAIL, f"{base} is not writable ({exc.strerror})", fix)
    made = "" if base == home.absolute() else f" (will be created under {base})"
    return CheckResult("home", Status.OK, f"{home} is writable{made}")


def check_disk(machine: Machine, found: Found) -> CheckResult:
    """Free disk space under ASBX_HOME (workspaces and snapshots live there)."""
    base = _existing(machine.home)
    free = machine.free_bytes(base)
    text = f"{free / 1024**3:.1f} GiB free under {base}"
    if free < MIN_FREE:
        return CheckResult("disk", Status.WARN, text + " (less than 1 GiB)",
                           "free some space, or point ASBX_HOME at a larger disk")
    return CheckResult("disk", Status.OK, text)


CHECKS: tuple[tuple[str, Check], ...] = (
    ("runtime", check_runtime),
    ("service", check_service),
    ("containers", check_containers),
    ("network", check_network),
    ("allowlists", check_allowlists),
    ("images", check_images),
    ("home", check_home),
    ("disk", check_disk),
)


def run_checks(machine: Machine, checks: Sequence[tuple[str, Check]] = CHECKS
               ) -> list[CheckResult]:
    """Every check in order; one that crashes is a failed check with its message."""
    found = Found()
    results = []
    for name, check in checks:
        try:
            results.append(check(machine, found))
        except AsbxError as exc:
            results.append(CheckResult(name, Status.FAIL, exc.message, exc.hint))
        except Exception as exc:  # a check's own bug must not hide the other checks
            results.append(CheckResult(name, Status.FAIL,
                                       f"the check crashed: {type(exc).__name__}: {exc}"))
    return results


def passed(results: Sequence[CheckResult]) -> bool:
    """Everything needed is usable: no check failed (warnings allowed)."""
    return all(result.status is not Status.FAIL for result in results)
