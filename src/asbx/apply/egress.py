"""Allowlist networking at apply time: an internal network per sandbox, its egress proxy and
the host firewall chain that leaves the network nothing but that proxy; and their leftovers."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from asbx import project as naming
from asbx.errors import AsbxError
from asbx.network import firewall
from asbx.network.ca import ProjectCA, ensure_project_ca
from asbx.network.firewall import Installed
from asbx.network.manager import ensure_proxy, proxy_env, proxy_status, remove_logs, stop_proxy
from asbx.network.secrets import SecretGrant, placeholder_for
from asbx.plan.model import Action
from asbx.plan.observed import Leftover
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_PROJECT,
    MountRequest,
    ObservedNetwork,
    Runtime,
)
from asbx.runtime.command import CommandRunner, SubprocessRunner

if TYPE_CHECKING:
    from asbx.apply.steps import StepContext
    from asbx.plan.model import Change
    from asbx.spec.model import SandboxSpec

PROXY = "egress proxy"
CHAIN = "firewall chain"


class Egress:
    """The `egress` hooks of StepContext: prepare before create, release on destroy."""

    def __init__(self, runner: CommandRunner | None = None) -> None:
        self.runner = runner or SubprocessRunner()

    def prepare(
        self, ctx: StepContext, change: Change, box: SandboxSpec
    ) -> tuple[str, dict[str, str]]:
        """Network, proxy, then firewall: all in place before the container starts."""
        name = change.address.name
        network, fresh = self._network(ctx, change)
        if not network.gateway or not network.subnet or not network.interface:
            raise AsbxError(
                f"network {network.name} has no gateway, subnet or bridge interface, so its "
                "egress proxy cannot be the only way out")
        proxies = run_dir(ctx.home, ctx.project, name)
        if fresh:  # a proxy that outlived an earlier network of this name guards nothing now
            stop_proxy(proxies)
        address = sandbox_address(network)
        grants = secret_grants(ctx, name, box)
        handle = ensure_proxy(proxies, network.gateway, box.network.allow, runner=self.runner,
                              clients=(address,), secrets=grants,
                              ca=project_ca(ctx.home, ctx.project) if grants else None)
        firewall.install(
            firewall.Guard(ctx.project, name, network.interface, address, handle.host,
                           handle.port),
            self.runner,
        )
        return f"{network.name}:ip={address}", {**proxy_env(handle),
                                               **secret_env(ctx, name, box)}

    def secret_mounts(self, ctx: StepContext, box: SandboxSpec) -> tuple[MountRequest, ...]:
        """The project CA's certificate (alone, and with the host's trusted ones), read-only,
        for a sandbox with secrets: its TLS clients then trust the proxy's certificates."""
        if not box.secrets:
            return ()
        ca = project_ca(ctx.home, ctx.project)
        return (MountRequest("bind", str(ca.cert_path), CA_IN_SANDBOX, readonly=True),
                MountRequest("bind", str(trust_bundle(ca)), BUNDLE_IN_SANDBOX, readonly=True))

    def release(self, ctx: StepContext, change: Change) -> None:
        release_egress(ctx.runtime, ctx.home, ctx.project, change.address.name, self.runner,
                       forget=change.action is Action.DELETE)

    def _network(self, ctx: StepContext, change: Change) -> tuple[ObservedNetwork, bool]:
        name = naming.network_name(ctx.project, change.address.name)
        labels = _labels(ctx.project, str(change.address))
        for network in ctx.runtime.list_networks(labels):
            if network.name == name:
                if network.gateway and network.interface:
                    return network, False
                inspect = getattr(ctx.runtime, "inspect_network", None)
                return (inspect(name) if inspect else network), False
        return ctx.runtime.create_network(name, labels, internal=True), True


CA_IN_SANDBOX = "/etc/asbx/ca.pem"
BUNDLE_IN_SANDBOX = "/etc/asbx/ca-bundle.pem"


def project_ca(home: Path, project: str) -> ProjectCA:
    """The project's CA for intercepting secret hosts (made on first use; key 0600)."""
    return ensure_project_ca(home / "projects" / project / "ca", project)


def trust_bundle(ca: ProjectCA) -> Path:
    """The host's trusted certificates plus the project CA, beside the CA (rewritten when the
    host's bundle changed): SSL_CERT_FILE in the sandbox, so hosts without secrets (plain
    tunnels, their own certificates) still verify."""
    host = ssl.get_default_verify_paths()
    found = next((Path(p) for p in (host.cafile, host.openssl_cafile) if p and Path(p).is_file()),
                 None)
    bundle = ca.cert_path.with_name("ca-bundle.pem")
    data = (found.read_bytes().rstrip(b"\n") + b"\n" if found else b"") + ca.cert_pem()
    if not bundle.is_file() or bundle.read_bytes() != data:
        temp = bundle.with_name(f".{bundle.name}.tmp")
        temp.write_bytes(data)
        os.chmod(temp, 0o644)
        os.replace(temp, bundle)
    return bundle


def secret_grants(ctx: StepContext, sandbox: str, box: SandboxSpec) -> tuple[SecretGrant, ...]:
    """The sandbox's secrets as its proxy applies them, values read now (in memory only)."""
    if not box.secrets:
        return ()
    return tuple(
        SecretGrant(name, grant.hosts, ctx.secrets.value(name), header=grant.header,
                    placeholder=(placeholder_for(ctx.salt, sandbox, name)
                                 if grant.env is not None else None))
        for name, grant in sorted(box.secrets.items()))


