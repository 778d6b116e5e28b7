"""Choose the runtime: --runtime / ASBX_RUNTIME, else `container` on macOS, else podman, docker."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.base import Runtime
from asbx.runtime.command import CommandRunner, SubprocessRunner

# name -> "module:Class"; imported on use, so `asbx --version` never pays for a backend.
BACKENDS: dict[str, str] = {
    "apple": "asbx.runtime.apple:AppleRuntime",
    "podman": "asbx.runtime.podman:PodmanRuntime",
    "docker": "asbx.runtime.docker:DockerRuntime",
}
EXECUTABLES: dict[str, str] = {"apple": "container", "podman": "podman", "docker": "docker"}
ALIASES: dict[str, str] = {"container": "apple"}
# Extra global CLI arguments for a backend, e.g. ASBX_PODMAN_ARGS="--root /scratch/storage".
EXTRA_ARGS_ENV: dict[str, str] = {"podman": "ASBX_PODMAN_ARGS", "docker": "ASBX_DOCKER_ARGS"}


def runtime_name(requested: str | None = None, *, env: Mapping[str, str] | None = None,
                 platform: str = sys.platform,
                 which: Callable[[str], str | None] = shutil.which) -> str:
    """The backend to use: the one asked for, else the first installed in detection order."""
    env = os.environ if env is None else env
    chosen = requested or env.get("ASBX_RUNTIME") or None
    if chosen is not None:
        name = ALIASES.get(chosen, chosen)
        if name not in BACKENDS:
            raise RuntimeUnavailableError(
                f"unknown runtime {chosen!r}; choose one of {', '.join(sorted(BACKENDS))}")
        return name
    order = ["apple", "podman", "docker"] if platform == "darwin" else ["podman", "docker"]
    for name in order:
        if which(EXECUTABLES[name]):
            return name
    raise RuntimeUnavailableError(
        "no container runtime found on PATH",
        hint="install podman or Docker" + (" (or Apple container)" if platform == "darwin"
                                          else "") + ", or choose one with --runtime")


def backend_class(name: str) -> Callable[..., Runtime]:
    """The backend class registered under `name` (imported now)."""
    module_name, _, attr = BACKENDS[name].partition(":")
    factory: Callable[..., Runtime] = getattr(importlib.import_module(module_name), attr)
    return factory


def create_runtime(requested: str | None = None, runner: CommandRunner | None = None, *,
                   env: Mapping[str, str] | None = None, platform: str = sys.platform,
                   which: Callable[[str], str | None] = shutil.which) -> Runtime:
    """The selected backend, built around `runner` (default: the real subprocess runner)."""
    env = os.environ if env is None else env
    name = runtime_name(requested, env=env, platform=platform, which=which)
    extra = env.get(EXTRA_ARGS_ENV.get(name, ""), "")
    kwargs = {"global_args": shlex.split(extra)} if extra else {}
    return backend_class(name)(runner or SubprocessRunner(), **kwargs)


def open_runtime(requested: str | None = None, runner: CommandRunner | None = None) -> Runtime:
    """The selected backend, checked: raises RuntimeUnavailableError with the fix if unusable."""
    runtime = create_runtime(requested, runner)
    runtime.check()
    return runtime
