"""Allowlist networking at apply time: an internal network per sandbox and its egress proxy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asbx import project as naming
from asbx.errors import AsbxError
from asbx.network.manager import ensure_proxy, proxy_env, remove_logs, stop_proxy
from asbx.plan.model import Action
from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT, ObservedNetwork, Runtime
from asbx.runtime.command import SubprocessRunner

if TYPE_CHECKING:
    from asbx.apply.steps import StepContext
    from asbx.plan.model import Change
    from asbx.spec.model import SandboxSpec


class Egress:
    """The `egress` hooks of StepContext: prepare before create, release on destroy."""

    def prepare(
        self, ctx: StepContext, change: Change, box: SandboxSpec
    ) -> tuple[str, dict[str, str]]:
        network = self._network(ctx, change)
        if not network.gateway:
            raise AsbxError(f"network {network.name} has no gateway address for the egress proxy")
        handle = ensure_proxy(
            run_dir(ctx.home, ctx.project, change.address.name),
            network.gateway,
            box.network.allow,
            runner=SubprocessRunner(),
        )
        return network.name, proxy_env(handle)

    def release(self, ctx: StepContext, change: Change) -> None:
        release_egress(ctx.runtime, ctx.home, ctx.project, change.address.name,
                       forget=change.action is Action.DELETE)

    def _network(self, ctx: StepContext, change: Change) -> ObservedNetwork:
        name = naming.network_name(ctx.project, change.address.name)
        labels = _labels(ctx.project, str(change.address))
        for network in ctx.runtime.list_networks(labels):
            if network.name == name:
                if network.gateway:
                    return network
                inspect = getattr(ctx.runtime, "inspect_network", None)
                return inspect(name) if inspect else network
        return ctx.runtime.create_network(name, labels, internal=True)


def release_egress(runtime: Runtime, home: Path, project: str, sandbox: str, *,
                   forget: bool = False) -> None:
    """Stop a sandbox's egress proxy and remove its network (after its container is gone);
    `forget` (the sandbox is deleted, not replaced) removes the proxy's request log too."""
    stop_proxy(run_dir(home, project, sandbox))
    if forget:
        remove_logs(run_dir(home, project, sandbox))
    name = naming.network_name(project, sandbox)
    labels = _labels(project, f"sandbox.{sandbox}")
    found = runtime.list_networks(labels)
    if any(n.name == name for n in found):
        runtime.remove_network(name)
        if any(n.name == name for n in runtime.list_networks(labels)):
            raise AsbxError(f"network {name!r} is still there after it was removed")


def run_dir(home: Path, project: str, sandbox: str) -> Path:
    return home / "projects" / project / "sandboxes" / sandbox / "proxy"


def _labels(project: str, address: str) -> dict[str, str]:
    return {LABEL_PROJECT: project, LABEL_ADDRESS: address}
