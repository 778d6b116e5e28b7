"""Podman: the shared OCI CLI backend with podman's JSON format flag and its fixes."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from asbx.errors import AsbxError, RuntimeUnavailableError
from asbx.runtime.base import Capabilities
from asbx.runtime.command import CommandResult
from asbx.runtime.oci_cli import OciCliRuntime, first_error

CAPABILITIES = Capabilities(
    fractional_cpus=True,
    shared_volumes=True,
    volume_size=False,
    label_filter=True,
    internal_networks_isolate=True,  # an --internal network has no default route
)


class PodmanRuntime(OciCliRuntime):
    """`podman` (4.x): JSON arrays, label filters done by podman, `--init` via catatonit."""

    name = "podman"
    capabilities = CAPABILITIES
    default_executable = "podman"
    json_format = "json"
    pull_flag = "--pull=always"

    def unavailable(self, result: CommandResult) -> RuntimeUnavailableError:
        if result.returncode == 127:
            return RuntimeUnavailableError(
                f"podman is not installed (no `{self.executable}` on PATH)",
                hint="install it (`apt-get install podman`, or `brew install podman` on macOS),"
                     " or choose another runtime with --runtime")
        fix = ("start its machine: `podman machine init` once, then `podman machine start`"
               if sys.platform == "darwin" else "check that `podman info` works")
        return RuntimeUnavailableError(f"podman is not working: {first_error(result)}", hint=fix)

    def create_volume(self, name: str, labels: Mapping[str, str], size: int | None = None
                      ) -> None:
        # podman 4's `volume create --label` splits its value at commas (a CSV flag), so
        # `team=a,b` would silently become two labels.
        for key, value in labels.items():
            if "," in value:
                raise AsbxError(f"podman cannot store the comma in label {key}={value!r} of "
                                f"volume {name!r}", hint="use a value without commas")
        super().create_volume(name, labels, size)
