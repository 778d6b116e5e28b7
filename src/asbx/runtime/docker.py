"""Docker: the shared OCI CLI backend with docker's line-JSON output and its daemon."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.base import Capabilities, ObservedImage, ObservedNetwork
from asbx.runtime.command import CommandResult, first_error
from asbx.runtime.events import RuntimeEvent, parse_docker_event
from asbx.runtime.oci_cli import (
    OciCliRuntime,
    label_filters,
    parse_image,
    parse_network,
)

CAPABILITIES = Capabilities(
    fractional_cpus=True,
    shared_volumes=True,
    volume_size=False,
    label_filter=True,
    # True when dockerd manages iptables (its default); with --iptables=false it is not.
    internal_networks_isolate=True,
    allowlist_blocker="its embedded DNS server answers on internal networks and cannot be "
    "turned off there, so names could carry data out (and forwards them on docker < 26, "
    "CVE-2024-29018)",
    limits_update_blocker="",  # `docker update` changes the container's configuration too
)


class DockerRuntime(OciCliRuntime):
    """`docker` (20.10+ CLI and daemon): `{{json .}}` lines, labels as `k=v,...` strings."""

    name = "docker"
    capabilities = CAPABILITIES
    default_executable = "docker"
    json_format = "{{json .}}"
    ps_extra = ("--no-trunc",)
    pull_flag = "--pull"
    service_down = re.compile(r"Cannot connect to the Docker daemon"
                              r"|permission denied while trying to connect to the Docker daemon")

    def tls_fix(self, host: str, plain_http: bool) -> str:
        insecure = (f'add "{host}" to "insecure-registries" in /etc/docker/daemon.json (Docker '
                    "Desktop: Settings > Docker Engine) and restart the daemon")
        if plain_http:
            return f"if {host} is meant to serve plain HTTP, {insecure}"
        return f"put its CA certificate in /etc/docker/certs.d/{host}/ca.crt, or {insecure}"

    def parse_event(self, line: str) -> RuntimeEvent | None:
        return parse_docker_event(line)

    def parse_version(self, data: Any) -> str:
        server = data.get("Server") if isinstance(data, dict) else None
        return str((server or {}).get("Version") or super().parse_version(data))

    def list_images(self) -> list[ObservedImage]:
        """Two calls (ids, then one `image inspect`): `docker images` JSON has no labels."""
        ids = self._listing(["image", "ls", "-q", "--no-trunc"]).stdout.split()
        items = self._inspect_items("image", list(dict.fromkeys(ids)))
        return [image for image in map(parse_image, items) if image is not None]

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]:
        """Two calls: `network ls` JSON has no subnets or gateways."""
        ids = self._listing(["network", "ls", "-q", "--no-trunc", *label_filters(labels)]).stdout
        items = self._inspect_items("network", ids.split())
        return [network for network in map(parse_network, items) if network is not None]

    def unavailable(self, result: CommandResult) -> RuntimeUnavailableError:
        if result.returncode == 127:
            return RuntimeUnavailableError(
                f"docker is not installed (no `{self.executable}` on PATH)",
                hint="install Docker Engine or Docker Desktop, or choose another runtime with"
                     " --runtime")
        error = first_error(result)
        if "permission denied" in error.lower():
            return RuntimeUnavailableError(f"docker is not usable: {error}",
                                           hint="add your user to the `docker` group")
        fix = ("start Docker Desktop" if sys.platform == "darwin"
               else "start dockerd (`sudo systemctl start docker`) or Docker Desktop")
        return RuntimeUnavailableError(f"the Docker daemon is not running: {error}", hint=fix)