def secret_env(ctx: StepContext, sandbox: str, box: SandboxSpec) -> dict[str, str]:
    """A sandbox's placeholders (`env:` secrets) and where its TLS clients find the CA."""
    if not box.secrets:
        return {}
    env = {grant.env: placeholder_for(ctx.salt, sandbox, name)
           for name, grant in box.secrets.items() if grant.env is not None}
    return {**env, "SSL_CERT_FILE": BUNDLE_IN_SANDBOX, "REQUESTS_CA_BUNDLE": BUNDLE_IN_SANDBOX,
            "CURL_CA_BUNDLE": BUNDLE_IN_SANDBOX, "NODE_EXTRA_CA_CERTS": CA_IN_SANDBOX}


def sandbox_address(network: ObservedNetwork) -> str:
    """The address the sandbox gets on its own network (pinned at create, so the proxy and
    the firewall can name it): the subnet's first host address that is not the gateway."""
    subnet = ipaddress.ip_network(network.subnet, strict=False)
    gateway = ipaddress.ip_address(network.gateway)
    return str(next(a for a in subnet.hosts() if a != gateway))


def release_egress(runtime: Runtime, home: Path, project: str, sandbox: str,
                   runner: CommandRunner | None = None, *, forget: bool = False) -> None:
    """Stop a sandbox's egress proxy, remove its firewall chain and its network (after its
    container is gone); `forget` (the sandbox is deleted, not replaced) removes the proxy's
    request log too."""
    stop_proxy(run_dir(home, project, sandbox))
    if forget:
        remove_logs(run_dir(home, project, sandbox))
    if not firewall.blocker():
        firewall.remove(project, sandbox, runner or SubprocessRunner())
    name = naming.network_name(project, sandbox)
    labels = _labels(project, f"sandbox.{sandbox}")
    found = runtime.list_networks(labels)
    if any(n.name == name for n in found):
        runtime.remove_network(name)
        if any(n.name == name for n in runtime.list_networks(labels)):
            raise AsbxError(f"network {name!r} is still there after it was removed")


def installed_chains(project: str, runner: CommandRunner | None = None) -> list[Installed]:
    """The project's firewall chains on this host (none where asbx cannot manage them)."""
    if firewall.blocker():
        return []
    return firewall.owned_by(firewall.list_installed(runner or SubprocessRunner()), project)


def unguarded(project: str, allowlisted: Collection[str],
              chains: Collection[Installed]) -> set[str]:
    """The allowlisted sandboxes whose chain or its INPUT/FORWARD jumps are missing in a family."""
    complete = {(c.family, c.chain) for c in chains if len(c.jumps) >= 2}
    return {s for s in allowlisted for family in firewall.FAMILIES
            if (family, firewall.chain_name(project, s)) not in complete}


def find_leftovers(runtime: Runtime, home: Path, project: str, allowlisted: Collection[str],
                   chains: Collection[Installed]) -> tuple[Leftover, ...]:
    """Running proxies and firewall chains (`chains`: the project's) whose network is gone or
    whose sandbox is not (any more) an allowlist sandbox. Lists networks only when there is
    something."""
    proxies = {
        d.parent.name: status.handle
        for d in sorted((home / "projects" / project / "sandboxes").glob("*/proxy"))
        if (status := proxy_status(d)).state == "running" and status.handle is not None
    }
    if not proxies and not chains:
        return ()
    networks = {n.name for n in runtime.list_networks({LABEL_PROJECT: project})}

    def why(sandbox: str) -> str:
        if sandbox not in allowlisted:
            return "not an allowlist sandbox in sandboxes.yaml"
        if naming.network_name(project, sandbox) not in networks:
            return "its network is gone"
        return ""

    found = [Leftover(PROXY, s, f"pid {h.pid} on {h.url.removeprefix('http://')}", why(s))
             for s, h in proxies.items() if why(s)]
    seen: set[str] = set()
    for chain in chains:
        if why(chain.sandbox) and chain.chain not in seen:
            seen.add(chain.chain)
            found.append(Leftover(CHAIN, chain.sandbox, chain.chain, why(chain.sandbox)))
    return tuple(found)


def remove_leftovers(home: Path, project: str, leftovers: Collection[Leftover],
                     runner: CommandRunner | None = None) -> None:
    """Stop the leftover proxies, then remove the leftover chains (both families; one listing
    of the host's chains for all of them)."""
    runner = runner or SubprocessRunner()
    for item in leftovers:
        if item.kind == PROXY:
            stop_proxy(run_dir(home, project, item.sandbox))
    chains = {item.name for item in leftovers if item.kind == CHAIN}
    if chains:
        firewall.remove_installed(
            [c for c in firewall.list_installed(runner) if c.chain in chains], runner)


def run_dir(home: Path, project: str, sandbox: str) -> Path:
    return home / "projects" / project / "sandboxes" / sandbox / "proxy"


def _labels(project: str, address: str) -> dict[str, str]:
    return {LABEL_PROJECT: project, LABEL_ADDRESS: address}
