"""Podman: the shared OCI CLI backend with podman's JSON format flag and its fixes."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import uuid
from collections.abc import Callable, Mapping

from asbx.errors import AsbxError, RuntimeUnavailableError
from asbx.runtime.base import Capabilities, ObservedNetwork
from asbx.runtime.command import CommandResult, first_error
from asbx.runtime.host_problems import host_problem_error
from asbx.runtime.oci_cli import OciCliRuntime, label_args

CAPABILITIES = Capabilities(
    fractional_cpus=True,
    shared_volumes=True,
    volume_size=False,
    label_filter=True,
    internal_networks_isolate=True,  # an --internal network has no default route
    container_image_ids=True,  # `ps --format json` has ImageID
    listing_records_images=True,  # `images --format json` has Id, Digest, RepoDigests
    # measured on podman 4.3 (cgroup v1, cgroupfs): `podman update` exits 0 and sets the
    # running cgroup, but inspect keeps the old limits and the next start restores them.
    # probe_capabilities lifts this for a podman that keeps the change (5.1+ on SQLite).
    limits_update_blocker="`podman update` changes only the running cgroup here (measured on "
    "podman 4.3): the container's configuration, and so its next start, keep the old limits",
)
# podman 5.1 made `podman update` persistent, for the SQLite database backend only
# (containers/podman#22322: BoltDB cannot rewrite a container's configuration).
PERSISTENT_UPDATE_SINCE = (5, 1)


def limits_update_blocker(version: str, database_backend: Callable[[], str]) -> str:
    """Why this podman cannot keep an `update` of cpus/memory ("" when it can); the database
    backend is asked only of a podman new enough for it to matter."""
    numbers = re.match(r"(\d+)\.(\d+)", version)
    if numbers is None:
        return f"podman reports the version {version!r}, not one asbx can compare; " + \
            CAPABILITIES.limits_update_blocker
    if (int(numbers[1]), int(numbers[2])) < PERSISTENT_UPDATE_SINCE:
        return (f"`podman update` on podman {version} changes only the running cgroup: the "
                "container's configuration, and so its next start, keep the old limits "
                "(podman 5.1 keeps them, with the SQLite database)")
    backend = database_backend()
    if backend.lower() != "sqlite":
        return (f"podman {version} keeps `podman update` changes only with the SQLite database "
                f"backend; this one uses {backend or 'another'} (database_backend in "
                "containers.conf)")
    return ""


class PodmanRuntime(OciCliRuntime):
    """`podman` (4.x): JSON arrays, label filters done by podman, `--init` via catatonit."""

    name = "podman"
    capabilities = CAPABILITIES
    default_executable = "podman"
    json_format = "json"
    pull_flag = "--pull=always"
    service_down = re.compile(r"Cannot connect to Podman|unable to connect to Podman socket")

    def probe_capabilities(self) -> Capabilities:
        """In-place limits need a podman whose `update` persists: 5.1 or newer, on SQLite."""
        version = self._run(["version", "--format", "{{.Client.Version}}"]).stdout.strip()
        blocker = limits_update_blocker(version, lambda: self._run(
            ["info", "--format", "{{.Host.DatabaseBackend}}"]).stdout.strip())
        return dataclasses.replace(self.capabilities, limits_update_blocker=blocker)

    def served_digest(self, ref: str) -> str:
        """Asked of the registry through a throw-away manifest list: `manifest add` fetches the
        manifest `ref` names (for a multi-platform ref, this platform's) and records its digest,
        the one `podman push --digestfile` reported and a pull by digest fetches."""
        scratch = f"localhost/asbx-digest-probe-{uuid.uuid4().hex[:12]}"
        self._run(["manifest", "create", scratch])
        try:
            self._run(["manifest", "add", scratch, ref], timeout=math.inf)
            listing = json.loads(self._run(["manifest", "inspect", scratch]).stdout)
        except ValueError:
            return ""
        finally:
            self._call(["manifest", "rm", scratch], timeout=self._timeout)
        entries = listing.get("manifests") if isinstance(listing, dict) else None
        first = entries[0] if isinstance(entries, list) and entries else {}
        digest = first.get("digest") if isinstance(first, dict) else None
        return digest if isinstance(digest, str) else ""

    def tls_fix(self, host: str, plain_http: bool) -> str:
        insecure = (f'mark it insecure in registries.conf: [[registry]] location = "{host}" '
                    "insecure = true (in /etc/containers/registries.conf or "
                    "~/.config/containers/registries.conf; `podman pull --tls-verify=false` "
                    "does the same for one pull)")
        if plain_http:
            return f"if {host} is meant to serve plain HTTP, {insecure}"
        return f"put its CA certificate in /etc/containers/certs.d/{host}/ca.crt, or {insecure}"

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool
                       ) -> ObservedNetwork:
        """An internal network also gets no DNS server: podman's (aardvark-dns) would forward
        any name to the host's resolver, a channel out. With DNS off podman 4 assigns no
        gateway, so the subnet and gateway it picks are read first and then given explicitly.
        """
        if not internal:
            return super().create_network(name, labels, internal)
        picked = super().create_network(name, labels, internal)
        self.remove_network(name)
        if not (picked.subnet and picked.gateway):
            # The CNI backend: an internal bridge has no address on the host, so the egress
            # proxy (which listens on the gateway) would be unreachable from the sandbox.
            raise AsbxError(
                f"podman gave the internal network {name} no gateway on the host, so the "
                "sandbox could not reach its egress proxy (podman's CNI network backend does "
                "this)",
                hint='install netavark and set network_backend = "netavark" in the [network] '
                     "table of containers.conf, or use network: open or deny; `asbx doctor` checks "
                     "this machine")
        self._run(["network", "create", "--internal", "--disable-dns", "--subnet", picked.subnet,
                   "--gateway", picked.gateway, *label_args(labels), name])
        return self.inspect_network(name)

    def host_problem(self, result: CommandResult) -> AsbxError | None:
        return host_problem_error(result, self.name)

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
